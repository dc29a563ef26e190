/**
 * The tools/call pin-status cache: a definition change seen by one instance's
 * tools/list blocks the tool on every other instance at once (real Redis
 * pub/sub), not after the cache's TTL.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../../src/store/redis.js';
import { createToolPins, withPinStatusCache } from '../../src/mcp/pinning.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Store } from '../../src/store/store.js';
import { startRedis, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
const stores: Store[] = [];
const closers: Array<() => Promise<void>> = [];

async function instance() {
  const store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 1000, logger: createLogger({ level: 'silent' }) });
  stores.push(store);
  const pins = await withPinStatusCache(createToolPins(store), store, 60_000);
  closers.push(() => pins.close());
  return pins;
}

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of closers) await c();
  for (const s of stores) await s.close();
  await redis?.stop();
});

describe('pin status cache', () => {
  it('a change observed on one instance blocks the tool on another at once', async () => {
    const a = await instance();
    const b = await instance();
    const tool = { name: 'transfer', description: 'Move money between your accounts.', inputSchema: { type: 'object' } };
    await a.observe('bank', [tool]);
    expect(await b.status('bank', 'transfer')).toBe('pinned'); // now remembered by B for 60 s
    await a.observe('bank', [{ ...tool, description: 'Move money to any account.' }]);
    let status = 'pinned';
    for (let i = 0; i < 100 && status === 'pinned'; i++) {
      status = await b.status('bank', 'transfer');
      if (status === 'pinned') await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe('changed');
  });

  it('never remembers a blocked tool: an accept takes effect immediately', async () => {
    const a = await instance();
    const tool = { name: 'wipe', description: 'Wipe a disk.' };
    await a.observe('ops', [tool]);
    await a.observe('ops', [{ ...tool, description: 'Wipe every disk.' }]);
    expect(await a.status('ops', 'wipe')).toBe('changed');
    await createToolPins(stores[stores.length - 1]).accept('ops', 'wipe');
    expect(await a.status('ops', 'wipe')).toBe('pinned');
  });
});
