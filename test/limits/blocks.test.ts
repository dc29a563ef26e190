/**
 * Local quota blocks on a real Redis, across two store instances (two
 * processes' worth of state: separate connections and blocks, one Redis):
 * blocks never let more through than the limit under concurrency, give back
 * what they did not spend, and a killed instance (SIGKILL, a real process)
 * holds its block for at most the lease. `store.limit_blocks: 0` turns them off.
 */

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { createStore } from '../../src/store/create.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { REPO_ROOT } from '../support/gateway.js';
import { commandCalls, startRedis, type TestRedis } from '../support/redis.js';

const logger = createLogger({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('local quota blocks on a real Redis, two instances', () => {
  let redis: TestRedis;
  let raw: Redis;
  const stores: Store[] = [];

  const open = async (limitBlocks?: number) => {
    const s = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 2_000, logger, limitBlocks });
    stores.push(s);
    return s;
  };
  const scriptCalls = async () => {
    const n = await commandCalls(raw);
    return n('evalsha') + n('eval');
  };

  beforeAll(async () => {
    redis = await startRedis({ local: true });
    raw = new Redis(redis.url);
  });

  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    raw?.disconnect();
    await redis?.stop();
  });

  it('a rate limit of 3000 per hour: waves of concurrent requests on two instances never pass more than 3000; what blocks did not spend comes back', async () => {
    const [a, b] = [await open(), await open()];
    const spec = { intervalMs: 3_600_000 / 3_000, burst: 3_000 };
    const key = 'rl-blocks';
    let allowed = 0;
    let decisions = 0;
    const calls0 = await scriptCalls();
    for (let wave = 0; wave < 8; wave++) {
      const results = await Promise.all(Array.from({ length: 500 }, (_, i) => (i % 2 ? a : b).rateLimit(key, spec)));
      decisions += results.length;
      allowed += results.filter((r) => r.allowed).length;
      expect(allowed).toBeLessThanOrEqual(3_000);
    }
    // Blocks were used: far fewer script calls than decisions.
    expect((await scriptCalls()) - calls0).toBeLessThan(decisions / 4);
    await a.close();
    await b.close();
    // Every unspent request came back: a third instance without blocks gets exactly the rest (less at most 1 refilled).
    const c = await open(0);
    let more = 0;
    while ((await c.rateLimit(key, spec)).allowed) more++;
    expect(allowed + more).toBeGreaterThanOrEqual(3_000);
    expect(allowed + more).toBeLessThanOrEqual(3_001);
  });

  it('a budget of 20000: concurrent reservations of 1..20 on two instances; committed never passes max, in flight always counted, nothing held after', async () => {
    const [a, b] = [await open(), await open()];
    const exact = await open(0);
    const spec = { max: 20_000, windowMs: 3_600_000 };
    const key = 'bud-blocks';
    let committed = 0;
    let n = 0;
    const held: Array<{ s: Store; id: string; amount: number }> = [];
    for (let wave = 0; wave < 6; wave++) {
      const results = await Promise.all(
        Array.from({ length: 400 }, (_, i) => {
          const s = i % 2 ? a : b;
          const amount = 1 + ((i * 7 + wave) % 20);
          const id = `w${wave}n${n++}`;
          return s.budgetReserve(key, spec, { id, amount, leaseMs: 60_000 }).then((r) => ({ r, s, id, amount }));
        }),
      );
      for (const x of results) if (x.r.reserved) held.push({ s: x.s, id: x.id, amount: x.amount });
      const inFlight = held.reduce((t, h) => t + h.amount, 0);
      const st = await exact.budgetRead(key, spec.windowMs);
      expect(st.spent + st.held).toBeGreaterThanOrEqual(committed + inFlight);
      expect(st.spent + st.held).toBeLessThanOrEqual(spec.max);
      // Settle four in five (commit) or release, concurrently.
      const settling = held.splice(0).map((h, i) => {
        if (i % 5 === 4) return h.s.budgetRelease(key, h.id, h.amount);
        committed += h.amount;
        return h.s.budgetCommit(key, spec.windowMs, h.id, h.amount);
      });
      await Promise.all(settling);
      expect(committed).toBeLessThanOrEqual(spec.max);
    }
    expect(committed).toBeGreaterThan(0);
    await a.close();
    await b.close();
    expect(await exact.budgetRead(key, spec.windowMs)).toMatchObject({ spent: committed, held: 0 });
  });

  it('a killed instance holds its block for at most the lease; what it committed stays spent', async () => {
    const observer = await open(0);
    const key = 'bud-killed';
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        const { createRedisStore } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/src/store/redis.js'))});
        const { createLogger } = await import(${JSON.stringify(join(REPO_ROOT, 'dist/src/observability/logger.js'))});
        const s = await createRedisStore({ url: process.env.URL, keyPrefix: process.env.PREFIX, timeoutMs: 2000, logger: createLogger({ level: 'silent' }) });
        const spec = { max: 1000000, windowMs: 3600000 };
        await s.budgetReserve(${JSON.stringify(key)}, spec, { id: 'r1', amount: 1, leaseMs: 1500 });
        await s.budgetReserve(${JSON.stringify(key)}, spec, { id: 'r2', amount: 1, leaseMs: 1500 });
        await s.budgetCommit(${JSON.stringify(key)}, spec.windowMs, 'r1', 1);
        process.stdout.write('READY\\n');
        setInterval(() => {}, 1000);
        `,
      ],
      { env: { ...process.env, URL: redis.url, PREFIX: redis.keyPrefix }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 15_000;
    while (!out.includes('READY')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`child did not get ready:\n${out}`);
      await sleep(50);
    }
    // The child holds a block of 8 (1 committed, 1 in flight, 6 unspent).
    expect(await observer.budgetRead(key, 3_600_000)).toMatchObject({ spent: 1, held: 7 });
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const killedAt = Date.now();
    await expect.poll(async () => (await observer.budgetRead(key, 3_600_000)).held, { timeout: 5_000, interval: 100 }).toBe(0);
    expect(Date.now() - killedAt).toBeLessThan(1_500 + 1_000);
    expect(await observer.budgetRead(key, 3_600_000)).toMatchObject({ spent: 1, held: 0 });
  });

  it('store.limit_blocks: 0 turns blocks off (one exact decision per request); the default leases a block', async () => {
    // Through the config as written in gateway.yaml.
    const storeOf = (blocks?: number) =>
      parseConfig(`
store:
  driver: redis
  url: ${redis.url}
  key_prefix: "${redis.keyPrefix}"
${blocks === undefined ? '' : `  limit_blocks: ${blocks}`}
routes: []
`).config.store;
    expect(storeOf().limit_blocks).toBe(32);
    expect(() => storeOf(-1)).toThrow();
    const off = await createStore(storeOf(0), logger);
    const on = await createStore(storeOf(), logger);
    stores.push(off, on);
    const spec = { max: 1_000_000, windowMs: 3_600_000 };
    expect(await off.budgetReserve('bud-off', spec, { id: 'o1', amount: 1, leaseMs: 60_000 })).toMatchObject({ reserved: true, held: 1 });
    expect(await on.budgetReserve('bud-on', spec, { id: 'o1', amount: 1, leaseMs: 60_000 })).toMatchObject({ reserved: true, held: 8 });
    const rate = { intervalMs: 3.6, burst: 1_000_000 }; // per hour: nothing refills between the calls
    expect((await off.rateLimit('rl-off', rate)).remaining).toBe(999_999);
    await on.rateLimit('rl-on', rate);
    expect((await off.rateLimit('rl-on', rate)).remaining).toBeLessThan(999_999 - 1);
  });
});
