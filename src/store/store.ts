/**
 * The Store is everything Warden keeps that must survive a restart or be seen by
 * another instance: vault records, approvals, locks, rate limits, pub/sub.
 * Drivers: `memory` (one process) and `redis`. Both pass `store.contract.test.ts`.
 *
 * Keys are plain strings; callers namespace them (`vault:…`, `approval:…`).
 * Every method rejects with WardenError `store_unavailable` when the backend
 * cannot answer in time (fail closed).
 */

export interface SetOptions {
  /** Time to live in milliseconds; omitted = no expiry. */
  ttlMs?: number;
  /** Only set when the key does not exist (SET NX). */
  ifAbsent?: boolean;
}

/** A held lock. `renew` and `release` only act while this holder still owns it. */
export interface Lock {
  readonly name: string;
  readonly token: string;
  /** Extend the lease; false when the lease was lost (another holder has it). */
  renew(leaseMs: number): Promise<boolean>;
  /** Release; false when the lease had already been lost. */
  release(): Promise<boolean>;
}

export type Unsubscribe = () => Promise<void>;

/**
 * Told how a settlement `budgetSettleNow` took that is recorded later (a Redis
 * local quota block flushes it) went: `done` (held: whether the lease still
 * held) or `failed`; one settled at once hears nothing. One per budget, shared
 * by its requests (no closure per request).
 */
export interface SettleWatcher {
  done(held: boolean): void;
  failed(err: unknown): void;
}

/**
 * A GCRA rate limit: up to `burst` requests at once, then one more every
 * `intervalMs` (so `burst` per `burst * intervalMs` sustained).
 */
export interface RateLimitSpec {
  /** Emission interval in ms (the limit's period divided by its requests); may be fractional. */
  intervalMs: number;
  /** Requests allowed at once (at least 1). */
  burst: number;
}

/** One rate-limit decision. */
export interface RateLimitResult {
  allowed: boolean;
  /** Requests still allowed right now after this one (0 when refused). */
  remaining: number;
  /** When refused: ms until one request would be allowed; 0 when allowed. */
  retryAfterMs: number;
  /** Ms until the full burst is available again. */
  resetAfterMs: number;
}

/** A spend budget's window: at most `max` in any `windowMs` (sliding). */
export interface BudgetSpec {
  max: number;
  windowMs: number;
}

/** A budget key's current state. Amounts are finite, non-negative numbers. */
export interface BudgetState {
  /** Committed spends inside the window. */
  spent: number;
  /** Reservations in flight (leased, not yet committed or released). */
  held: number;
  /** Ms until the oldest committed spend leaves the window (0 when there is none). */
  nextReleaseMs: number;
}

/** A reservation request: `id` is unique per reservation (random), `leaseMs` bounds how long it counts uncommitted. */
export interface BudgetReservation {
  id: string;
  amount: number;
  leaseMs: number;
  /** Reserve even past `max` (an over-budget request a person approved). */
  force?: boolean;
}

/** A reservation the caller keeps until it settles it (budgetReserveLocal): `lot` starts undefined and belongs to the store. */
export interface LocalReservation extends BudgetReservation {
  lot: unknown;
}

export interface Store {
  readonly driver: 'memory' | 'redis';
  get(key: string): Promise<string | null>;
  /** Returns false only when `ifAbsent` was set and the key existed. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /** Returns true when a key was deleted. */
  del(key: string): Promise<boolean>;
  /**
   * Atomically replace the value when it currently equals `expected`
   * (`null` = key absent). Returns true on success. Without `ttlMs` the key
   * keeps the TTL it had (Redis KEEPTTL); with it, the TTL is reset.
   */
  compareAndSet(key: string, expected: string | null, next: string, options?: { ttlMs?: number }): Promise<boolean>;
  /** Atomically read and delete (single-use values such as connect tickets). */
  take(key: string): Promise<string | null>;
  /** Increment a counter, creating it with `ttlMs` when absent; returns the new value. */
  incr(key: string, ttlMs: number): Promise<number>;
  /** Remaining time to live in ms; -1 no expiry; -2 absent. */
  ttl(key: string): Promise<number>;
  /** Keys starting with `prefix` (bounded iteration; for listings and maintenance). */
  keys(prefix: string): AsyncIterable<string>;
  /** Try once to take the named lock for `leaseMs`; null when someone holds it. */
  tryLock(name: string, leaseMs: number): Promise<Lock | null>;
  /**
   * One atomic GCRA decision for `key` (cross-instance exact on Redis: one
   * script, Redis' clock). `peek` answers without consuming anything.
   */
  rateLimit(key: string, spec: RateLimitSpec, options?: { peek?: boolean }): Promise<RateLimitResult>;
  /**
   * Atomically: drop spends older than the window and lapsed reservations, then
   * reserve `amount` when spent + held + amount <= max (or `force`). A reservation
   * counts like a spend until committed, released or its lease lapses.
   * `peek` decides without reserving. The state returned is the one after the
   * decision (`held` includes this reservation when it was made).
   */
  budgetReserve(key: string, spec: BudgetSpec, reservation: BudgetReservation, options?: { peek?: boolean }): Promise<BudgetState & { reserved: boolean }>;
  /**
   * Turn a reservation into a spend dated now. The spend is recorded even when
   * the lease had lapsed (the upstream did act); false tells the caller so.
   * Committing the same id twice records it once (the memory driver
   * remembers a committed id for one to two seconds, Redis' local quota
   * blocks for their block's life: a store keeps no record per request for
   * long, and Warden settles each reservation once).
   */
  budgetCommit(key: string, windowMs: number, id: string, amount: number): Promise<boolean>;
  /** Drop a reservation (the upstream failed); false when it was not held any more. */
  budgetRelease(key: string, id: string, amount: number): Promise<boolean>;
  /** The key's state now (nothing reserved). */
  budgetRead(key: string, windowMs: number): Promise<BudgetState>;
  /**
   * Warm paths without a promise (optional; a caller falls back to the methods
   * above when absent or when they answer undefined). Each means exactly what
   * its asynchronous twin means (never `peek` or `force`), decided in-process
   * now: always by the memory store; by the Redis store only from a local quota
   * block (redis-blocks.ts), undefined when Redis must be asked. They throw
   * what their twins reject with.
   */
  rateLimitNow?(key: string, spec: RateLimitSpec): RateLimitResult | undefined;
  budgetReserveNow?(key: string, spec: BudgetSpec, reservation: BudgetReservation): (BudgetState & { reserved: boolean }) | undefined;
  /**
   * Commit (`commit`) or release a reservation now, without a promise: true
   * when settled here (what is recorded later is told to `watcher`, once per
   * reservation), undefined when the caller must use budgetCommit / budgetRelease.
   */
  budgetSettleNow?(key: string, windowMs: number, id: string, amount: number, commit: boolean, watcher: SettleWatcher): true | undefined;
  /**
   * The warm path without an id per reservation (optional): like
   * budgetReserveNow, but what it answers is held by `reservation` itself
   * (`reservation.lot`, opaque, set here; `id` is never read): nothing is kept
   * per reservation in the store, and budgetSettleLocal settles it in O(1).
   * Undefined (with `lot` untouched) when the caller must use the methods above.
   */
  budgetReserveLocal?(key: string, spec: BudgetSpec, reservation: LocalReservation): (BudgetState & { reserved: boolean }) | undefined;
  /** Commit or release what budgetReserveLocal reserved (`reservation.lot` set): true; undefined when it did not (settle by id). */
  budgetSettleLocal?(reservation: LocalReservation, commit: boolean, watcher: SettleWatcher): true | undefined;
  /**
   * For each entry in order: push `value` at the head of the list `key`, keep
   * only the newest `max` entries and (re)set the list's TTL. One atomic step
   * and one round trip for the whole batch: a bounded ring of recent items
   * (the console's per-user activity), written in batches. Redis pushes all of
   * a batch's values for one list in one LPUSH.
   */
  listPush(entries: ReadonlyArray<{ key: string; value: string }>, options: { max: number; ttlMs: number }): Promise<void>;
  /** Up to `count` entries of the list, newest first ([] when absent). */
  listRange(key: string, count: number): Promise<string[]>;
  publish(channel: string, message: string): Promise<void>;
  /** Subscribe; resolves once the subscription is active. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<Unsubscribe>;
  /** Rejects when the backend is not reachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
