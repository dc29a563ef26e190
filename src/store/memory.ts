/**
 * The `memory` store driver: one process, nothing survives a restart. It keeps
 * the exact semantics of the redis driver (same contract suite) so the embedded
 * default behaves like production, only without sharing between instances.
 */

import type {
  BudgetReservation,
  BudgetSpec,
  BudgetState,
  LocalReservation,
  Lock,
  RateLimitResult,
  RateLimitSpec,
  SetOptions,
  Store,
  Unsubscribe,
} from './store.js';
import { WardenError } from '../core/errors.js';
import { budgetMember, checkAmount, checkListMax, checkRateSpec, checkTtlMs, lockKey, newLockToken, roundSum, storeClosed } from './guards.js';
import { sliceSweeper } from './sweep.js';

interface Entry {
  value: string;
  /** Epoch ms after which the entry is gone; null = no expiry. */
  expiresAt: number | null;
}

/** Options of the memory driver (all optional). */
export interface MemoryStoreOptions {
  /**
   * How often a slice of the keys (sweep.ts) is checked for expiry in the
   * background. Expiry is also checked on every read, so this only bounds
   * memory held by keys nobody reads. Default 1 s.
   */
  sweepIntervalMs?: number;
}

/** GCRA state of one rate-limit key: the theoretical arrival time, in µs. */
interface RateEntry {
  tatUs: number;
  expiresAt: number;
}

/**
 * How long a committed member is remembered, so that committing it again
 * records nothing. Longer would keep a record per request: at a few thousand
 * requests a second, a window's worth of them was tens of MB in V8's old
 * generation. (Redis' local quota blocks remember theirs about as long.)
 */
export const COMMITTED_MEMORY_MS = 1_000;

/**
 * One budget key. Spends are kept as a sliding window of (time, amount) pairs,
 * the spends of one millisecond summed into one, in two arrays of numbers from
 * `head` on: no object or string per request outlives its request, and
 * dropping what left the window costs what left.
 */
interface BudgetEntry {
  spendAt: number[];
  spendAmount: number[];
  head: number;
  spent: number;
  /**
   * Reservations in flight (they end when settled, so they die young): by
   * member (id:amount), or a lot of reservations held by their callers' own
   * records (budgetReserveLocal), keyed and valued by the lot itself.
   */
  held: Map<string | HeldLot, { until: number; amount: number }>;
  /** The last record put in `held` when it is a lot: the next local reservation may join it (HeldLot). */
  lot?: HeldLot;
  heldSum: number;
  /** No lease in `held` ends before this (lapsed leases are looked for from then on only). */
  nextLapse: number;
  /** Members committed in this and the previous COMMITTED_MEMORY_MS (made on the first commit). */
  committed?: { now: Set<string>; before: Set<string>; since: number };
  /** Nothing in the entry matters after this (window + lease since the last write). */
  expiresAt: number;
}

/**
 * Reservations of one budget key made one after another by budgetReserveLocal
 * in the same millisecond, of the same amount and lease (so ending at the same
 * time): one record for all of them in `held`, standing where their members
 * would stand, while any of them is reserved and its lease has not lapsed. Each
 * reservation points to its lot (`lot`) and is settled once through it: no id,
 * member string or per-request entry is made or remembered. The sums change by
 * the same steps, in the same order, as they would by id (lapsing, the lot's
 * reservations leave one by one).
 */
class HeldLot {
  /** Its reservations not settled yet. */
  count = 0;
  constructor(
    readonly entry: BudgetEntry,
    readonly key: string,
    readonly windowMs: number,
    readonly until: number,
    /** Each reservation's amount. */
    readonly amount: number,
  ) {}
}

/** `lot` of a local reservation settled already (settling it again does nothing). */
const SETTLED: unknown = Object.freeze({ settled: true });

/** True when `member` was committed lately (and remembers it when `remember`). */
function committedLately(entry: BudgetEntry, member: string, now: number, remember: boolean): boolean {
  let c = entry.committed;
  if (c !== undefined && now - c.since >= COMMITTED_MEMORY_MS) {
    // A new period: the last one's members are still remembered for one more.
    const fresh = now - c.since < 2 * COMMITTED_MEMORY_MS;
    c.before = fresh ? c.now : new Set();
    c.now = new Set();
    c.since = now;
  }
  if (c !== undefined && (c.now.has(member) || c.before.has(member))) return true;
  if (remember) (c ??= entry.committed = { now: new Set(), before: new Set(), since: now }).now.add(member);
  return false;
}

/** Drop the spends older than the window; compact the arrays once most of them is dropped. */
function dropSpends(entry: BudgetEntry, cutoff: number): void {
  const at = entry.spendAt;
  let i = entry.head;
  let gone = 0;
  while (i < at.length && at[i] <= cutoff) gone += entry.spendAmount[i++];
  if (i === entry.head) return;
  if (i === at.length) {
    at.length = 0;
    entry.spendAmount.length = 0;
    entry.head = 0;
    entry.spent = 0;
    return;
  }
  entry.head = i;
  entry.spent = roundSum(entry.spent - gone);
  if (i >= 1024 && i * 2 >= at.length) {
    at.splice(0, i);
    entry.spendAmount.splice(0, i);
    entry.head = 0;
  }
}

/** Record a spend dated `now` (summed into the last one when it is of the same millisecond). */
function addSpend(entry: BudgetEntry, now: number, amount: number): void {
  const last = entry.spendAt.length - 1;
  if (last >= entry.head && entry.spendAt[last] === now) entry.spendAmount[last] = roundSum(entry.spendAmount[last] + amount);
  else {
    entry.spendAt.push(now);
    entry.spendAmount.push(amount);
  }
  entry.spent = roundSum(entry.spent + amount);
}

/** Create an in-process store. Call `close()` to stop its sweep timer and drop subscribers. */
/** What a memory store holds for its budgets (tests: nothing per request outlives it for long). */
export interface MemoryBudgetStats {
  /** (time, amount) records of spends in the windows: at most one per millisecond and key. */
  spendRecords: number;
  /** Reservations in flight. */
  held: number;
  /** Committed members remembered (for COMMITTED_MEMORY_MS to two of it). */
  committedRemembered: number;
}

export function createMemoryStore(options: MemoryStoreOptions = {}): Store & { budgetStats(): MemoryBudgetStats } {
  const entries = new Map<string, Entry>();
  const channels = new Map<string, Set<(message: string) => void>>();
  const rates = new Map<string, RateEntry>();
  const budgets = new Map<string, BudgetEntry>();
  /** Lists, newest entry first. */
  const lists = new Map<string, { items: string[]; expiresAt: number }>();
  let closed = false;

  // A slice of each map per tick (sweep.ts): no tick's cost grows with the number of keys.
  const gone = (e: { expiresAt: number | null }, now: number) => e.expiresAt !== null && e.expiresAt <= now;
  const sweeps = [sliceSweeper(entries, gone), sliceSweeper(rates, gone), sliceSweeper(budgets, gone), sliceSweeper(lists, gone)];
  const sweepTimer = setInterval(() => {
    const now = Date.now();
    for (const sweep of sweeps) sweep(now);
  }, options.sweepIntervalMs ?? 1_000);
  // The sweep must never keep a process (or a test worker) alive on its own.
  sweepTimer.unref();

  function ensureOpen(): void {
    if (closed) throw storeClosed();
  }

  /** The live entry for `key`, deleting it first when it has expired (lazy expiry). */
  function live(key: string): Entry | undefined {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt !== null && entry.expiresAt <= Date.now()) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  }

  function write(key: string, value: string, ttlMs: number | undefined): void {
    entries.set(key, { value, expiresAt: ttlMs === undefined ? null : Date.now() + checkTtlMs(ttlMs) });
  }

  /** The budget entry for `key`, with spends older than the window and lapsed leases dropped. */
  function budget(key: string, windowMs: number, now: number): BudgetEntry {
    let entry = budgets.get(key);
    if (entry === undefined || entry.expiresAt <= now) {
      entry = { spendAt: [], spendAmount: [], head: 0, spent: 0, held: new Map(), heldSum: 0, nextLapse: Infinity, expiresAt: now };
      budgets.set(key, entry);
    }
    dropSpends(entry, now - windowMs);
    if (entry.nextLapse <= now) {
      let next = Infinity;
      for (const [member, h] of entry.held) {
        if (h.until <= now) {
          entry.held.delete(member);
          // A lot's reservations leave one by one, as their members would.
          if (member instanceof HeldLot) for (let i = 1; i < member.count; i++) entry.heldSum = roundSum(entry.heldSum - h.amount);
          entry.heldSum = entry.held.size === 0 ? 0 : roundSum(entry.heldSum - h.amount);
        } else if (h.until < next) next = h.until;
      }
      entry.nextLapse = next;
    }
    return entry;
  }

  function nextReleaseMs(entry: BudgetEntry, windowMs: number, now: number): number {
    return entry.head < entry.spendAt.length ? Math.max(0, entry.spendAt[entry.head] + windowMs - now) : 0;
  }

  function budgetState(entry: BudgetEntry, windowMs: number, now: number): BudgetState {
    return { spent: entry.spent, held: entry.heldSum, nextReleaseMs: nextReleaseMs(entry, windowMs, now) };
  }

  /** A reservation's answer: one object (no spread of a second one per request). */
  function reservedState(reserved: boolean, entry: BudgetEntry, windowMs: number, now: number): BudgetState & { reserved: boolean } {
    return { reserved, spent: entry.spent, held: entry.heldSum, nextReleaseMs: nextReleaseMs(entry, windowMs, now) };
  }

  function rateLimitSync(key: string, spec: RateLimitSpec, peek: boolean): RateLimitResult {
    ensureOpen();
    const { intervalUs, burst } = checkRateSpec(spec.intervalMs, spec.burst);
    const nowUs = Date.now() * 1000;
    const current = rates.get(key);
    const tat = current !== undefined && current.expiresAt > Date.now() ? Math.max(current.tatUs, nowUs) : nowUs;
    const nextTat = tat + intervalUs;
    const allowAt = nextTat - burst * intervalUs;
    if (nowUs < allowAt) {
      return { allowed: false, remaining: 0, retryAfterMs: Math.ceil((allowAt - nowUs) / 1000), resetAfterMs: Math.ceil((tat - nowUs) / 1000) };
    }
    if (!peek) {
      const expiresAt = Date.now() + Math.ceil((nextTat - nowUs) / 1000);
      // The key's record is updated in place (no object per request).
      if (current !== undefined) {
        current.tatUs = nextTat;
        current.expiresAt = expiresAt;
      } else rates.set(key, { tatUs: nextTat, expiresAt });
    }
    return { allowed: true, remaining: Math.floor((nowUs - allowAt) / intervalUs), retryAfterMs: 0, resetAfterMs: Math.ceil((nextTat - nowUs) / 1000) };
  }

  function reserveSync(key: string, spec: BudgetSpec, reservation: BudgetReservation, peek: boolean): BudgetState & { reserved: boolean } {
    ensureOpen();
    const windowMs = checkTtlMs(spec.windowMs, 'windowMs');
    const leaseMs = checkTtlMs(reservation.leaseMs, 'leaseMs');
    const max = checkAmount(spec.max, 'max');
    const member = budgetMember(reservation.id, reservation.amount);
    const now = Date.now();
    const entry = budget(key, windowMs, now);
    const reserved = reservation.force === true || roundSum(entry.spent + entry.heldSum + reservation.amount) <= max;
    if (reserved && !peek && !entry.held.has(member)) {
      entry.held.set(member, { until: now + leaseMs, amount: reservation.amount });
      entry.lot = undefined;
      entry.heldSum = roundSum(entry.heldSum + reservation.amount);
      if (now + leaseMs < entry.nextLapse) entry.nextLapse = now + leaseMs;
    }
    if (!peek) entry.expiresAt = Math.max(entry.expiresAt, now + windowMs + leaseMs);
    return reservedState(reserved, entry, windowMs, now);
  }

  function commitSync(key: string, windowMs: number, id: string, amount: number): boolean {
    ensureOpen();
    const window = checkTtlMs(windowMs, 'windowMs');
    const member = budgetMember(id, amount);
    const now = Date.now();
    const entry = budget(key, window, now);
    const wasHeld = entry.held.delete(member);
    if (wasHeld) entry.heldSum = entry.held.size === 0 ? 0 : roundSum(entry.heldSum - amount);
    if (!committedLately(entry, member, now, true)) addSpend(entry, now, amount);
    entry.expiresAt = Math.max(entry.expiresAt, now + window);
    return wasHeld;
  }

  /** budgetReserveLocal: reserveSync without an id, held by `reservation.lot` (a lot shared with the same millisecond's). */
  function reserveLocal(key: string, spec: BudgetSpec, reservation: LocalReservation): BudgetState & { reserved: boolean } {
    ensureOpen();
    const windowMs = checkTtlMs(spec.windowMs, 'windowMs');
    const leaseMs = checkTtlMs(reservation.leaseMs, 'leaseMs');
    const max = checkAmount(spec.max, 'max');
    const amount = checkAmount(reservation.amount);
    const now = Date.now();
    const entry = budget(key, windowMs, now);
    const reserved = reservation.force === true || roundSum(entry.spent + entry.heldSum + amount) <= max;
    if (reserved) {
      const until = now + leaseMs;
      let lot = entry.lot;
      // Joined only while it is the last record held (not lapsed, not all settled) and its reservations are like this one.
      if (lot === undefined || lot.until !== until || lot.amount !== amount || lot.windowMs !== windowMs || !entry.held.has(lot)) {
        lot = new HeldLot(entry, key, windowMs, until, amount);
        entry.held.set(lot, lot);
        entry.lot = lot;
        if (until < entry.nextLapse) entry.nextLapse = until;
      }
      lot.count++;
      entry.heldSum = roundSum(entry.heldSum + amount);
      reservation.lot = lot;
    }
    entry.expiresAt = Math.max(entry.expiresAt, now + windowMs + leaseMs);
    return reservedState(reserved, entry, windowMs, now);
  }

  /** budgetSettleLocal: what commitSync / releaseSync do for a member, for a reservation of a lot (once). */
  function settleLocal(reservation: LocalReservation, commit: boolean): true | undefined {
    const lot = reservation.lot;
    if (lot === SETTLED) return true;
    if (!(lot instanceof HeldLot)) return undefined;
    ensureOpen();
    const { key, windowMs } = lot;
    reservation.lot = SETTLED;
    const amount = reservation.amount;
    const now = Date.now();
    // A commit drops what left the window and lapsed leases first (as commitSync); a lot whose lease
    // lapsed holds nothing any more (its amount left heldSum when it was dropped).
    const entry = commit ? budget(key, windowMs, now) : budgets.get(key);
    if (entry !== undefined && entry === lot.entry && lot.until > now && entry.held.has(lot)) {
      if (--lot.count === 0) entry.held.delete(lot);
      entry.heldSum = entry.held.size === 0 ? 0 : roundSum(entry.heldSum - amount);
    }
    if (commit && entry !== undefined) {
      addSpend(entry, now, amount);
      entry.expiresAt = Math.max(entry.expiresAt, now + windowMs);
    }
    return true;
  }

  function releaseSync(key: string, id: string, amount: number): boolean {
    ensureOpen();
    const member = budgetMember(id, amount);
    const entry = budgets.get(key);
    if (entry === undefined) return false;
    const h = entry.held.get(member);
    if (h === undefined || h.until <= Date.now()) return false;
    entry.held.delete(member);
    entry.heldSum = entry.held.size === 0 ? 0 : roundSum(entry.heldSum - amount);
    return true;
  }

  function makeLock(name: string, token: string): Lock {
    const key = lockKey(name);
    return {
      name,
      token,
      async renew(leaseMs: number): Promise<boolean> {
        ensureOpen();
        const lease = checkTtlMs(leaseMs, 'leaseMs');
        const entry = live(key);
        if (entry === undefined || entry.value !== token) return false;
        entry.expiresAt = Date.now() + lease;
        return true;
      },
      async release(): Promise<boolean> {
        ensureOpen();
        const entry = live(key);
        if (entry === undefined || entry.value !== token) return false;
        entries.delete(key);
        return true;
      },
    };
  }

  return {
    driver: 'memory',

    async get(key) {
      ensureOpen();
      return live(key)?.value ?? null;
    },

    async set(key, value, setOptions: SetOptions = {}) {
      ensureOpen();
      if (setOptions.ttlMs !== undefined) checkTtlMs(setOptions.ttlMs);
      if (setOptions.ifAbsent && live(key) !== undefined) return false;
      write(key, value, setOptions.ttlMs);
      return true;
    },

    async del(key) {
      ensureOpen();
      const existed = live(key) !== undefined;
      entries.delete(key);
      return existed;
    },

    async compareAndSet(key, expected, next, casOptions = {}) {
      ensureOpen();
      if (casOptions.ttlMs !== undefined) checkTtlMs(casOptions.ttlMs);
      const entry = live(key);
      const current = entry?.value ?? null;
      if (current !== expected) return false;
      if (casOptions.ttlMs !== undefined) write(key, next, casOptions.ttlMs);
      // Without a new TTL the key keeps the one it had (Redis KEEPTTL), so a state
      // change never turns an expiring record into a permanent one.
      else entries.set(key, { value: next, expiresAt: entry?.expiresAt ?? null });
      return true;
    },

    async take(key) {
      ensureOpen();
      const entry = live(key);
      if (entry === undefined) return null;
      entries.delete(key);
      return entry.value;
    },

    async incr(key, ttlMs) {
      ensureOpen();
      const lease = checkTtlMs(ttlMs);
      const entry = live(key);
      if (entry === undefined) {
        entries.set(key, { value: '1', expiresAt: Date.now() + lease });
        return 1;
      }
      const n = Number(entry.value);
      if (!/^-?\d+$/.test(entry.value) || !Number.isSafeInteger(n)) {
        throw new WardenError('internal', 'store: incr on a value that is not an integer', { reason: 'store_not_integer' });
      }
      entry.value = String(n + 1);
      if (entry.expiresAt === null) entry.expiresAt = Date.now() + lease;
      return n + 1;
    },

    async listPush(listEntries, listOptions) {
      ensureOpen();
      const ttl = checkTtlMs(listOptions.ttlMs);
      const max = checkListMax(listOptions.max);
      for (const { key, value } of listEntries) {
        let entry = lists.get(key);
        if (entry === undefined || entry.expiresAt <= Date.now()) lists.set(key, (entry = { items: [], expiresAt: 0 }));
        entry.items.unshift(value);
        if (entry.items.length > max) entry.items.length = max;
        entry.expiresAt = Date.now() + ttl;
      }
    },

    async listRange(key, count) {
      ensureOpen();
      const entry = lists.get(key);
      if (entry === undefined || entry.expiresAt <= Date.now()) return [];
      return entry.items.slice(0, Math.max(0, Math.floor(count)));
    },

    async ttl(key) {
      ensureOpen();
      const entry = live(key);
      if (entry === undefined) return -2;
      if (entry.expiresAt === null) return -1;
      return Math.max(0, entry.expiresAt - Date.now());
    },

    keys(prefix) {
      return (async function* iterate(): AsyncGenerator<string> {
        ensureOpen();
        // Snapshot the names so callers may write while iterating (e.g. rekey).
        const names = [...entries.keys()].filter((k) => k.startsWith(prefix));
        for (const key of names) {
          if (live(key) !== undefined) yield key;
        }
      })();
    },

    async tryLock(name, leaseMs) {
      ensureOpen();
      const lease = checkTtlMs(leaseMs, 'leaseMs');
      const key = lockKey(name);
      if (live(key) !== undefined) return null;
      const token = newLockToken();
      entries.set(key, { value: token, expiresAt: Date.now() + lease });
      return makeLock(name, token);
    },

    async rateLimit(key, spec, rateOptions = {}) {
      return rateLimitSync(key, spec, rateOptions.peek === true);
    },

    async budgetReserve(key, spec, reservation, reserveOptions = {}) {
      return reserveSync(key, spec, reservation, reserveOptions.peek === true);
    },

    async budgetCommit(key, windowMs, id, amount) {
      return commitSync(key, windowMs, id, amount);
    },

    async budgetRelease(key, id, amount) {
      return releaseSync(key, id, amount);
    },

    // Everything here is in-process: the warm paths are the same operations, without a promise.
    rateLimitNow: (key, spec) => rateLimitSync(key, spec, false),
    budgetReserveNow: (key, spec, reservation) => reserveSync(key, spec, reservation, false),
    budgetSettleNow(key, windowMs, id, amount, commit) {
      if (commit) commitSync(key, windowMs, id, amount);
      else releaseSync(key, id, amount);
      return true;
    },
    // Without an id: the reservation's own record holds its lot (nothing kept per request, O(1) to settle).
    budgetReserveLocal: (key, spec, reservation) => reserveLocal(key, spec, reservation),
    budgetSettleLocal: (reservation, commit) => settleLocal(reservation, commit),

    async budgetRead(key, windowMs) {
      ensureOpen();
      const window = checkTtlMs(windowMs, 'windowMs');
      const now = Date.now();
      const entry = budgets.get(key);
      if (entry === undefined) return { spent: 0, held: 0, nextReleaseMs: 0 };
      return budgetState(budget(key, window, now), window, now);
    },

    async publish(channel, message) {
      ensureOpen();
      const handlers = channels.get(channel);
      if (handlers === undefined) return;
      // Deliver asynchronously, like Redis: a publisher never runs subscriber code
      // inside its own call stack, and one failing handler cannot affect another.
      for (const handler of [...handlers]) {
        queueMicrotask(() => {
          try {
            handler(message);
          } catch {
            // A subscriber's bug must not break the publisher or other subscribers.
          }
        });
      }
    },

    async subscribe(channel, onMessage): Promise<Unsubscribe> {
      ensureOpen();
      let handlers = channels.get(channel);
      if (handlers === undefined) channels.set(channel, (handlers = new Set()));
      // Wrap so the same function subscribed twice gets two independent subscriptions.
      const handler = (message: string) => onMessage(message);
      handlers.add(handler);
      return async () => {
        const set = channels.get(channel);
        set?.delete(handler);
        if (set?.size === 0) channels.delete(channel);
      };
    },

    async ping() {
      ensureOpen();
    },

    budgetStats() {
      const stats: MemoryBudgetStats = { spendRecords: 0, held: 0, committedRemembered: 0 };
      for (const entry of budgets.values()) {
        stats.spendRecords += entry.spendAt.length - entry.head;
        for (const h of entry.held.keys()) stats.held += typeof h === 'string' ? 1 : h.count;
        stats.committedRemembered += (entry.committed?.now.size ?? 0) + (entry.committed?.before.size ?? 0);
      }
      return stats;
    },

    async close() {
      closed = true;
      clearInterval(sweepTimer);
      entries.clear();
      channels.clear();
      rates.clear();
      budgets.clear();
    },
  };
}
