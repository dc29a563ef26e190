/**
 * The hot-path connection cache: warm reads skip the store, and a write on one
 * instance (revocation, refresh, relink) invalidates the others through real
 * Redis pub/sub — long before the TTL would.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../../src/store/redis.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createConnectionRepository } from '../../src/vault/records.js';
import { withConnectionCache, type CachedConnections } from '../../src/vault/read-cache.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Store } from '../../src/store/store.js';
import { startRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
let stores: Store[] = [];
let caches: CachedConnections[] = [];
const logger = createLogger({ level: 'silent' });
const cipher = createVaultCipher([{ id: 'k1', key: generateVaultKey() }]);

async function instance(ttlMs: number) {
  const store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 1000, logger });
  stores.push(store);
  const cache = await withConnectionCache(createConnectionRepository(store, cipher), { store, ttlMs, logger });
  caches.push(cache);
  return { store, cache };
}

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(caches.map((c) => c.close()));
  await Promise.all(stores.map((s) => s.close()));
  await redis?.stop();
});

const link = (c: CachedConnections, user: string, token: string) =>
  c.put({ user, provider: 'github', accessToken: token, scopes: ['repo'], expiresAt: Date.now() + 3_600_000 });

describe('connection read cache', () => {
  it('serves warm reads from memory and drops entries revoked on another instance', async () => {
    const a = await instance(60_000);
    const b = await instance(60_000);
    await link(a.cache, 'alice', 'gho_first');
    // The link's own invalidation reaches B through pub/sub: a read B had in flight then would not be kept.
    await new Promise((r) => setTimeout(r, 200));
    expect((await b.cache.cachedGet('alice', 'github'))?.accessToken).toBe('gho_first');

    // A read that bypasses the cache proves the cache is what answers: change the
    // record behind B's back without publishing, and B still sees the old value.
    const raw = createConnectionRepository(b.store, cipher);
    const current = (await raw.get('alice', 'github'))!;
    await raw.replace({ ...current, accessToken: 'gho_silent' }, current.version);
    expect((await b.cache.cachedGet('alice', 'github'))?.accessToken).toBe('gho_first');

    // Revocation through the cached repository on A reaches B at once.
    await a.cache.delete('alice', 'github');
    let seen: unknown = 'still cached';
    for (let i = 0; i < 100 && seen !== null; i++) {
      seen = await b.cache.cachedGet('alice', 'github');
      if (seen !== null) await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen).toBeNull();
  });

  it('a refresh written on one instance replaces the cached token on the others', async () => {
    const a = await instance(60_000);
    const b = await instance(60_000);
    await link(a.cache, 'bob', 'gho_old');
    expect((await b.cache.cachedGet('bob', 'github'))?.accessToken).toBe('gho_old');
    const current = (await a.cache.get('bob', 'github'))!;
    await a.cache.replace({ ...current, accessToken: 'gho_new' }, current.version);
    let token: string | undefined = 'gho_old';
    for (let i = 0; i < 100 && token === 'gho_old'; i++) {
      token = (await b.cache.cachedGet('bob', 'github'))?.accessToken;
      if (token === 'gho_old') await new Promise((r) => setTimeout(r, 20));
    }
    expect(token).toBe('gho_new');
  });

  it('requests that miss together share one store read, and a write drops the read in flight', async () => {
    const store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 1000, logger });
    stores.push(store);
    const repo = createConnectionRepository(store, cipher);
    let reads = 0;
    let gate: Promise<void> = Promise.resolve();
    // The real repository, counted, and held (while `gate` is pending) after it has read.
    const counted = { ...repo, get: async (user: string, provider: string) => (reads++, await repo.get(user, provider).then(async (v) => (await gate, v))) };
    let clock = 1_000_000;
    const cache = await withConnectionCache(counted, { store, ttlMs: 1_000, logger, now: () => clock });
    caches.push(cache);
    await link(cache, 'dave', 'gho_a');
    // The link's own invalidation comes back through pub/sub: let it pass before measuring.
    await new Promise((r) => setTimeout(r, 200));

    const together = await Promise.all(Array.from({ length: 20 }, () => cache.cachedGet('dave', 'github')));
    expect(reads).toBe(1);
    expect(new Set(together.map((c) => c?.accessToken))).toEqual(new Set(['gho_a']));
    expect(cache.peek('dave', 'github')?.accessToken).toBe('gho_a');

    // Past the TTL: the next wave of misses reads once more.
    clock += 1_001;
    await Promise.all(Array.from({ length: 20 }, () => cache.cachedGet('dave', 'github')));
    expect(reads).toBe(2);

    // A write drops the read in flight: a miss after it reads again instead of joining the older read.
    clock += 1_001;
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const before = cache.cachedGet('dave', 'github');
    await new Promise((r) => setTimeout(r, 50));
    const current = (await repo.get('dave', 'github'))!;
    await cache.replace({ ...current, accessToken: 'gho_b' }, current.version);
    const after = cache.cachedGet('dave', 'github');
    open();
    expect((await before)?.accessToken).toBe('gho_a');
    expect((await after)?.accessToken).toBe('gho_b');
    expect(reads).toBe(4);
  });

  it('keeps users and providers apart when requests for them alternate', async () => {
    const a = await instance(60_000);
    await link(a.cache, 'erin', 'gho_erin');
    await link(a.cache, 'frank', 'gho_frank');
    await a.cache.put({ user: 'erin', provider: 'gitlab', accessToken: 'glpat_erin', scopes: [], expiresAt: Date.now() + 3_600_000 });
    const asks: Array<[string, string, string]> = [
      ['erin', 'github', 'gho_erin'],
      ['frank', 'github', 'gho_frank'],
      ['erin', 'gitlab', 'glpat_erin'],
      ['erin', 'github', 'gho_erin'],
    ];
    for (let round = 0; round < 2; round++) {
      for (const [user, provider, token] of asks) {
        expect((await a.cache.cachedGet(user, provider))?.accessToken).toBe(token);
        expect(a.cache.peek(user, provider)?.accessToken).toBe(token);
      }
    }
    expect(a.cache.peek('frank', 'gitlab')).toBeUndefined();
  });

  it('ttl 0 disables the cache', async () => {
    const a = await instance(0);
    await link(a.cache, 'carol', 'gho_1');
    expect((await a.cache.cachedGet('carol', 'github'))?.accessToken).toBe('gho_1');
    const raw = createConnectionRepository(a.store, cipher);
    const current = (await raw.get('carol', 'github'))!;
    await raw.replace({ ...current, accessToken: 'gho_2' }, current.version);
    expect((await a.cache.cachedGet('carol', 'github'))?.accessToken).toBe('gho_2');
  });
});

describe('connection read cache: writes during a read in flight', () => {
  it('a revocation while a read is in flight is not cached by that read (the revoked token is never served afterwards)', async () => {
    const store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 1000, logger });
    stores.push(store);
    const repo = createConnectionRepository(store, cipher);
    let gate: Promise<void> = Promise.resolve();
    // The real repository, held (while `gate` is pending) after it has read: a store answer still on its way.
    const held = { ...repo, get: async (user: string, provider: string) => repo.get(user, provider).then(async (v) => (await gate, v)) };
    const cache = await withConnectionCache(held, { store, ttlMs: 60_000, logger });
    caches.push(cache);
    await link(cache, 'gina', 'gho_revoked_soon');
    await new Promise((r) => setTimeout(r, 200));

    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const inFlight = cache.cachedGet('gina', 'github');
    await new Promise((r) => setTimeout(r, 50));
    // The user revokes the connection while that read is on its way back.
    expect(await cache.delete('gina', 'github')).toBe(true);
    open();
    // The request that asked before the revocation may still see the old record...
    expect((await inFlight)?.accessToken).toBe('gho_revoked_soon');
    // ...but no request after it: the revocation is not undone by the read it overtook.
    expect(cache.peek('gina', 'github')).toBeUndefined();
    expect(await cache.cachedGet('gina', 'github')).toBeNull();
  });

  it('an invalidation from another instance while a read is in flight is not undone by that read', async () => {
    const a = await instance(60_000);
    const store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 1000, logger });
    stores.push(store);
    const repo = createConnectionRepository(store, cipher);
    let gate: Promise<void> = Promise.resolve();
    const held = { ...repo, get: async (user: string, provider: string) => repo.get(user, provider).then(async (v) => (await gate, v)) };
    const b = await withConnectionCache(held, { store, ttlMs: 60_000, logger });
    caches.push(b);
    await link(a.cache, 'hank', 'gho_hank');
    await new Promise((r) => setTimeout(r, 200));

    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    const inFlight = b.cachedGet('hank', 'github');
    await new Promise((r) => setTimeout(r, 50));
    await a.cache.delete('hank', 'github');
    // B hears of the revocation (its store read already answered, still on its way).
    await new Promise((r) => setTimeout(r, 200));
    open();
    await inFlight;
    expect(b.peek('hank', 'github')).toBeUndefined();
    expect(await b.cachedGet('hank', 'github')).toBeNull();
  });
});
