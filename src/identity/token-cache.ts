/**
 * Verified-token cache: a bounded LRU keyed by the SHA-256 of the token, so a
 * repeated bearer token skips signature verification. An entry never outlives
 * the token's `exp` (no clock tolerance here: tolerance only softens the first
 * verification, it never extends a cached answer).
 */

import { hash } from 'node:crypto';

/** Hit/miss counters of one cache instance (for metrics). */
export interface TokenCacheStats {
  hits: number;
  misses: number;
  size: number;
}

/** A bounded cache of verified values by token. */
export interface TokenCache<T> {
  /** The cached value for `token`, or undefined when absent or past its expiry at `nowMs`. */
  get(token: string, nowMs: number): T | undefined;
  /** Like `get`, but a miss is not counted (the caller goes on to `get`). */
  peek(token: string, nowMs: number): T | undefined;
  /** Cache `value` until `expiresAtMs` (exclusive); ignored when already expired or the cache is disabled. */
  set(token: string, value: T, expiresAtMs: number, nowMs: number): void;
  clear(): void;
  stats(): TokenCacheStats;
}

interface Entry<T> {
  value: T;
  expiresAtMs: number;
}

/** Key of a token in the cache: the raw token is never kept in memory longer than needed. */
export function tokenCacheKey(token: string): string {
  // One-shot hash: no Hash object per request on the hot path.
  return hash('sha256', token, 'base64url');
}

/**
 * Create a cache holding at most `maxEntries` values (0 disables it: every
 * `get` misses and `set` is a no-op). Eviction is least-recently-used, using
 * the insertion order of a Map (a hit re-inserts its entry at the end).
 */
export function createTokenCache<T>(maxEntries: number): TokenCache<T> {
  if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new TypeError('maxEntries must be a non-negative integer');
  const entries = new Map<string, Entry<T>>();
  let hits = 0;
  let misses = 0;

  const lookup = (token: string, nowMs: number): T | undefined => {
    if (maxEntries === 0) return undefined;
    const key = tokenCacheKey(token);
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (nowMs >= entry.expiresAtMs) {
      entries.delete(key);
      return undefined;
    }
    entries.delete(key);
    entries.set(key, entry);
    hits++;
    return entry.value;
  };

  return {
    get(token, nowMs) {
      const value = lookup(token, nowMs);
      if (value === undefined) misses++;
      return value;
    },
    peek: lookup,
    set(token, value, expiresAtMs, nowMs) {
      if (maxEntries === 0 || !(expiresAtMs > nowMs)) return;
      const key = tokenCacheKey(token);
      entries.delete(key);
      entries.set(key, { value, expiresAtMs });
      while (entries.size > maxEntries) {
        const oldest = entries.keys().next().value as string;
        entries.delete(oldest);
      }
    },
    clear() {
      entries.clear();
    },
    stats() {
      return { hits, misses, size: entries.size };
    },
  };
}
