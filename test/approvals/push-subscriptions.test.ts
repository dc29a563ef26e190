/**
 * Push subscriptions per person, on the memory store and on a real Redis:
 * scoped by user (a user id with `:` cannot reach another's), at most
 * MAX_PER_USER (the oldest goes), one person per endpoint (a shared browser
 * re-subscribed by someone else stops getting the first person's approvals),
 * and concurrent changes are all kept.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubscriptionRepo, MAX_PER_USER } from '../../src/approvals/push/subscriptions.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { captureLogs } from '../support/logs.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const keys = { p256dh: 'BP'.padEnd(87, 'A'), auth: 'AAAAAAAAAAAAAAAAAAAAAA' };
const ep = (n: string) => `https://fcm.googleapis.com/fcm/send/${n}`;

describe.each(['memory', 'redis'] as const)('push subscriptions (%s store)', (driver) => {
  let redis: TestRedis | undefined;
  let store: Store;

  beforeAll(async () => {
    if (driver === 'memory') {
      store = createMemoryStore();
    } else {
      redis = await startRedis();
      store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 2_000, logger: captureLogs().logger });
    }
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('each person sees and removes only their own', async () => {
    const repo = createSubscriptionRepo(store);
    await repo.put('alice', { endpoint: ep('a1'), ...keys });
    await repo.put('alice:x', { endpoint: ep('ax'), ...keys });
    await repo.put('bob', { endpoint: ep('b1'), ...keys });
    expect((await repo.list('alice')).map((s) => s.endpoint)).toEqual([ep('a1')]);
    expect((await repo.list('alice:x')).map((s) => s.endpoint)).toEqual([ep('ax')]);
    expect(await repo.remove('bob', ep('a1'))).toBe(false);
    expect(await repo.removeAll('bob')).toBe(1);
    expect((await repo.list('alice')).map((s) => s.endpoint)).toEqual([ep('a1')]);
    expect((await repo.users()).sort()).toEqual(['alice', 'alice:x']);
    expect(await repo.remove('alice', ep('a1'))).toBe(true);
    expect(await repo.list('alice')).toEqual([]);
  });

  it('concurrent subscriptions of one person are all kept (compare-and-set, no lost update)', async () => {
    const [r1, r2] = [createSubscriptionRepo(store), createSubscriptionRepo(store)];
    await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? r1 : r2).put('frank', { endpoint: ep(`f${i}`), ...keys })));
    expect((await r1.list('frank')).map((s) => s.endpoint).sort()).toEqual(Array.from({ length: 6 }, (_, i) => ep(`f${i}`)).sort());
    await Promise.all([r1.remove('frank', ep('f0')), r2.remove('frank', ep('f1')), r1.put('frank', { endpoint: ep('f9'), ...keys })]);
    expect((await r2.list('frank')).map((s) => s.endpoint).sort()).toEqual(['f2', 'f3', 'f4', 'f5', 'f9'].map(ep).sort());
  });

  it('keeps at most MAX_PER_USER browsers (oldest goes) and one person per endpoint', async () => {
    const repo = createSubscriptionRepo(store);
    for (let i = 0; i < MAX_PER_USER + 2; i++) {
      await repo.put('carol', { endpoint: ep(`c${i}`), ...keys });
      await new Promise((r) => setTimeout(r, 2));
    }
    const left = (await repo.list('carol')).map((s) => s.endpoint);
    expect(left).toHaveLength(MAX_PER_USER);
    expect(left).not.toContain(ep('c0'));
    expect(left).not.toContain(ep('c1'));
    // dave subscribes the browser carol used for c5: it is his now.
    await repo.put('dave', { endpoint: ep('c5'), ...keys });
    expect((await repo.list('carol')).map((s) => s.endpoint)).not.toContain(ep('c5'));
    expect((await repo.list('dave')).map((s) => s.endpoint)).toEqual([ep('c5')]);
  });
});
