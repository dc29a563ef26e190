/**
 * The `memory` store driver: one process, nothing survives a restart. It keeps
 * the exact semantics of the redis driver (same contract suite) so the embedded
 * default behaves like production, only without sharing between instances.
 */

import type { BudgetReservation, BudgetSpec, BudgetState, Lock, RateLimitResult, RateLimitSpec, SetOptions, Store, Unsubscribe } from './store.js';
import { WardenError } from '../core/errors.js';
import { budgetMember, checkAmount, checkListMax, checkRateSpec, checkTtlMs, lockKey, newLockToken, roundSum, storeClosed } from './guards.js';

interface Entry {
  value: string;
  /** Epoch ms after which the entry is gone; null = no expiry. */
  expiresAt: number | null;
}

/** Options of the memory driver (all optional). */
export interface MemoryStoreOptions {
  /**
   * How often expired entries are purged in the background. Expiry is also
   * checked on every read, so this only bounds memory held by keys nobody reads.
   */
  sweepIntervalMs?: number;
}

/** GCRA state of one rate-limit key: the theoretical arrival time, in µs. */
interface RateEntry {
  tatUs: number;
  expiresAt: number;
}

/** One budget key: spends in commit order (a sliding window) and leased reservations. */
interface BudgetEntry {
  spends: Array<{ at: number; member: string; amount: number }>;
  spendMembers: Set<string>;
  spent: number;
  held: Map<string, { until: number; amount: number }>;
  heldSum: number;
  /** Nothing in the entry matters after this (window + lease since the last write). */
  expiresAt: number;
}

/** Create an in-process store. Call `close()` to stop its sweep timer and drop subscribers. */
export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const entries = new Map<string, Entry>();
  const channels = new Map<string, Set<(message: string) => void>>();
  const rates = new Map<string, RateEntry>();
  const budgets = new Map<string, BudgetEntry>();
  /** Lists, newest entry first. */
  const lists = new Map<string, { items: string[]; expiresAt: number }>();
  let closed = false;

  const sweepTimer = setInterval(() => {
    const now = Date.now();
    for (const [key, entry] of entries) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) entries.delete(key);
    }
    for (const [key, entry] of rates) if (entry.expiresAt <= now) rates.delete(key);
    for (const [key, entry] of budgets) if (entry.expiresAt <= now) budgets.delete(key);
    for (const [key, entry] of lists) if (entry.expiresAt <= now) lists.delete(key);
  }, options.sweepIntervalMs ?? 30_000);
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
      entry = { spends: [], spendMembers: new Set(), spent: 0, held: new Map(), heldSum: 0, expiresAt: now };
      budgets.set(key, entry);
    }
    const cutoff = now - windowMs;
    let drop = 0;
    let gone = 0;
    while (drop < entry.spends.length && entry.spends[drop].at <= cutoff) {
      gone += entry.spends[drop].amount;
      entry.spendMembers.delete(entry.spends[drop].member);
      drop++;
    }
    if (drop > 0) {
      entry.spends.splice(0, drop);
      entry.spent = entry.spends.length === 0 ? 0 : roundSum(entry.spent - gone);
    }
    for (const [member, h] of entry.held) {
      if (h.until <= now) {
        entry.held.delete(member);
        entry.heldSum = entry.held.size === 0 ? 0 : roundSum(entry.heldSum - h.amount);
      }
    }
    return entry;
  }

  function budgetState(entry: BudgetEntry, windowMs: number, now: number): BudgetState {
    const oldest = entry.spends[0];
    return { spent: entry.spent, held: entry.heldSum, nextReleaseMs: oldest ? Math.max(0, oldest.at + windowMs - now) : 0 };
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
    if (!peek) rates.set(key, { tatUs: nextTat, expiresAt: Date.now() + Math.ceil((nextTat - nowUs) / 1000) });
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
      entry.heldSum = roundSum(entry.heldSum + reservation.amount);
    }
    if (!peek) entry.expiresAt = Math.max(entry.expiresAt, now + windowMs + leaseMs);
    return { reserved, ...budgetState(entry, windowMs, now) };
  }

  function commitSync(key: string, windowMs: number, id: string, amount: number): boolean {
    ensureOpen();
    const window = checkTtlMs(windowMs, 'windowMs');
    const member = budgetMember(id, amount);
    const now = Date.now();
    const entry = budget(key, window, now);
    const wasHeld = entry.held.delete(member);
    if (wasHeld) entry.heldSum = entry.held.size === 0 ? 0 : roundSum(entry.heldSum - amount);
    if (!entry.spendMembers.has(member)) {
      entry.spendMembers.add(member);
      entry.spends.push({ at: now, member, amount });
      entry.spent = roundSum(entry.spent + amount);
    }
    entry.expiresAt = Math.max(entry.expiresAt, now + window);
    return wasHeld;
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
