/**
 * Local quota blocks lease the next block ahead (src/store/redis-blocks.ts,
 * the script's A and H operations), on a real Redis: once a key's block is
 * half spent (or half its time gone) the next one is asked for in the
 * background, so that far from the limit no request waits for a lease after
 * the first; when it is granted the current block retires at once (its
 * unspent part goes back). Redis still counts exactly what was spent once the
 * blocks are back. Small blocks (targetMs 8, at most 8 requests) make a run of
 * 300 requests cross dozens of them.
 */

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQuotaBlocks, DEFAULT_BLOCK_OPTIONS, type BlockOptions } from '../../src/store/redis-blocks.js';
import { createLimitsBatcher, LIMITS_LUA } from '../../src/store/redis-limits.js';
import type { SettleWatcher } from '../../src/store/store.js';
import { commandCalls, startRedis, type TestRedis } from '../support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const watcher: SettleWatcher = { done: () => undefined, failed: () => undefined };

describe('quota blocks lease the next block ahead (real Redis)', () => {
  let redis: TestRedis;
  let client: Redis & { wardenLimits(...args: string[]): Promise<string[]> };
  let n = 0;

  beforeAll(async () => {
    redis = await startRedis({ local: true });
    client = new Redis(redis.url) as typeof client;
    client.defineCommand('wardenLimits', { lua: LIMITS_LUA });
  });

  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  const setup = (options: Partial<BlockOptions> = { targetMs: 8, maxRequests: 8, flushMs: 0 }) => {
    const remote = createLimitsBatcher((keys, argv) => client.wardenLimits(String(keys.length), ...keys, ...argv));
    const blocks = createQuotaBlocks(remote, { ...DEFAULT_BLOCK_OPTIONS, ...options, newId: () => `qahead${n++}` });
    return { remote, blocks };
  };
  const scriptCalls = async () => {
    const calls = await commandCalls(client);
    return calls('evalsha') + calls('eval');
  };

  it('rate: after the first lease every request is decided from a block (the next one was leased ahead); Redis counts exactly the spent ones after close', async () => {
    const { remote, blocks } = setup();
    const key = `${redis.keyPrefix}rate-ahead`;
    // 1000 a day: one request every 86.4 s, so Redis' count does not decay during the run.
    const intervalUs = 86_400_000;
    const burst = 1000;
    let waited = 0;
    for (let i = 0; i < 300; i++) {
      const now = blocks.rateNow(key);
      if (now) expect(now.allowed).toBe(true);
      else {
        waited++;
        expect((await blocks.rate(key, intervalUs, burst)).allowed).toBe(true);
      }
      // A request every millisecond or two (the lease ahead has half a block's time to come back).
      await sleep(i % 2);
    }
    // Without a lease ahead every block (8 requests at most) ends with a request that waits: about 40 of them (38 seen).
    expect(waited).toBeLessThanOrEqual(6);
    await blocks.close();
    await remote.drain();
    // Every unspent request went back: the next request is the 301st of 1000.
    expect((await remote.rate(key, intervalUs, burst, true)).remaining).toBe(burst - 301);
  });

  it('budget: after the first lease every reservation is served from a block; committed spends all counted, nothing held after close', async () => {
    const { remote, blocks } = setup();
    const key = `${redis.keyPrefix}budget-ahead`;
    const windowMs = 3_600_000;
    const max = 1_000_000;
    let waited = 0;
    for (let i = 0; i < 300; i++) {
      const holder = { lot: undefined as unknown };
      const now = blocks.reserveLot(key, 1, holder);
      if (now) {
        expect(now.reserved).toBe(true);
        expect(blocks.settleLot(holder, 1, true, watcher)).toBe(true);
      } else {
        waited++;
        const id = `w${i}`;
        expect((await blocks.reserve(key, windowMs, max, 1, id, `${id}:1`, 60_000)).reserved).toBe(true);
        const settled = blocks.commit(key, id);
        await (settled ?? remote.commit(key, windowMs, `${id}:1`, 1));
      }
      await sleep(i % 2);
    }
    expect(waited).toBeLessThanOrEqual(6);
    await blocks.close();
    await remote.drain();
    expect(await remote.read(key, windowMs)).toMatchObject({ spent: 300, held: 0 });
  });

  it("a busy key's blocks grow as without leasing ahead (the next is leased at half of the last, from the pace over that half): 4000 quick requests cost a few script calls, not one every few requests", async () => {
    // The store's own options (a quarter-second target, commits flushed within 50 ms).
    const { remote, blocks } = setup({ flushMs: 50 });
    const rateKey = `${redis.keyPrefix}rate-grow`;
    const budgetKey = `${redis.keyPrefix}budget-grow`;
    const before = await scriptCalls();
    let waited = 0;
    for (let i = 0; i < 4000; i++) {
      if (!blocks.rateNow(rateKey)) {
        waited++;
        await blocks.rate(rateKey, 3_600, 1_000_000_000);
      }
      const holder = { lot: undefined as unknown };
      if (blocks.reserveLot(budgetKey, 1, holder)) blocks.settleLot(holder, 1, true, watcher);
      else {
        waited++;
        const id = `g${i}`;
        await blocks.reserve(budgetKey, 3_600_000, 1e12, 1, id, `${id}:1`, 60_000);
        const settled = blocks.commit(budgetKey, id);
        await (settled ?? remote.commit(budgetKey, 3_600_000, `${id}:1`, 1));
      }
      // 16 requests a turn (lease answers come back between turns).
      if (i % 16 === 15) await new Promise((r) => setImmediate(r));
    }
    const calls = (await scriptCalls()) - before;
    // Blocks that never grew past the first (8) lease every 4 requests of each key: 857 calls seen.
    expect(calls).toBeLessThan(100);
    // While blocks grow (8, 32, …) a turn's 16 requests can spend one before the next is back: a few waits, then none.
    expect(waited).toBeLessThanOrEqual(12);
    await blocks.close();
    await remote.drain();
    expect(await remote.read(budgetKey, 3_600_000)).toMatchObject({ spent: 4000, held: 0 });
  });
});
