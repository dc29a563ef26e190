/**
 * A short-lived, bounded in-process cache of decrypted connections for the
 * credentials stage, so a warm request does no store round trip and no
 * AES-GCM open. Writes through this repository invalidate the entry here and,
 * via store pub/sub, on every other instance; the TTL bounds how long a lost
 * invalidation can matter (revocation is visible everywhere within it).
 */

import type { Store, Unsubscribe } from '../store/store.js';
import type { Logger } from '../observability/logger.js';
import type { BoundCounter, Metrics } from '../observability/metrics.js';
import type { Connection, ConnectionRepository } from './records.js';

const CHANNEL = 'vault:connection-changed';

export interface CachedConnections extends ConnectionRepository {
  /** The connection as of at most `ttlMs` ago (the hot path); `get` always reads the store. */
  cachedGet(user: string, provider: string): Promise<Connection | null>;
  /** The cached connection when one is held and fresh, without a promise; undefined otherwise (then use cachedGet). */
  peek(user: string, provider: string): Connection | undefined;
  close(): Promise<void>;
}

export interface ConnectionCacheOptions {
  store: Store;
  ttlMs: number;
  maxEntries?: number;
  logger: Logger;
  metrics?: Metrics;
  now?: () => number;
}

const keyText = (user: string, provider: string) => `${encodeURIComponent(user)} ${encodeURIComponent(provider)}`;

/** Wrap `repo`; `ttlMs` 0 disables caching (cachedGet reads the store). */
export async function withConnectionCache(repo: ConnectionRepository, options: ConnectionCacheOptions): Promise<CachedConnections> {
  const { store, ttlMs, logger, metrics } = options;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, { value: Connection | null; until: number }>();
  // The last key built: an agent's requests ask for the same user and provider again and again (two encodes saved per warm request).
  let lastUser = '';
  let lastProvider = '';
  let lastKey = '';
  const keyOf = (user: string, provider: string): string => {
    if (user !== lastUser || provider !== lastProvider || lastKey === '') {
      lastKey = keyText(user, provider);
      lastUser = user;
      lastProvider = provider;
    }
    return lastKey;
  };
  // Series bound at their first use (none before it): counting a lookup is then one addition.
  let hits: BoundCounter | undefined;
  let misses: BoundCounter | undefined;
  const hit = () => {
    if (metrics) (hits ??= metrics.counter('warden_vault_cache_total', { result: 'hit' })).inc();
  };
  const miss = () => {
    if (metrics) (misses ??= metrics.counter('warden_vault_cache_total', { result: 'miss' })).inc();
  };

  /**
   * Store reads in flight, by key: every request that misses while one runs
   * waits for it instead of reading again (at each TTL expiry every
   * concurrent request of a busy user missed together, a store read and an
   * AES-GCM open each). A write drops the read in flight with the entry, so
   * later misses read afresh instead of joining it, and what that read
   * returns is never kept (it may predate a revocation).
   */
  const reading = new Map<string, Promise<Connection | null>>();
  const drop = (key: string) => {
    entries.delete(key);
    reading.delete(key);
  };
  let unsubscribe: Unsubscribe | undefined;
  if (ttlMs > 0) {
    unsubscribe = await store.subscribe(CHANNEL, (key) => drop(key));
  }
  const changed = async (user: string, provider: string) => {
    const key = keyOf(user, provider);
    drop(key);
    if (ttlMs > 0) {
      // Best effort: the TTL bounds staleness when a message is lost.
      await store.publish(CHANNEL, key).catch((err) => logger.warn({ err }, 'vault cache invalidation could not be published'));
    }
  };

  return {
    get: (user, provider) => repo.get(user, provider),
    list: (user) => repo.list(user),
    peek(user, provider) {
      if (ttlMs <= 0) return undefined;
      const entry = entries.get(keyOf(user, provider));
      if (!entry || entry.value === null || entry.until <= now()) return undefined;
      hit();
      return entry.value;
    },
    async cachedGet(user, provider) {
      if (ttlMs <= 0) return repo.get(user, provider);
      const key = keyOf(user, provider);
      const entry = entries.get(key);
      const t = now();
      if (entry && entry.until > t) {
        hit();
        return entry.value;
      }
      miss();
      let pending = reading.get(key);
      if (pending === undefined) {
        const read = repo.get(user, provider);
        reading.set(key, read);
        // Registered before any caller awaits: the entry is stored before they go on.
        read.then(
          (value) => {
            // A write (here or, via pub/sub, elsewhere) dropped this read while it ran: what it read
            // may be what that write replaced or revoked, so it answers its own callers but is not kept.
            if (reading.get(key) !== read) return;
            reading.delete(key);
            if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
            entries.set(key, { value, until: t + ttlMs });
          },
          () => {
            if (reading.get(key) === read) reading.delete(key);
          },
        );
        pending = read;
      }
      return pending;
    },
    async put(connection) {
      const stored = await repo.put(connection);
      await changed(connection.user, connection.provider);
      return stored;
    },
    async replace(connection, expectedVersion) {
      const stored = await repo.replace(connection, expectedVersion);
      await changed(connection.user, connection.provider);
      return stored;
    },
    async delete(user, provider) {
      const deleted = await repo.delete(user, provider);
      await changed(user, provider);
      return deleted;
    },
    async rekey(onProgress) {
      const summary = await repo.rekey(onProgress);
      entries.clear();
      reading.clear();
      return summary;
    },
    async close() {
      entries.clear();
      reading.clear();
      await unsubscribe?.();
    },
  };
}
