// Unit tests of the decision cache's own logic, in front of a scripted fake
// engine (the engines themselves are tested against real OpenFGA elsewhere).
import { describe, expect, it } from 'vitest';
import { withDecisionCache } from '../../src/authz/cache.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { WardenError } from '../../src/core/errors.js';
import type { Authorizer, CheckOptions, CheckRequest, ListObjectsRequest } from '../../src/authz/authorizer.js';
import { createMetrics } from '../../src/observability/metrics.js';

interface Call {
  kind: 'check' | 'batch' | 'list';
  requests: Array<CheckRequest | ListObjectsRequest>;
  options?: CheckOptions;
}

/** A fake engine: answers from `decide`, records every call, fails while `failing` is set. */
function fakeEngine(decide: (r: CheckRequest) => boolean) {
  const calls: Call[] = [];
  const state = { failing: false, modelId: 'm1' };
  const fail = () => {
    if (state.failing) throw new WardenError('authz_unavailable', 'down', { reason: 'test' });
  };
  const engine: Authorizer & { modelId: string } = {
    engine: 'openfga',
    get modelId() {
      return state.modelId;
    },
    async check(r, o) {
      calls.push({ kind: 'check', requests: [r], options: o });
      fail();
      return decide(r);
    },
    async batchCheck(rs, o) {
      calls.push({ kind: 'batch', requests: rs, options: o });
      fail();
      return rs.map(decide);
    },
    async listObjects(r, o) {
      calls.push({ kind: 'list', requests: [r], options: o });
      fail();
      return [`${r.type}:1`, `${r.type}:2`];
    },
    relations: () => new Map([['doc', new Set(['viewer'])]]),
    ready: async () => {},
    close: async () => {},
  };
  return { engine, calls, state };
}

const alice = { user: 'user:alice', relation: 'viewer', object: 'doc:1' };

describe('withDecisionCache', () => {
  it('answers a repeated check from the cache (hit) and the first from the engine (miss)', async () => {
    const { engine, calls } = fakeEngine((r) => r.user === 'user:alice');
    const cache = withDecisionCache(engine, { ttlMs: 5_000, maxEntries: 100 });
    expect(await cache.check(alice)).toBe(true);
    expect(await cache.check(alice)).toBe(true);
    expect(await cache.check({ ...alice, user: 'user:bob' })).toBe(false);
    expect(await cache.check({ ...alice, user: 'user:bob' })).toBe(false);
    expect(calls).toHaveLength(2);
    expect(cache.stats()).toMatchObject({ enabled: true, hits: 2, misses: 2, size: 2 });
  });

  it('expires entries after the TTL', async () => {
    let t = 1_000_000;
    const { engine, calls } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 5_000, maxEntries: 100, now: () => t });
    await cache.check(alice);
    t += 4_999;
    await cache.check(alice);
    expect(calls).toHaveLength(1);
    t += 1;
    await cache.check(alice);
    expect(calls).toHaveLength(2);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2 });
  });

  it('keys on context (canonically), contextual tuples, user, relation and object', async () => {
    const { engine, calls } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    await cache.check({ ...alice, context: { ip: '10.0.0.1', n: 1 } });
    await cache.check({ ...alice, context: { n: 1, ip: '10.0.0.1' } }); // same context, other key order → hit
    expect(calls).toHaveLength(1);
    await cache.check({ ...alice, context: { ip: '10.0.0.2', n: 1 } });
    await cache.check({ ...alice, context: { ip: '10.0.0.1', n: '1' } }); // a string is not a number
    await cache.check({ ...alice, context: { ip: '10.0.0.1', n: 1, nested: { a: [1, 2] } } });
    await cache.check({ ...alice, context: { ip: '10.0.0.1', n: 1, nested: { a: [2, 1] } } });
    await cache.check({ ...alice, contextualTuples: [{ user: 'user:alice', relation: 'member', object: 'group:a' }] });
    await cache.check({ ...alice, contextualTuples: [{ user: 'user:alice', relation: 'member', object: 'group:b' }] });
    await cache.check({
      ...alice,
      contextualTuples: [{ user: 'user:alice', relation: 'member', object: 'group:b', condition: { name: 'c', context: { x: 1 } } }],
    });
    await cache.check({ ...alice, relation: 'editor' });
    await cache.check({ ...alice, object: 'doc:2' });
    expect(calls).toHaveLength(10);
    // no context and an empty context are the same question
    const before = calls.length;
    await cache.check(alice);
    await cache.check({ ...alice, context: {}, contextualTuples: [] });
    expect(calls.length).toBe(before + 1);
  });

  it('keeps ids apart: no field can run into the next one', async () => {
    const { engine, calls } = fakeEngine((r) => r.object === 'doc:1');
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    expect(await cache.check({ user: 'user:a', relation: 'viewer', object: 'doc:1' })).toBe(true);
    expect(await cache.check({ user: 'user:a","viewer', relation: 'x', object: 'doc:1x' })).toBe(false);
    expect(calls).toHaveLength(2);
    // Lengths and separators inside ids (the key is length-prefixed) stay apart too.
    expect(await cache.check({ user: 'user:a', relation: '6:viewer', object: 'doc:1' })).toBe(true);
    expect(await cache.check({ user: 'user:a6:', relation: 'viewer', object: 'doc:1' })).toBe(true);
    expect(await cache.check({ user: 'user:a', relation: 'viewer', object: 'doc:1', context: { '5:doc': 1 } })).toBe(true);
    expect(calls).toHaveLength(5);
  });

  it('includes the model id in the key', async () => {
    const a = fakeEngine(() => true);
    const b = fakeEngine(() => false);
    b.state.modelId = 'm2';
    const cacheA = withDecisionCache(a.engine, { ttlMs: 60_000, maxEntries: 10 });
    const cacheB = withDecisionCache(b.engine, { ttlMs: 60_000, maxEntries: 10 });
    expect(cacheA.modelId).toBe('m1');
    expect(cacheA.inner).toBe(a.engine);
    expect(cacheB.modelId).toBe('m2');
    expect(await cacheA.check(alice)).toBe(true);
    expect(await cacheB.check(alice)).toBe(false);
  });

  it('never caches errors', async () => {
    const { engine, calls, state } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    state.failing = true;
    await expect(cache.check(alice)).rejects.toMatchObject({ code: 'authz_unavailable' });
    await expect(cache.batchCheck([alice])).rejects.toMatchObject({ code: 'authz_unavailable' });
    await expect(cache.listObjects({ user: 'user:alice', relation: 'viewer', type: 'doc' })).rejects.toMatchObject({ code: 'authz_unavailable' });
    expect(cache.stats().size).toBe(0);
    state.failing = false;
    expect(await cache.check(alice)).toBe(true);
    expect(calls).toHaveLength(4);
  });

  it('shares one engine call between concurrent identical checks, and its failure with all of them', async () => {
    let release!: (v: boolean) => void;
    let calls = 0;
    const slow: Authorizer = {
      ...fakeEngine(() => true).engine,
      engine: 'embedded',
      check: () => {
        calls++;
        return new Promise<boolean>((resolve) => (release = resolve));
      },
    };
    const cache = withDecisionCache(slow, { ttlMs: 60_000, maxEntries: 100 });
    const waiting = [cache.check(alice), cache.check(alice), cache.check(alice)];
    release(true);
    expect(await Promise.all(waiting)).toEqual([true, true, true]);
    expect(calls).toBe(1);
  });

  it('bypasses the cache for higher_consistency: never reads a cached answer, always asks the engine', async () => {
    let answer = true;
    const { engine, calls } = fakeEngine(() => answer);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    expect(await cache.check(alice)).toBe(true);
    answer = false; // the relationship was removed
    expect(await cache.check(alice, { consistency: 'higher_consistency' })).toBe(false);
    expect(calls).toHaveLength(2);
    expect(calls[1].options).toEqual({ consistency: 'higher_consistency' });
    expect(await cache.batchCheck([alice, alice], { consistency: 'higher_consistency' })).toEqual([false, false]);
    expect(calls).toHaveLength(3);
    expect(await cache.listObjects({ user: 'user:alice', relation: 'viewer', type: 'doc' }, { consistency: 'higher_consistency' })).toEqual(['doc:1', 'doc:2']);
    expect(calls).toHaveLength(4);
    expect(cache.stats().bypassed).toBe(4);
    // the fresh answer replaced the stale one for ordinary callers
    expect(await cache.check(alice)).toBe(false);
    expect(calls).toHaveLength(4);
  });

  it('batchCheck: answers hits locally, asks the engine once per distinct miss, keeps input order', async () => {
    const { engine, calls } = fakeEngine((r) => Number(r.object.split(':')[1]) % 2 === 0);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    await cache.check({ ...alice, object: 'doc:2' });
    const reqs = [5, 2, 4, 5, 7, 2, 8].map((n) => ({ ...alice, object: `doc:${n}` }));
    expect(await cache.batchCheck(reqs)).toEqual([false, true, true, false, false, true, true]);
    expect(calls).toHaveLength(2);
    expect(calls[1].requests.map((r) => (r as CheckRequest).object)).toEqual(['doc:5', 'doc:4', 'doc:7', 'doc:8']);
    expect(cache.stats()).toMatchObject({ hits: 2, misses: 6 });
    // everything is cached now
    expect(await cache.batchCheck(reqs)).toEqual([false, true, true, false, false, true, true]);
    expect(calls).toHaveLength(2);
  });

  it('peekBatch answers without the engine only when every check is cached and fresh', async () => {
    let now = 0;
    const { engine, calls } = fakeEngine((r) => r.object !== 'doc:3');
    const cache = withDecisionCache(engine, { ttlMs: 1_000, maxEntries: 100, now: () => now });
    const reqs = [1, 3].map((n) => ({ ...alice, object: `doc:${n}` }));
    expect(cache.peekBatch!(reqs)).toBeUndefined(); // nothing cached: caller goes to batchCheck
    await cache.check(reqs[0]);
    expect(cache.peekBatch!(reqs)).toBeUndefined(); // one of two cached is still a miss
    await cache.check(reqs[1]);
    const callsBefore = calls.length;
    const hitsBefore = cache.stats().hits;
    expect(cache.peekBatch!(reqs)).toEqual([true, false]); // a cached deny is an answer too
    expect(calls.length).toBe(callsBefore);
    expect(cache.stats().hits).toBe(hitsBefore + 2);
    expect(cache.peekBatch!(reqs, { consistency: 'higher_consistency' })).toBeUndefined();
    now = 1_000; // TTL over
    expect(cache.peekBatch!(reqs)).toBeUndefined();
  });

  it('caches listObjects and hands out copies', async () => {
    const { engine, calls } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    const req = { user: 'user:alice', relation: 'viewer', type: 'doc' };
    const first = await cache.listObjects(req);
    first.push('doc:evil');
    expect(await cache.listObjects(req)).toEqual(['doc:1', 'doc:2']);
    expect(calls).toHaveLength(1);
    await cache.listObjects({ ...req, context: { x: 1 } });
    expect(calls).toHaveLength(2);
  });

  it('is bounded: evicts the least recently used entry', async () => {
    const { engine, calls } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 3 });
    for (const n of [1, 2, 3]) await cache.check({ ...alice, object: `doc:${n}` });
    await cache.check({ ...alice, object: 'doc:1' }); // doc:1 is now most recent
    await cache.check({ ...alice, object: 'doc:4' }); // evicts doc:2
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 1 });
    const before = calls.length;
    await cache.check({ ...alice, object: 'doc:1' });
    expect(calls.length).toBe(before);
    await cache.check({ ...alice, object: 'doc:2' });
    expect(calls.length).toBe(before + 1);
  });

  it('with ttl 0 is a passthrough', async () => {
    const { engine, calls } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 0, maxEntries: 100 });
    await cache.check(alice);
    await cache.check(alice);
    await cache.batchCheck([alice]);
    expect(calls).toHaveLength(3);
    expect(cache.stats()).toMatchObject({ enabled: false, hits: 0, size: 0 });
    expect(cache.relations().get('doc')?.has('viewer')).toBe(true);
  });

  it('counts lookups in metrics', async () => {
    const metrics = createMetrics();
    const { engine } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100, metrics });
    await cache.check(alice);
    await cache.check(alice);
    const text = metrics.render();
    expect(text).toContain('warden_authz_cache_total{result="miss"} 1');
    expect(text).toContain('warden_authz_cache_total{result="hit"} 1');
  });
});

/** An in-process fake engine (like the embedded one): `batchCheckSync` answers without a promise. */
function syncEngine(decide: (r: CheckRequest) => boolean) {
  const fake = fakeEngine(decide);
  const syncCalls: CheckRequest[][] = [];
  const engine: Authorizer & { modelId: string } = Object.assign(Object.create(null), fake.engine, {
    engine: 'embedded' as const,
    modelId: 'm1',
    batchCheckSync(rs: CheckRequest[]) {
      syncCalls.push(rs);
      if (fake.state.failing) throw new WardenError('authz_unavailable', 'down', { reason: 'test' });
      return rs.map(decide);
    },
  });
  return { ...fake, engine, syncCalls };
}

describe('withDecisionCache: in-process engines (batchCheckSync)', () => {
  it('is offered only when the engine answers synchronously', () => {
    expect(withDecisionCache(fakeEngine(() => true).engine, { ttlMs: 1_000, maxEntries: 10 }).batchCheckSync).toBeUndefined();
    expect(typeof withDecisionCache(syncEngine(() => true).engine, { ttlMs: 1_000, maxEntries: 10 }).batchCheckSync).toBe('function');
  });

  it('answers misses from the engine and hits from the cache, in order, without a promise', () => {
    const { engine, syncCalls, calls } = syncEngine((r) => r.object !== 'doc:2');
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    const reqs = [1, 2, 1, 3].map((n) => ({ ...alice, object: `doc:${n}` }));
    const first = cache.batchCheckSync!(reqs);
    expect(first).toEqual([true, false, true, true]);
    // One evaluation per distinct missing check; nothing through the async API.
    expect(syncCalls).toEqual([[reqs[0], reqs[1], reqs[3]]]);
    expect(calls).toHaveLength(0);
    expect(cache.stats()).toMatchObject({ misses: 4, hits: 0, size: 3 });
    expect(cache.batchCheckSync!([reqs[1], reqs[3]])).toEqual([false, true]);
    expect(syncCalls).toHaveLength(1);
    expect(cache.stats()).toMatchObject({ hits: 2 });
    // A partial hit asks the engine for the missing check only.
    expect(cache.batchCheckSync!([reqs[0], { ...alice, object: 'doc:4' }])).toEqual([true, true]);
    expect(syncCalls[1]).toEqual([{ ...alice, object: 'doc:4' }]);
  });

  it('never caches errors, and bypasses the cache for higher_consistency', () => {
    const { engine, syncCalls, state } = syncEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    state.failing = true;
    expect(() => cache.batchCheckSync!([alice])).toThrow(WardenError);
    expect(cache.stats().size).toBe(0);
    state.failing = false;
    expect(cache.batchCheckSync!([alice])).toEqual([true]);
    expect(cache.batchCheckSync!([alice], { consistency: 'higher_consistency' })).toEqual([true]);
    expect(syncCalls).toHaveLength(3);
    expect(cache.stats()).toMatchObject({ bypassed: 1, size: 1 });
  });

  it('peekBatch and the async API still see what the sync path cached', async () => {
    const { engine, calls } = syncEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    cache.batchCheckSync!([alice]);
    expect(cache.peekBatch!([alice])).toEqual([true]);
    expect(await cache.check(alice)).toBe(true);
    expect(calls).toHaveLength(0);
  });
});

describe('withDecisionCache: eviction at size', () => {
  it('keeps a hot entry through many times its size in misses, and stays bounded', async () => {
    const { engine, calls } = fakeEngine(() => true);
    const max = 64;
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: max });
    const hot = { ...alice, object: 'doc:hot' };
    await cache.check(hot);
    for (let i = 0; i < max * 50; i++) {
      await cache.check({ ...alice, object: `doc:${i}` });
      if (i % 8 === 0) await cache.check(hot); // read often enough to be moved before it ages out
      expect(cache.stats().size).toBeLessThanOrEqual(max);
    }
    expect(calls.filter((c) => (c.requests[0] as CheckRequest).object === 'doc:hot')).toHaveLength(1);
    expect(cache.stats()).toMatchObject({ size: max, evictions: max * 50 + 1 - max });
    // The newest misses are still cached, the oldest are gone (least recently used first).
    const before = calls.length;
    await cache.check({ ...alice, object: `doc:${max * 50 - 1}` });
    expect(calls.length).toBe(before);
    await cache.check({ ...alice, object: 'doc:0' });
    expect(calls.length).toBe(before + 1);
  });

  it('a rewritten entry (higher_consistency) is evicted by its newest position, not its first', async () => {
    const { engine } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 3 });
    const doc = (n: number) => ({ ...alice, object: `doc:${n}` });
    for (const n of [1, 2, 3]) await cache.check(doc(n));
    await cache.check(doc(1), { consistency: 'higher_consistency' }); // doc:1 is now the newest
    await cache.check(doc(4)); // evicts doc:2
    await cache.check(doc(5)); // evicts doc:3
    await cache.check(doc(6)); // evicts doc:1, by now the oldest (reads would move entries: none before this point)
    expect(cache.peekBatch!([doc(4), doc(5), doc(6)])).toEqual([true, true, true]);
    for (const n of [1, 2, 3]) expect(cache.peekBatch!([doc(n)])).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 3, evictions: 3 });
  });

  it('keeps the eviction order when hits move entries many times without an eviction', async () => {
    const { engine, calls } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 100 });
    const doc = (n: number) => ({ ...alice, object: `doc:${n}` });
    for (let n = 0; n < 60; n++) await cache.check(doc(n));
    // Hits move entries that drifted into the older half: each round moves all 60,
    // so the order queue is rebuilt (compacted) in the middle of round 4.
    for (let round = 0; round < 4; round++) for (let n = 0; n < 60; n++) await cache.check(doc(n));
    expect(cache.stats()).toMatchObject({ size: 60, evictions: 0, misses: 60 });
    for (let n = 1000; n < 1040; n++) await cache.check(doc(n)); // full
    await cache.check(doc(2000)); // evicts doc:0, the least recently used
    for (const n of [1, 24, 25, 59]) expect(cache.peekBatch!([doc(n)])).toEqual([true]);
    expect(cache.peekBatch!([doc(0)])).toBeUndefined();
    expect(cache.stats()).toMatchObject({ size: 100, evictions: 1 });
    expect(calls).toHaveLength(101);
  });

  it('clear() forgets the eviction order too', async () => {
    const { engine } = fakeEngine(() => true);
    const cache = withDecisionCache(engine, { ttlMs: 60_000, maxEntries: 2 });
    for (const n of [1, 2]) await cache.check({ ...alice, object: `doc:${n}` });
    cache.clear();
    for (const n of [3, 4, 5]) await cache.check({ ...alice, object: `doc:${n}` });
    expect(cache.stats()).toMatchObject({ size: 2, evictions: 1 });
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order and types', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: '1' } })).toBe('{"a":{"c":"1","d":[2,1]},"b":1}');
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });
});
