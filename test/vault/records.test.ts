/**
 * Connection records over a real Store (memory and a real redis-server):
 * sealing at rest, tamper and swap detection, version compare-and-set,
 * key rotation and a resumable, idempotent rekey.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/core/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { connectionKey, createConnectionRepository, type NewConnection } from '../../src/vault/records.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const k1 = { id: 'k1', key: generateVaultKey() };
const k2 = { id: 'k2', key: generateVaultKey() };
let counter = 0;

function link(user: string, provider = 'github'): NewConnection {
  counter += 1;
  return {
    user,
    provider,
    accessToken: `gho_access_${counter}_${user}`,
    refreshToken: `ghr_refresh_${counter}_${user}`,
    tokenType: 'Bearer',
    scopes: ['repo'],
    expiresAt: Date.now() + 3_600_000,
  };
}

async function failure(promise: Promise<unknown>): Promise<WardenError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof WardenError)) throw new Error(`expected a WardenError, got ${String(err)}`);
  return err;
}

/** Flip one byte of the ciphertext part of a sealed value. */
function tamper(sealed: string): string {
  const parts = sealed.split(':');
  const bytes = Buffer.from(parts[3]!, 'base64url');
  bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0x80;
  parts[3] = bytes.toString('base64url');
  return parts.join(':');
}

function repositoryContract(driver: string, open: () => Promise<Store>, teardown: () => Promise<void>) {
  describe(`connection records on the ${driver} store`, () => {
    let store: Store;
    // Each test uses its own users, so tests share one store safely.
    let run = 0;
    const userFor = (name: string) => `${name}-${driver}-${++run}`;

    beforeAll(async () => {
      store = await open();
    });
    afterAll(teardown);

    it('put then get returns the connection, sealed at rest (no token in the stored value)', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      const input = link(alice);
      const stored = await repo.put(input);
      expect(stored).toMatchObject({ ...input, version: 1, status: 'active' });
      expect(await repo.get(alice, 'github')).toEqual(stored);
      const raw = await store.get(connectionKey(alice, 'github'));
      expect(raw).not.toBeNull();
      expect(raw).not.toContain(input.accessToken);
      expect(raw).not.toContain(input.refreshToken);
      expect(raw).not.toContain(alice);
      expect(await repo.get(alice, 'gitlab')).toBeNull();
    });

    it('a tampered record (one flipped byte) is an error, never plaintext', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      await repo.put(link(alice));
      const key = connectionKey(alice, 'github');
      await store.set(key, tamper((await store.get(key))!));
      const err = await failure(repo.get(alice, 'github'));
      expect(err.code).toBe('internal');
      expect(err.reason).toBe('vault_record_invalid');
      await expect(repo.list(alice)).rejects.toMatchObject({ reason: 'vault_record_invalid' });
    });

    it("user A's ciphertext copied into user B's key (or another provider's) is an error", async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const a = userFor('a');
      const b = userFor('b');
      await repo.put(link(a));
      await repo.put(link(b));
      const aRaw = (await store.get(connectionKey(a, 'github')))!;
      await store.set(connectionKey(b, 'github'), aRaw);
      await store.set(connectionKey(a, 'gitlab'), aRaw);
      expect((await failure(repo.get(b, 'github'))).reason).toBe('vault_record_invalid');
      expect((await failure(repo.get(a, 'gitlab'))).reason).toBe('vault_record_invalid');
      // The original is untouched and still opens.
      expect((await repo.get(a, 'github'))?.user).toBe(a);
    });

    it('user and provider are encoded so separators cannot be forged', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const base = userFor('x');
      expect(connectionKey(`${base}:evil`, 'github')).not.toBe(connectionKey(base, 'evil:github'));
      await repo.put(link(`${base}:evil`, 'github'));
      expect(await repo.get(base, 'evil:github')).toBeNull();
      expect(await repo.list(base)).toEqual([]);
      expect((await repo.list(`${base}:evil`)).map((c) => c.provider)).toEqual(['github']);
      await expect(repo.get('', 'github')).rejects.toMatchObject({ reason: 'vault_bad_identity' });
    });

    it('list returns only that user’s connections, ordered by provider', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      await repo.put(link(alice, 'slack'));
      await repo.put(link(alice, 'github'));
      await repo.put(link(`${alice}x`, 'github'));
      expect((await repo.list(alice)).map((c) => [c.user, c.provider])).toEqual([
        [alice, 'github'],
        [alice, 'slack'],
      ]);
      expect(await repo.delete(alice, 'slack')).toBe(true);
      expect(await repo.delete(alice, 'slack')).toBe(false);
      expect((await repo.list(alice)).map((c) => c.provider)).toEqual(['github']);
    });

    it('replace is a compare-and-set on the version: a stale writer cannot overwrite', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      const v1 = await repo.put(link(alice));
      const v2 = await repo.replace({ ...v1, accessToken: 'refreshed-once' }, 1);
      expect(v2).toMatchObject({ version: 2, accessToken: 'refreshed-once', createdAt: v1.createdAt });
      // A second writer still holding version 1 loses and changes nothing.
      expect(await repo.replace({ ...v1, accessToken: 'stale-write' }, 1)).toBeNull();
      expect((await repo.get(alice, 'github'))?.accessToken).toBe('refreshed-once');
      // Replacing a deleted record does not resurrect it.
      await repo.delete(alice, 'github');
      expect(await repo.replace({ ...v1, accessToken: 'after-delete' }, 2)).toBeNull();
      expect(await repo.get(alice, 'github')).toBeNull();
    });

    it('of many concurrent replaces on one version exactly one wins', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      const v1 = await repo.put(link(alice));
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => repo.replace({ ...v1, accessToken: `writer-${i}` }, v1.version)));
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect((await repo.get(alice, 'github'))?.accessToken).toBe(winners[0]!.accessToken);
    });

    it('re-linking (put over an existing record) continues the version, so old holders stay stale', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      const v1 = await repo.put(link(alice));
      await repo.replace({ ...v1, status: 'relink_required' }, 1);
      const relinked = await repo.put(link(alice));
      expect(relinked.version).toBe(3);
      expect(relinked.status).toBe('active');
      expect(await repo.replace({ ...v1, accessToken: 'stale' }, 1)).toBeNull();
      expect(await repo.replace({ ...v1, accessToken: 'stale' }, 2)).toBeNull();
    });

    it('after a delete and a re-link (same version again) a replace from a read before the delete fails', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      // A refresher reads version 1, then the user revokes and links again: version 1 anew.
      const stale = await repo.put(link(alice));
      expect(await repo.delete(alice, 'github')).toBe(true);
      const relinked = await repo.put(link(alice));
      expect(relinked.version).toBe(stale.version);
      expect(await repo.replace({ ...stale, accessToken: 'revoked-account-token' }, stale.version)).toBeNull();
      expect(await repo.replace({ ...stale, status: 'relink_required' }, stale.version)).toBeNull();
      expect(await repo.get(alice, 'github')).toEqual(relinked);
      // The new link's own holders still write.
      expect(await repo.replace({ ...relinked, accessToken: 'refreshed' }, relinked.version)).toMatchObject({ version: 2, generation: relinked.generation });
    });

    it('a record written before generations opens, and its next write gives it one', async () => {
      const cipher = createVaultCipher([k1]);
      const repo = createConnectionRepository(store, cipher);
      const alice = userFor('alice');
      const key = connectionKey(alice, 'github');
      const now = Date.now();
      const legacy = { ...link(alice), tokenType: 'Bearer', version: 4, status: 'active', createdAt: now, updatedAt: now };
      await store.set(key, cipher.seal(JSON.stringify(legacy), key));
      const read = await repo.get(alice, 'github');
      expect(read).toEqual(legacy);
      const upgraded = await repo.replace({ ...read!, accessToken: 'refreshed' }, 4);
      expect(upgraded).toMatchObject({ version: 5, accessToken: 'refreshed', generation: expect.any(String) });
      expect(await repo.get(alice, 'github')).toEqual(upgraded);
      // A copy read before the upgrade is stale, like any older version.
      expect(await repo.replace({ ...read!, accessToken: 'stale' }, 5)).toBeNull();
    });

    it('a re-link replaces a record that no longer opens', async () => {
      const repo = createConnectionRepository(store, createVaultCipher([k1]));
      const alice = userFor('alice');
      await repo.put(link(alice));
      const key = connectionKey(alice, 'github');
      await store.set(key, tamper((await store.get(key))!));
      const fresh = await repo.put(link(alice));
      expect(await repo.get(alice, 'github')).toEqual(fresh);
    });

    it('rotation: records sealed with the old key open after a new first key is added; new writes use it', async () => {
      const alice = userFor('alice');
      const oldRepo = createConnectionRepository(store, createVaultCipher([k1]));
      const original = await oldRepo.put(link(alice));
      const rotated = createConnectionRepository(store, createVaultCipher([k2, k1]));
      expect(await rotated.get(alice, 'github')).toEqual(original);
      const updated = await rotated.replace({ ...original, accessToken: 'after-rotation' }, original.version);
      expect(updated).not.toBeNull();
      expect((await store.get(connectionKey(alice, 'github')))!.startsWith('wv1:k2:')).toBe(true);
      // Dropping the old key entirely is fine once everything is rekeyed.
      expect((await createConnectionRepository(store, createVaultCipher([k2])).get(alice, 'github'))?.accessToken).toBe('after-rotation');
    });
  });
}

/** Rekey runs over all of `vault:conn:` so it gets a store of its own. */
function rekeyContract(driver: string, open: () => Promise<Store>, teardown: () => Promise<void>) {
  describe(`rekey on the ${driver} store`, () => {
    let store: Store;
    beforeAll(async () => {
      store = await open();
    });
    afterAll(teardown);

    it('moves every record to the first key, keeps contents and versions, and a second run does nothing', async () => {
      const old = createConnectionRepository(store, createVaultCipher([k1]));
      const users = Array.from({ length: 25 }, (_, i) => `rekey-user-${i}`);
      const before = await Promise.all(users.map((u) => old.put(link(u))));
      // A record with a TTL keeps it through rekey.
      const expiring = connectionKey(users[0]!, 'github');
      const raw0 = (await store.get(expiring))!;
      await store.compareAndSet(expiring, raw0, raw0, { ttlMs: 600_000 });
      await store.set('vault:other:not-a-connection', 'ignored');

      const rotated = createConnectionRepository(store, createVaultCipher([k2, k1]));
      const progress: string[] = [];
      const first = await rotated.rekey((p) => void progress.push(p.outcome));
      expect(first).toMatchObject({ scanned: 25, rekeyed: 25, current: 0, failed: 0 });
      expect(progress).toHaveLength(25);
      for (const u of users) expect((await store.get(connectionKey(u, 'github')))!.startsWith('wv1:k2:')).toBe(true);
      expect(await store.ttl(expiring)).toBeGreaterThan(0);

      const newOnly = createConnectionRepository(store, createVaultCipher([k2]));
      expect(await Promise.all(users.map((u) => newOnly.get(u, 'github')))).toEqual(before);

      const second = await rotated.rekey();
      expect(second).toMatchObject({ scanned: 25, rekeyed: 0, current: 25, failed: 0 });
      expect(await store.get('vault:other:not-a-connection')).toBe('ignored');
    });

    it('is resumable after a crash midway, and reports records it cannot open without stopping', async () => {
      const k3 = { id: 'k3', key: generateVaultKey() };
      // Everything is on k2 after the previous test; rotate to k3.
      const rotated = createConnectionRepository(store, createVaultCipher([k3, k2]));
      let seen = 0;
      const crash = new Error('simulated crash');
      await expect(
        rotated.rekey(() => {
          seen += 1;
          if (seen === 10) throw crash;
        }),
      ).rejects.toBe(crash);

      // Break one record that is still on k2 so the rerun must report it and continue.
      let broken: string | null = null;
      for await (const key of store.keys('vault:conn:')) {
        const raw = (await store.get(key))!;
        if (raw.startsWith('wv1:k2:')) {
          broken = key;
          await store.set(key, tamper(raw));
          break;
        }
      }
      expect(broken).not.toBeNull();

      const resumed = await rotated.rekey();
      expect(resumed.rekeyed).toBe(25 - 10 - 1);
      expect(resumed.current).toBe(10);
      expect(resumed.failed).toBe(1);
      expect(resumed.failures).toEqual([broken]);
      const again = await rotated.rekey();
      expect(again).toMatchObject({ rekeyed: 0, current: 24, failed: 1 });
    });
  });
}

// ---------------------------------------------------------------- memory

{
  const stores: Store[] = [];
  const open = async () => {
    const s = createMemoryStore();
    stores.push(s);
    return s;
  };
  const close = async () => {
    await Promise.all(stores.map((s) => s.close()));
  };
  repositoryContract('memory', open, async () => {});
  rekeyContract('memory', open, close);
}

// ---------------------------------------------------------------- redis

{
  let redis: TestRedis | undefined;
  const stores: Store[] = [];
  const logger = createLogger({ destination: { write: () => {} } });
  const open = async () => {
    redis ??= await startRedis();
    // Each suite gets its own prefix so rekey sees only its own records.
    const s = await createRedisStore({ url: redis.url, keyPrefix: `${redis.keyPrefix}${stores.length}:`, timeoutMs: 2_000, logger });
    stores.push(s);
    return s;
  };
  let suites = 2;
  const close = async () => {
    if (--suites > 0) return;
    await Promise.all(stores.map((s) => s.close()));
    await redis?.stop();
  };
  repositoryContract('redis', open, close);
  rekeyContract('redis', open, close);
}
