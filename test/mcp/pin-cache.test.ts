/**
 * The tools/call pin-status cache: a definition change seen by one instance's
 * tools/list blocks the tool on every other instance at once (real Redis
 * pub/sub), not after the cache's TTL.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore } from '../../src/store/redis.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createToolPins, toolDefinitionHash, withPinStatusCache } from '../../src/mcp/pinning.js';
import { canonicalJson, sha256Hex } from '../../src/core/canonical-json.js';
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

describe('pins stored by an older Warden, on Redis shared by two instances', () => {
  it('instances listing at once re-pin an old-format pin exactly once; a field the old hash ignored then blocks everywhere', async () => {
    const writes: string[] = [];
    /** An instance whose successful writes of pin records are counted. */
    const counted = async () => {
      const inner = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 1000, logger: createLogger({ level: 'silent' }) });
      stores.push(inner);
      const store: Store = {
        ...inner,
        async compareAndSet(key, expected, next, options) {
          const ok = await inner.compareAndSet(key, expected, next, options);
          if (ok && key.startsWith('mcp:pin:')) writes.push(key);
          return ok;
        },
      };
      const pins = await withPinStatusCache(createToolPins(store), store, 60_000);
      closers.push(() => pins.close());
      return { store, pins };
    };
    const [a, b] = [await counted(), await counted()];
    const tool = { name: 'search', description: 'Search the wiki.', inputSchema: { type: 'object' }, annotations: { readOnlyHint: false } };
    const oldHash = sha256Hex(canonicalJson({ name: tool.name, description: tool.description, inputSchema: tool.inputSchema }));
    await a.store.set('mcp:tool:kb:search', JSON.stringify({ route: 'kb', tool: 'search', pinned: oldHash, pinned_at: '2025-01-02T03:04:05.000Z' }));

    // Calls before any tools/list since the upgrade are not blocked.
    expect(await b.pins.status('kb', 'search')).toBe('pinned');
    const seen = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).pins.observe('kb', [tool])));
    expect(seen.map((s) => s.get('search'))).toEqual(Array(8).fill('pinned'));
    expect(writes).toEqual(['mcp:pin:kb:search']);
    expect(await a.pins.get('kb', 'search')).toMatchObject({ format: 2, pinned: toolDefinitionHash(tool), definition: tool });

    await a.pins.observe('kb', [{ ...tool, annotations: { readOnlyHint: true } }]);
    let status = 'pinned';
    for (let i = 0; i < 100 && status === 'pinned'; i++) {
      status = await b.pins.status('kb', 'search');
      if (status === 'pinned') await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe('changed');
  });
});

/** A memory store whose reads are counted and, while `hold` is set, wait for it. */
function countingStore() {
  const inner = createMemoryStore();
  const counter = { reads: 0, hold: null as Promise<void> | null };
  const store: Store = {
    ...inner,
    async get(key) {
      counter.reads++;
      const hold = counter.hold;
      const value = await inner.get(key);
      if (hold) await hold;
      return value;
    },
  };
  return { store, inner, counter };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('pin status cache reads', () => {
  const tool = { name: 'lookup', description: 'Look a thing up.', inputSchema: { type: 'object' } };

  it('concurrent tools/calls after an expiry share one store read', async () => {
    const { store, inner, counter } = countingStore();
    let clock = 1_000_000;
    const pins = await withPinStatusCache(createToolPins(store), store, 300, 10_000, () => clock);
    try {
      await pins.observe('api', [tool]);
      expect(await pins.status('api', 'lookup')).toBe('pinned');
      clock += 350; // expired
      const before = counter.reads;
      const statuses = await Promise.all(Array.from({ length: 20 }, () => pins.status('api', 'lookup')));
      expect(statuses.every((s) => s === 'pinned')).toBe(true);
      expect(counter.reads - before).toBe(1);
      expect(pins.peek('api', 'lookup')).toBe('pinned');
    } finally {
      await pins.close();
      await inner.close();
    }
  });

  it('a busy tool is re-read before its entry expires, and stays decided without a promise', async () => {
    const { store, inner, counter } = countingStore();
    let clock = 1_000_000;
    const pins = await withPinStatusCache(createToolPins(store), store, 1000, 10_000, () => clock);
    try {
      await pins.observe('api', [tool]);
      expect(await pins.status('api', 'lookup')).toBe('pinned');
      const before = counter.reads;
      clock += 500;
      expect(pins.peek('api', 'lookup')).toBe('pinned');
      await sleep(10);
      expect(counter.reads - before).toBe(0); // not yet in the last quarter
      clock += 300; // in the last quarter of the TTL
      expect(pins.peek('api', 'lookup')).toBe('pinned');
      expect(pins.peek('api', 'lookup')).toBe('pinned'); // one read in flight, not two
      await sleep(10);
      expect(counter.reads - before).toBe(1);
      clock += 300; // past the first entry's expiry: the re-read renewed it
      expect(pins.peek('api', 'lookup')).toBe('pinned');
      clock += 1000; // and it expires in its turn
      expect(pins.peek('api', 'lookup')).toBeUndefined();
    } finally {
      await pins.close();
      await inner.close();
    }
  });

  it('a read in flight when a change is seen is not remembered, and later calls read afresh', async () => {
    const { store, inner, counter } = countingStore();
    const pins = await withPinStatusCache(createToolPins(store), store, 40);
    try {
      await pins.observe('api', [tool]);
      await sleep(60); // nothing remembered
      let release!: () => void;
      counter.hold = new Promise<void>((r) => (release = r));
      const stale = pins.status('api', 'lookup'); // reads the pinned record, then waits
      await sleep(5);
      counter.hold = null;
      // The definition changes (seen by this instance's tools/list) while that read is held.
      expect((await pins.observe('api', [{ ...tool, description: 'Look anything up, then delete it.' }])).get('lookup')).toBe('changed');
      const fresh = pins.status('api', 'lookup'); // must not join the stale read
      release();
      expect(await stale).toBe('pinned'); // it began before the change
      expect(await fresh).toBe('changed');
      expect(pins.peek('api', 'lookup')).toBeUndefined();
      expect(await pins.status('api', 'lookup')).toBe('changed');
    } finally {
      await pins.close();
      await inner.close();
    }
  });
});
