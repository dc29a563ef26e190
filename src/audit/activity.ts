/**
 * Activity: what agents did on one person's behalf, newest first, for the
 * console. Read back from the decision log's file when Warden writes one it
 * can read (read-back.ts); otherwise from a small bounded ring per user kept
 * in the store (the newest ACTIVITY_RING_MAX decisions, ACTIVITY_RING_TTL_MS
 * after the last one). Every read takes the user as its first argument and
 * keeps only records whose `user` is exactly that user: a cursor or a filter
 * can narrow a page, never widen it.
 */

import type { WardenError } from '../core/errors.js';
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
}

/** The per-user ring in the store (Redis list capped and with a TTL; memory for embedded). */
export function createActivityRing(store: Store, logger: Logger): ActivityRing {
  let warned = 0;
  // Decisions of one event-loop turn go to the store in one call (one round trip on Redis).
  let batch: Array<{ key: string; value: string }> = [];
  const flush = () => {
    const entries = batch;
    batch = [];
    if (entries.length === 0) return;
    store.listPush(entries, { max: ACTIVITY_RING_MAX, ttlMs: ACTIVITY_RING_TTL_MS }).catch((e: unknown) => {
      // A store outage must not flood the log: one line a minute.
      if (Date.now() - warned > 60_000) {
        warned = Date.now();
        logger.warn({ err: e }, 'activity: could not record decisions in the store');
      }
    });
  };
  return {
    kind: 'store',
    record(state, err) {
      const user = state.principal?.user;
      if (typeof user !== 'string' || state.route === undefined) return;
      const item: ActivityItem = {
        time: new Date(state.startedAt).toISOString(),
        id: state.id,
        route: state.route.name,
        decision: state.decision ?? 'error',
        reason: state.reason,
        status: state.status ?? 0,
        agent: state.principal?.agent,
        user,
        act: state.principal && state.principal.actors.length ? state.principal.actors : undefined,
        method: state.method,
        path: state.path,
        query: state.query || undefined,
        tool: state.mcp?.tool,
        approval: state.approvalId ? { id: state.approvalId, outcome: state.decision === 'pending' ? 'pending' : 'approved' } : undefined,
        mode: state.shadowMode ? 'shadow' : undefined,
        shadow: state.shadowMode ? (state.shadow ?? { outcome: 'allow' }) : undefined,
        credentials: state.policy.credentials && state.decision === 'allow' ? state.policy.credentials.kind : undefined,
      };
      if (err && err.status >= 500 && item.reason === undefined) item.reason = err.code;
      const n = batch.push({ key: ringKey(user), value: JSON.stringify(item) });
      if (n === 1) setImmediate(flush);
      else if (n >= 500) flush(); // a very busy turn: keep each call bounded
    },
    async page(user, filter, { cursor, limit }) {
      // The cursor is an index into this user's own list: crafting one only skips the user's own items.
      const from = cursor !== undefined && /^\d{1,6}$/.test(cursor) ? Number(cursor) : 0;
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
