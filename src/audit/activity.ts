/**
 * Activity: what agents did on one person's behalf, newest first, for the
 * console. Read back from the decision log's file when Warden writes one it
 * can read (read-back.ts); otherwise from a small bounded ring per user kept
 * in the store (the newest ACTIVITY_RING_MAX decisions, ACTIVITY_RING_TTL_MS
 * after the last one), written in batches (createActivityRing). Every read takes the user as its first argument and
 * keeps only records whose `user` is exactly that user: a cursor or a filter
 * can narrow a page, never widen it.
 */

import type { WardenError } from '../core/errors.js';
import { createIsoTime } from '../observability/iso-time.js';
import type { Logger } from '../observability/logger.js';
import type { RequestState } from '../pipeline/context.js';
import type { Store } from '../store/store.js';
import type { DecisionRecord } from './record.js';

/** One decision as the console lists it (a subset of a decision-log record). */
export type ActivityItem = Pick<
  DecisionRecord,
  | 'time'
  | 'id'
  | 'route'
  | 'decision'
  | 'reason'
  | 'status'
  | 'agent'
  | 'act'
  | 'method'
  | 'path'
  | 'query'
  | 'tool'
  | 'approval'
  | 'mode'
  | 'shadow'
  | 'credentials'
  | 'user'
>;

/** The outcomes a person can filter by (the decision log's `decision`). */
export const OUTCOMES = ['allow', 'deny', 'pending', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface ActivityFilter {
  agent?: string;
  route?: string;
  outcome?: Outcome;
}

export interface ActivityPage {
  items: ActivityItem[];
  /** Opaque: where the next (older) page starts. Absent on the last page. */
  next?: string;
  /** The page stopped at the scan bound before it was full: older records may still match. */
  partial?: boolean;
  /** The cursor no longer pointed anywhere (the log rotated past it): the page starts at the newest. */
  restarted?: boolean;
}

export interface ActivitySource {
  /** `decision-log` (read back from the file) or `store` (the per-user ring). */
  readonly kind: 'decision-log' | 'store';
  /** One page of `user`'s activity, newest first. */
  page(user: string, filter: ActivityFilter, options: { cursor?: string; limit: number }): Promise<ActivityPage>;
}

/** Decisions kept per user in the store's ring. */
export const ACTIVITY_RING_MAX = 200;
/** The ring lives this long after its newest decision. */
export const ACTIVITY_RING_TTL_MS = 7 * 24 * 3_600_000;

const ringKey = (user: string) => `activity:${encodeURIComponent(user)}`;

/** Does this item pass the filter (the user was checked before)? */
export function matches(item: ActivityItem, f: ActivityFilter): boolean {
  return (
    (f.agent === undefined || item.agent === f.agent) &&
    (f.route === undefined || item.route === f.route) &&
    (f.outcome === undefined || item.decision === f.outcome)
  );
}

/** The item of a record (drops checks, limits, digests: the console shows what happened, not how). */
export function activityItem(r: DecisionRecord | Record<string, unknown>): ActivityItem {
  const d = r as DecisionRecord;
  return {
    time: d.time,
    id: d.id,
    route: d.route,
    decision: d.decision,
    reason: d.reason,
    status: d.status,
    agent: d.agent,
    user: d.user,
    act: d.act,
    method: d.method,
    path: d.path,
    query: d.query,
    tool: d.tool,
    approval: d.approval,
    mode: d.mode,
    shadow: d.shadow,
    credentials: d.credentials,
  };
}

export interface ActivityRing extends ActivitySource {
  /** Record one finished request acting for a user (no user: nothing). Never throws, never waits. */
  record(state: RequestState, err: WardenError | undefined): void;
  /** Write what is buffered now and wait for the store (shutdown, reload). Never rejects. */
  close(): Promise<void>;
}

/** Write what the console lists of a finished request into `item` (every field, so a reused item keeps nothing of the one before). */
function fillItem(item: ActivityItem, state: RequestState, err: WardenError | undefined, user: string): ActivityItem {
  const principal = state.principal;
  item.time = ''; // formatted when the batch is written (UserBatch.drain)
  item.id = state.id;
  item.route = state.route!.name;
  item.decision = state.decision ?? 'error';
  item.reason = state.reason ?? (err && err.status >= 500 ? err.code : undefined);
  item.status = state.status ?? 0;
  item.agent = principal?.agent;
  item.user = user;
  item.act = principal && principal.actors.length ? principal.actors : undefined;
  item.method = state.method;
  item.path = state.path;
  item.query = state.query || undefined;
  item.tool = state.mcp?.tool;
  item.approval = state.approvalId ? { id: state.approvalId, outcome: state.decision === 'pending' ? 'pending' : 'approved' } : undefined;
  item.mode = state.shadowMode ? 'shadow' : undefined;
  item.shadow = state.shadowMode ? (state.shadow ?? { outcome: 'allow' }) : undefined;
  item.credentials = state.policy.credentials && state.decision === 'allow' ? state.policy.credentials.kind : undefined;
  return item;
}

/** A new item with every field present in the order the console's JSON lists them (one shape for every item). */
function newItem(): ActivityItem {
  return {
    time: '',
    id: '',
    route: '',
    decision: 'error',
    reason: undefined,
    status: 0,
    agent: undefined,
    user: undefined,
    act: undefined,
    method: '',
    path: '',
    query: undefined,
    tool: undefined,
    approval: undefined,
    mode: undefined,
    shadow: undefined,
    credentials: undefined,
  } as ActivityItem;
}

/**
 * One user's items waiting for the next batch: the newest ACTIVITY_RING_MAX.
 * An item holds references to strings the request holds anyway and is
 * serialized only when its batch is written: at thousands of requests a
 * second for one person most items are overwritten here before any flush (the
 * store would trim them anyway), so serializing each when recorded spent a
 * JSON.stringify and a date format per request on items nobody would write.
 * Once the buffer is full, a new request's fields are written into the oldest
 * item's object instead of a new one: a busy person's requests allocate no
 * item between flushes. The buffer is bounded, so a busy user's older items
 * are dropped at once and never pile up until the flush.
 */
class UserBatch {
  private readonly items: ActivityItem[] = [];
  /** When each item's request started (ms): `time` is formatted at the flush. */
  private readonly times: number[] = [];
  /** Where the oldest item is once the buffer is full (it is then a circle). */
  private oldest = 0;

  /** Keep what the console lists of `state`; true when the buffer grew (false: it replaced the oldest). */
  add(state: RequestState, err: WardenError | undefined, user: string): boolean {
    if (this.items.length < ACTIVITY_RING_MAX) {
      this.items.push(fillItem(newItem(), state, err, user));
      this.times.push(state.startedAt);
      return true;
    }
    fillItem(this.items[this.oldest], state, err, user);
    this.times[this.oldest] = state.startedAt;
    this.oldest = (this.oldest + 1) % ACTIVITY_RING_MAX;
    return false;
  }

  /** Append the items, oldest first, as list entries (JSON text) under `key`; `isoTime` formats their times. */
  drain(key: string, out: Array<{ key: string; value: string }>, isoTime: (ms: number) => string): void {
    const n = this.items.length;
    for (let i = 0; i < n; i++) {
      const at = (this.oldest + i) % n;
      const item = this.items[at];
      item.time = isoTime(this.times[at]);
      out.push({ key, value: JSON.stringify(item) });
    }
  }
}

/** Default of `console.activity_interval`: how long an item waits in memory before its batch goes to the store. */
export const ACTIVITY_FLUSH_MS = 200;
/**
 * Items held at once before a batch is written without waiting for the
 * interval. Items that replaced a busy user's oldest do not count: the batch
 * does not grow, so one person's agent in a loop does not turn the interval
 * into a write every few milliseconds.
 */
export const ACTIVITY_BATCH_MAX = 1_000;

/**
 * The per-user ring in the store (Redis list capped and with a TTL; memory for
 * embedded). Items wait in memory up to `intervalMs` (or until
 * ACTIVITY_BATCH_MAX are pending) and go to the store in one call per batch,
 * where each user's items of the batch are one LPUSH: a busy gateway writes a
 * few commands per batch, not three per request. A read of a user with
 * buffered items writes them first (this instance's console is never behind);
 * other instances' items appear within their interval. Shutdown and reload
 * write the last batch (close); a crash loses at most one interval.
 */
export function createActivityRing(store: Store, logger: Logger, options: { intervalMs?: number } = {}): ActivityRing {
  const intervalMs = options.intervalMs ?? ACTIVITY_FLUSH_MS;
  let warned = 0;
  // user → that user's newest items (at most ACTIVITY_RING_MAX: the store trims older ones anyway), serialized when written.
  let pending = new Map<string, UserBatch>();
  let count = 0;
  let timer: NodeJS.Timeout | undefined;
  let turn: NodeJS.Immediate | undefined;
  let closed = false;
  const inflight = new Set<Promise<void>>();
  // Items' times, formatted at the flush: Date's formatter once per second of them.
  const isoTime = createIsoTime();

  const flush = (): void => {
    if (timer) clearTimeout(timer);
    if (turn) clearImmediate(turn);
    timer = turn = undefined;
    if (count === 0) return;
    const batch = pending;
    pending = new Map();
    count = 0;
    const entries: Array<{ key: string; value: string }> = [];
    for (const [user, items] of batch) items.drain(ringKey(user), entries, isoTime);
    const write: Promise<void> = store
      .listPush(entries, { max: ACTIVITY_RING_MAX, ttlMs: ACTIVITY_RING_TTL_MS })
      .catch((e: unknown) => {
        // A store outage must not flood the log: one line a minute.
        if (Date.now() - warned > 60_000) {
          warned = Date.now();
          logger.warn({ err: e }, 'activity: could not record decisions in the store');
        }
      })
      .finally(() => inflight.delete(write));
    inflight.add(write);
  };
  /** Everything recorded so far is in the store (or failed and was logged). */
  const settled = async () => {
    flush();
    while (inflight.size) await Promise.all(inflight);
  };

  return {
    kind: 'store',
    record(state, err) {
      const user = state.principal?.user;
      if (typeof user !== 'string' || state.route === undefined) return;
      let items = pending.get(user);
      if (!items) pending.set(user, (items = new UserBatch()));
      if (items.add(state, err, user) && ++count >= ACTIVITY_BATCH_MAX) flush();
      // After close (requests of a generation past its drain timeout): nothing batches them any more.
      else if (closed || intervalMs === 0) turn ??= setImmediate(flush);
      else timer ??= setTimeout(flush, intervalMs).unref();
    },
    async close() {
      closed = true;
      await settled();
    },
    async page(user, filter, { cursor, limit }) {
      // The cursor is an index into this user's own list: crafting one only skips the user's own items.
      const from = cursor !== undefined && /^\d{1,6}$/.test(cursor) ? Number(cursor) : 0;
      // This instance's own buffered items are written first: the console shows a request as soon as it was answered.
      if (pending.has(user) || inflight.size) await settled();
      const raw = await store.listRange(ringKey(user), ACTIVITY_RING_MAX);
      const items: ActivityItem[] = [];
      let i = from;
      for (; i < raw.length && items.length < limit; i++) {
        let item: ActivityItem;
        try {
          item = JSON.parse(raw[i]) as ActivityItem;
        } catch {
          continue;
        }
        if (item.user !== user || !matches(item, filter)) continue;
        items.push(item);
      }
      const more = raw.slice(i).some((s) => {
        try {
          const it = JSON.parse(s) as ActivityItem;
          return it.user === user && matches(it, filter);
        } catch {
          return false;
        }
      });
      return more ? { items, next: String(i) } : { items };
    },
  };
}
