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
  publish(channel: string, message: string): Promise<void>;
  /** Subscribe; resolves once the subscription is active. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<Unsubscribe>;
  /** Rejects when the backend is not reachable (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
