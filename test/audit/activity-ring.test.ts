/**
 * The console's activity ring written in batches on a real Redis: a batch is
 * one script call with one LPUSH per person (not three commands per request),
 * each person's ring keeps the newest 200 in order, a read on the instance
 * that buffered an item writes it first, close() writes the last batch, and a
 * store outage never reaches the request.
 */

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVITY_BATCH_MAX, ACTIVITY_RING_MAX, createActivityRing } from '../../src/audit/activity.js';
import { createLogger } from '../../src/observability/logger.js';
import type { RequestState } from '../../src/pipeline/context.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { until } from '../support/eventually.js';
import { captureLogs } from '../support/logs.js';
import { commandCalls, startRedis, type TestRedis } from '../support/redis.js';

const logger = createLogger({ level: 'silent' });

/** A finished request as the audit step hands it to the ring. */
const request = (user: string, n: number) =>
  ({
    id: `${user}-${n}`,
    startedAt: Date.now(),
    method: 'GET',
    path: `/notes/${user}-${n}`,
    query: '',
    route: { name: 'notes' },
    principal: { agent: 'bot', user, actors: [], issuer: 'dev', scopes: [] },
    policy: {},
    decision: 'allow',
    status: 200,
  }) as unknown as RequestState;

describe('activity ring on a real Redis', () => {
  let redis: TestRedis;
  let raw: Redis;
  const stores: Store[] = [];

  const open = async (timeoutMs = 2_000) => {
    const s = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs, logger });
    stores.push(s);
    return s;
  };
  const calls = async () => {
    const n = await commandCalls(raw);
    return { lpush: n('lpush'), ltrim: n('ltrim'), pexpire: n('pexpire'), scripts: n('evalsha') + n('eval') };
  };
  const ids = async (store: Store, user: string) => (await store.listRange(`activity:${user}`, 1_000)).map((s) => (JSON.parse(s) as { id: string }).id);

  beforeAll(async () => {
    redis = await startRedis({ local: true });
    raw = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    raw?.disconnect();
    await redis?.stop();
  });

  it('one batch is one script call and one LPUSH per person, whatever the number of requests; each ring keeps its newest 200 in order', async () => {
    const store = await open();
    const ring = createActivityRing(store, logger, { intervalMs: 10_000 });
    const before = await calls();
    for (let n = 0; n < 300; n++) ring.record(request('ann', n), undefined);
    for (let n = 0; n < 20; n++) ring.record(request('ben', n), undefined);
    expect(await ids(store, 'ann'), 'nothing is written before the interval').toEqual([]);
    await ring.close();
    const after = await calls();
    expect(after.scripts - before.scripts).toBe(1);
    expect(after.lpush - before.lpush).toBe(2);
    expect(after.pexpire - before.pexpire).toBe(2);
    // Only the newest 200 of ann's 300 were sent, so no trim was needed either.
    expect(after.ltrim - before.ltrim).toBe(0);
    expect(await ids(store, 'ann')).toEqual(Array.from({ length: ACTIVITY_RING_MAX }, (_, i) => `ann-${299 - i}`));
    expect(await ids(store, 'ben')).toEqual(Array.from({ length: 20 }, (_, i) => `ben-${19 - i}`));

    // A full ring is trimmed back to its cap by the next batch.
    const next = createActivityRing(store, logger, { intervalMs: 10_000 });
    for (let n = 300; n < 310; n++) next.record(request('ann', n), undefined);
    await next.close();
    const got = await ids(store, 'ann');
    expect(got.length).toBe(ACTIVITY_RING_MAX);
    expect(got.slice(0, 11)).toEqual([...Array.from({ length: 10 }, (_, i) => `ann-${309 - i}`), 'ann-299']);
    expect(await raw.pttl(`${redis.keyPrefix}activity:ann`)).toBeGreaterThan(6 * 24 * 3_600_000);
  });

  it("one person's agent in a loop does not turn the interval into a write per thousand requests: replaced items do not grow the batch", async () => {
    const store = await open();
    const ring = createActivityRing(store, logger, { intervalMs: 10_000 });
    const before = await calls();
    for (let n = 0; n < 5_000; n++) ring.record(request('gil', n), undefined);
    expect(await ids(store, 'gil'), 'nothing is written before the interval').toEqual([]);
    expect((await calls()).scripts - before.scripts).toBe(0);
    await ring.close();
    expect((await calls()).scripts - before.scripts).toBe(1);
    expect(await ids(store, 'gil')).toEqual(Array.from({ length: ACTIVITY_RING_MAX }, (_, i) => `gil-${4_999 - i}`));
  });

  it('many people at once still write a batch as soon as ACTIVITY_BATCH_MAX items are held', async () => {
    const store = await open();
    const ring = createActivityRing(store, logger, { intervalMs: 10_000 });
    for (let n = 0; n < ACTIVITY_BATCH_MAX; n++) ring.record(request(`p${n}`, 0), undefined);
    await until(async () => (await ids(store, `p${ACTIVITY_BATCH_MAX - 1}`)).length === 1, { what: 'the full batch in the store' });
    expect(await ids(store, 'p0')).toEqual(['p0-0']);
    await ring.close();
  });

  it('each item carries the time its request started and the fields the console lists, whenever its batch is written', async () => {
    const store = await open();
    const ring = createActivityRing(store, logger, { intervalMs: 10_000 });
    const startedAt = Date.parse('2026-03-04T05:06:07.089Z');
    const state = { ...request('hal', 1), startedAt, query: 'a=1', mcp: { tool: 'search' } } as unknown as RequestState;
    ring.record(state, undefined);
    // The request's objects may be reused or changed after the audit step: what was recorded stays.
    (state as { path: string }).path = '/changed';
    await ring.close();
    const [raw1] = await store.listRange('activity:hal', 10);
    expect(JSON.parse(raw1)).toEqual({
      time: '2026-03-04T05:06:07.089Z',
      id: 'hal-1',
      route: 'notes',
      decision: 'allow',
      status: 200,
      agent: 'bot',
      user: 'hal',
      method: 'GET',
      path: '/notes/hal-1',
      query: 'a=1',
      tool: 'search',
    });
    expect(Object.keys(JSON.parse(raw1) as object)[0]).toBe('time');
  });

  it('writes each batch after its interval without being asked', async () => {
    const store = await open();
    const ring = createActivityRing(store, logger, { intervalMs: 50 });
    for (let n = 0; n < 3; n++) ring.record(request('cat', n), undefined);
    await until(async () => (await ids(store, 'cat')).length === 3, { what: 'the batch in the store' });
    expect(await ids(store, 'cat')).toEqual(['cat-2', 'cat-1', 'cat-0']);
    await ring.close();
  });

  it('a read on the instance that buffered an item shows it at once; another instance sees it after the interval', async () => {
    const [one, two] = [await open(), await open()];
    const a = createActivityRing(one, logger, { intervalMs: 10_000 });
    const b = createActivityRing(two, logger, { intervalMs: 10_000 });
    a.record(request('dan', 1), undefined);
    b.record(request('dan', 2), undefined);
    // a's read writes a's batch first; b's item is still in b's memory.
    expect((await a.page('dan', {}, { limit: 50 })).items.map((i) => i.id)).toEqual(['dan-1']);
    expect((await b.page('dan', {}, { limit: 50 })).items.map((i) => i.id)).toEqual(['dan-2', 'dan-1']);
    expect((await a.page('dan', {}, { limit: 50 })).items.map((i) => i.id)).toEqual(['dan-2', 'dan-1']);
    await Promise.all([a.close(), b.close()]);
  });

  it('after close, a late request is still written (next turn), and a store outage never reaches the request', async () => {
    const store = await open();
    const ring = createActivityRing(store, logger, { intervalMs: 10_000 });
    await ring.close();
    ring.record(request('eve', 1), undefined);
    await until(async () => (await ids(store, 'eve')).length === 1, { what: 'the late item' });

    const capture = captureLogs('warn');
    const closed = await open();
    await closed.close();
    const failing = createActivityRing(closed, capture.logger, { intervalMs: 0 });
    expect(() => failing.record(request('fay', 1), undefined)).not.toThrow();
    await failing.close();
    failing.record(request('fay', 2), undefined);
    await failing.close();
    expect(capture.lines.join('').match(/activity: could not record decisions in the store/g)).toHaveLength(1);
  });
});
