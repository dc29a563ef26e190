/**
 * Local quota blocks (src/store/redis-blocks.ts) against a model of the Redis
 * side (the script's L, u, B, f, r, b, c, x operations, in JS, on a fake clock):
 * the block logic alone, deterministic. The same logic against a real Redis,
 * across two instances, is in test/limits/blocks.test.ts.
 *
 * Properties checked on random interleavings of two instances:
 * - Redis has counted every request or amount an instance let through before
 *   it let it through (nothing is ever spent that Redis does not count);
 * - once the blocks retire, Redis counts exactly what was spent (nothing lost,
 *   nothing held);
 * - a budget's committed spends never pass its max.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createQuotaBlocks, DEFAULT_BLOCK_OPTIONS, type BlockOptions, type BlockRemote } from '../../src/store/redis-blocks.js';
import { seededRandom } from '../support/random.js';

const round = (x: number) => Math.max(0, Number(x.toPrecision(15)));

/** The Redis side, as the script does it (one clock for every call). */
function fakeRedis(clock: () => number) {
  const tats = new Map<string, number>();
  const spends = new Map<string, Array<{ at: number; member: string; amount: number }>>();
  const held = new Map<string, Map<string, { until: number; amount: number }>>();
  const calls: string[] = [];
  let failNext = 0;
  const nowUs = () => clock() * 1000;

  function rateDecide(key: string, intervalUs: number, burst: number) {
    const tat = Math.max(tats.get(key) ?? 0, nowUs());
    const next = tat + intervalUs;
    const allowAt = next - burst * intervalUs;
    if (nowUs() < allowAt)
      return { allowed: false, remaining: 0, retryAfterMs: Math.ceil((allowAt - nowUs()) / 1000), resetAfterMs: Math.ceil((tat - nowUs()) / 1000) };
    tats.set(key, next);
    return { allowed: true, remaining: Math.floor((nowUs() - allowAt) / intervalUs), retryAfterMs: 0, resetAfterMs: Math.ceil((next - nowUs()) / 1000) };
  }
  function state(key: string, windowMs: number) {
    const s = (spends.get(key) ?? []).filter((x) => x.at > clock() - windowMs);
    spends.set(key, s);
    const h = held.get(key) ?? new Map();
    for (const [m, v] of h) if (v.until <= clock()) h.delete(m);
    held.set(key, h);
    return {
      spent: round(s.reduce((a, x) => a + x.amount, 0)),
      held: round([...h.values()].reduce((a, x) => a + x.amount, 0)),
      nextReleaseMs: 0,
      h,
      s,
    };
  }
  const io = async <T>(op: string, f: () => T): Promise<T> => {
    calls.push(op);
    await Promise.resolve();
    if (failNext > 0) {
      failNext--;
      throw new Error('redis down');
    }
    return f();
  };
  const remote: BlockRemote = {
    rate: (key, intervalUs, burst) => io('r', () => rateDecide(key, intervalUs, burst)),
    rateLease: (key, intervalUs, burst, want, headroom, least) =>
      io('L', () => {
        const tat = Math.max(tats.get(key) ?? 0, nowUs());
        const cap = Math.floor((nowUs() + burst * intervalUs - tat) / intervalUs);
        const grant = Math.min(want, Math.floor(cap / (headroom + 1)));
        if (grant >= least) {
          tats.set(key, tat + grant * intervalUs);
          const t2 = tat + grant * intervalUs;
          return {
            granted: grant,
            allowed: true,
            remaining: Math.floor((nowUs() + burst * intervalUs - t2) / intervalUs),
            retryAfterMs: 0,
            resetAfterMs: Math.ceil((t2 - nowUs()) / 1000),
          };
        }
        return { granted: 0, ...rateDecide(key, intervalUs, burst) };
      }),
    rateReturn: (key, intervalUs, count) =>
      io('u', () => {
        tats.set(key, (tats.get(key) ?? 0) - count * intervalUs);
      }),
    reserve: (key, windowMs, max, amount, member, leaseMs) =>
      io('b', () => {
        const st = state(key, windowMs);
        const ok = round(st.spent + st.held + amount) <= max;
        if (ok) st.h.set(member, { until: clock() + leaseMs, amount });
        const after = state(key, windowMs);
        return { reserved: ok, spent: after.spent, held: after.held, nextReleaseMs: 0 };
      }),
    reserveBlock: (key, windowMs, max, amount, member, leaseMs, want, headroom, least, blockId) =>
      io('B', () => {
        const st = state(key, windowMs);
        let free = (max - st.spent - st.held) / (headroom + 1);
        if (free >= 1) free = Math.floor(free);
        const grant = round(Math.min(want, free));
        if (grant >= least * amount && grant > 0) {
          st.h.set(`${blockId}:${grant}`, { until: clock() + leaseMs, amount: grant });
          const after = state(key, windowMs);
          return { granted: grant, grantedText: String(grant), reserved: true, spent: after.spent, held: after.held, nextReleaseMs: 0 };
        }
        const ok = round(st.spent + st.held + amount) <= max;
        if (ok) st.h.set(member, { until: clock() + leaseMs, amount });
        const after = state(key, windowMs);
        return { granted: 0, grantedText: '0', reserved: ok, spent: after.spent, held: after.held, nextReleaseMs: 0 };
      }),
    flushBlock: (key, windowMs, oldMember, newMember, keep, spent, leaseMs, spendMember) =>
      io('f', () => {
        const st = state(key, windowMs);
        const was = st.h.delete(oldMember);
        if (was && keep > 0) st.h.set(newMember, { until: clock() + leaseMs, amount: keep });
        if (spent > 0 && !st.s.some((x) => x.member === spendMember)) st.s.push({ at: clock(), member: spendMember, amount: spent });
        return was;
      }),
    commit: (key, windowMs, member, amount) =>
      io('c', () => {
        const st = state(key, windowMs);
        const was = st.h.delete(member);
        if (!st.s.some((x) => x.member === member)) st.s.push({ at: clock(), member, amount });
        return was;
      }),
    release: (key, member) =>
      io('x', () => {
        const h = held.get(key) ?? new Map<string, { until: number; amount: number }>();
        for (const [m, v] of h) if (v.until <= clock()) h.delete(m);
        return h.delete(member);
      }),
  };
  return {
    remote,
    calls,
    failNext: (n: number) => (failNext = n),
    /** Requests Redis counts as made right now for a rate key (TAT ahead of now, in intervals). */
    rateCounted: (key: string, intervalUs: number) => Math.max(0, ((tats.get(key) ?? 0) - nowUs()) / intervalUs),
    /** Requests Redis has counted since `startMs` (the TAT's advance; valid while it never fell behind the clock). */
    rateSince: (key: string, intervalUs: number, startMs: number) => ((tats.get(key) ?? startMs * 1000) - startMs * 1000) / intervalUs,
    budget: (key: string, windowMs: number) => {
      const st = state(key, windowMs);
      return { spent: st.spent, held: st.held, members: [...st.h.keys()] };
    },
  };
}

/** Small deterministic PRNG (mulberry32), so a failure can be replayed. */
const prng = seededRandom;

describe('local quota blocks (model of the Redis side)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  let ids = 0;
  const make = (redis: ReturnType<typeof fakeRedis>, extra: Partial<BlockOptions> = {}) =>
    createQuotaBlocks(redis.remote, { ...DEFAULT_BLOCK_OPTIONS, ...extra, newId: () => `q${ids++}` });
  const settle = async () => {
    for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(0);
  };

  it('far from a rate limit: one lease, then local decisions; the unspent rest goes back when the block retires', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    const intervalUs = 3_600; // 1,000,000 per hour
    const first = await blocks.rate('k', intervalUs, 1_000_000);
    expect(first.allowed).toBe(true);
    expect(redis.calls).toEqual(['L']);
    // The block: minRequests (no demand seen yet), this request included.
    expect(redis.rateCounted('k', intervalUs)).toBeCloseTo(DEFAULT_BLOCK_OPTIONS.minRequests, 5);
    for (let i = 1; i < DEFAULT_BLOCK_OPTIONS.minRequests; i++) expect((await blocks.rate('k', intervalUs, 1_000_000)).allowed).toBe(true);
    expect(redis.calls).toEqual(['L']);
    // Exhausted: the next asks Redis for a bigger block (demand grew).
    await blocks.rate('k', intervalUs, 1_000_000);
    expect(redis.calls).toEqual(['L', 'L']);
    const counted = redis.rateCounted('k', intervalUs);
    expect(counted).toBeGreaterThan(DEFAULT_BLOCK_OPTIONS.minRequests + 1);
    // Retired after useMs: the unspent part is given back; Redis counts the 9 spent (less what refilled meanwhile).
    await vi.advanceTimersByTimeAsync(DEFAULT_BLOCK_OPTIONS.useMs);
    await settle();
    expect(redis.calls).toContain('u');
    expect(redis.rateCounted('k', intervalUs)).toBe(0); // 9 requests × 3.6 ms refilled within the second
  });

  it('near a rate limit there is no block: every decision is made by Redis', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    // 200 per hour: 200 / 33 < 8, so no block is ever granted.
    const intervalUs = 18_000_000;
    const out = [];
    for (let i = 0; i < 210; i++) out.push(await blocks.rate('k', intervalUs, 200));
    expect(out.filter((r) => r.allowed)).toHaveLength(200);
    expect(redis.calls.filter((c) => c === 'L' || c === 'r')).toHaveLength(210);
    // Exact remaining: 199 … 0 as without blocks.
    expect(out.slice(0, 200).map((r) => r.remaining)).toEqual(Array.from({ length: 200 }, (_, i) => 199 - i));
  });

  it('two instances, random interleavings: Redis counts every request before it passes, and exactly the spent ones once blocks retire', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(seed);
      const redis = fakeRedis(Date.now);
      const a = make(redis, { useMs: 200 + Math.floor(rnd() * 800) });
      const b = make(redis);
      const burst = 300 + Math.floor(rnd() * 20_000);
      const intervalUs = 3_600_000_000_000 / burst; // per hour
      const start = Date.now();
      let allowed = 0;
      for (let step = 0; step < 400; step++) {
        const n = 1 + Math.floor(rnd() * 40);
        const batch = Array.from({ length: n }, () => (rnd() < 0.5 ? a : b).rate('k', intervalUs, burst));
        const results = await Promise.all(batch);
        allowed += results.filter((r) => r.allowed).length;
        expect(allowed).toBeLessThanOrEqual(burst);
        expect(redis.rateSince('k', intervalUs, start)).toBeGreaterThanOrEqual(allowed - 1e-6);
        if (rnd() < 0.1) await vi.advanceTimersByTimeAsync(Math.floor(rnd() * 400));
      }
      await a.close();
      await b.close();
      await settle();
      expect(redis.rateSince('k', intervalUs, start)).toBeCloseTo(allowed, 3);
    }
  });

  it('a budget far from its max: one block, local reservations, commits flushed as one spend; a release goes back to the block', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    const r1 = await blocks.reserve('b', 60_000, 1_000_000, 10, 'r1', 'r1:10', 30_000);
    expect(r1.reserved).toBe(true);
    expect(redis.calls).toEqual(['B']);
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 0, held: 80 }); // 8 × 10
    const r2 = await blocks.reserve('b', 60_000, 1_000_000, 10, 'r2', 'r2:10', 30_000);
    const r3 = await blocks.reserve('b', 60_000, 1_000_000, 10, 'r3', 'r3:10', 30_000);
    expect([r2.reserved, r3.reserved]).toEqual([true, true]);
    expect(redis.calls).toEqual(['B']);
    // r2's upstream failed: its 10 goes back to the block, not to Redis.
    expect(await blocks.release('b', 'r2')).toBe(true);
    const commits = Promise.all([blocks.commit('b', 'r1'), blocks.commit('b', 'r3')]);
    await settle();
    expect(await commits).toEqual([true, true]);
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 20, held: 60 });
    // Committing twice records once.
    expect(await blocks.commit('b', 'r1')).toBe(false);
    // The released 10 serves the next reservations locally.
    for (let i = 0; i < 6; i++) expect((await blocks.reserve('b', 60_000, 1_000_000, 10, `s${i}`, `s${i}:10`, 30_000)).reserved).toBe(true);
    expect(redis.calls.filter((c) => c === 'B' || c === 'b')).toHaveLength(1);
    // Retired: what is not in flight goes back; the in-flight 60 stays held until settled.
    await vi.advanceTimersByTimeAsync(DEFAULT_BLOCK_OPTIONS.useMs);
    await settle();
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 20, held: 60 });
    for (let i = 0; i < 6; i++) void (i % 2 ? blocks.commit('b', `s${i}`) : blocks.release('b', `s${i}`));
    await settle();
    await vi.advanceTimersByTimeAsync(10);
    await settle();
    expect(redis.budget('b', 60_000)).toEqual({ spent: 50, held: 0, members: [] });
  });

  it('near a budget max there is no block: exact reservations (50 of 20 against 500 → 25)', async () => {
    const redis = fakeRedis(Date.now);
    const a = make(redis);
    const b = make(redis);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).reserve('p', 86_400_000, 500, 20, `i${i}`, `i${i}:20`, 30_000)));
    expect(results.filter((r) => r.reserved)).toHaveLength(25);
    expect(redis.calls.every((c) => c === 'B' || c === 'b')).toBe(true);
  });

  it('two instances, random reserve/commit/release: committed spends never pass max, Redis always counts what is in flight, nothing is left held', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const rnd = prng(seed * 7919);
      const redis = fakeRedis(Date.now);
      const inst = [make(redis), make(redis, { useMs: 300 })];
      const max = 2_000 + Math.floor(rnd() * 50_000);
      const open: Array<{ who: number; id: string; amount: number }> = [];
      let committed = 0;
      let inFlight = 0;
      let n = 0;
      for (let step = 0; step < 300; step++) {
        const k = 1 + Math.floor(rnd() * 20);
        const batch = Array.from({ length: k }, () => {
          const who = rnd() < 0.5 ? 0 : 1;
          const amount = 1 + Math.floor(rnd() * 30);
          const id = `r${n++}`;
          return inst[who].reserve('b', 3_600_000, max, amount, id, `${id}:${amount}`, 60_000).then((r) => ({ r, who, id, amount }));
        });
        for (const x of await Promise.all(batch)) {
          if (!x.r.reserved) continue;
          open.push({ who: x.who, id: x.id, amount: x.amount });
          inFlight += x.amount;
        }
        // Settle some, in random order.
        const settling = [];
        while (open.length && rnd() < 0.7) {
          const o = open.splice(Math.floor(rnd() * open.length), 1)[0];
          inFlight -= o.amount;
          if (rnd() < 0.8) {
            committed += o.amount;
            settling.push(inst[o.who].commit('b', o.id) ?? redis.remote.commit('b', 3_600_000, `${o.id}:${o.amount}`, o.amount));
          } else settling.push(inst[o.who].release('b', o.id) ?? redis.remote.release('b', `${o.id}:${o.amount}`, o.amount));
        }
        await vi.advanceTimersByTimeAsync(0);
        const st = redis.budget('b', 3_600_000);
        expect(committed).toBeLessThanOrEqual(max);
        // Redis counts at least what is committed and in flight (it may count unspent blocks too).
        expect(round(st.spent + st.held)).toBeGreaterThanOrEqual(round(committed + inFlight) - 1e-6);
        expect(round(st.spent + st.held)).toBeLessThanOrEqual(max);
        if (rnd() < 0.1) await vi.advanceTimersByTimeAsync(Math.floor(rnd() * 500));
        void Promise.allSettled(settling);
      }
      for (const o of open.splice(0)) {
        committed += o.amount;
        void (inst[o.who].commit('b', o.id) ?? redis.remote.commit('b', 3_600_000, `${o.id}:${o.amount}`, o.amount));
      }
      await inst[0].close();
      await inst[1].close();
      await vi.advanceTimersByTimeAsync(10);
      await settle();
      expect(redis.budget('b', 3_600_000)).toEqual({ spent: round(committed), held: 0, members: [] });
    }
  });

  it('a block whose lease lapsed is spent from no more; its commits still count', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis, { useMs: 60_000 });
    await blocks.reserve('b', 3_600_000, 1_000_000, 1, 'r1', 'r1:1', 1_000);
    await blocks.reserve('b', 3_600_000, 1_000_000, 1, 'r2', 'r2:1', 1_000);
    // Longer than the lease without a word to Redis (a stalled instance): Redis let the block go.
    await vi.advanceTimersByTimeAsync(1_500);
    expect(redis.budget('b', 3_600_000).held).toBe(0);
    const c = blocks.commit('b', 'r1');
    await settle();
    await vi.advanceTimersByTimeAsync(10);
    expect(await c).toBe(false);
    expect(redis.budget('b', 3_600_000)).toMatchObject({ spent: 1, held: 0 });
    // Not re-held, and the next reservation asks Redis.
    const before = redis.calls.length;
    await blocks.reserve('b', 3_600_000, 1_000_000, 1, 'r3', 'r3:1', 1_000);
    expect(redis.calls.slice(before)[0]).toMatch(/^[Bb]$/);
    void blocks.commit('b', 'r2');
    await vi.advanceTimersByTimeAsync(10);
    expect(redis.budget('b', 3_600_000).spent).toBe(2);
  });

  it('a flush that fails rejects its commits once and is not retried in a loop', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    await blocks.reserve('b', 3_600_000, 1_000_000, 1, 'r1', 'r1:1', 1_000);
    redis.failNext(1);
    const c = blocks.commit('b', 'r1');
    const failed = expect(c).rejects.toThrow('redis down');
    await vi.advanceTimersByTimeAsync(10);
    await failed;
    const calls = redis.calls.length;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(redis.calls.length).toBe(calls);
  });

  it('rateNow: decided now from the block (no call, no promise); undefined with no block, once it is spent, or after it retired', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    const intervalUs = 3_600;
    expect(blocks.rateNow('k')).toBeUndefined(); // no block yet: Redis must be asked
    await blocks.rate('k', intervalUs, 1_000_000);
    const calls = redis.calls.length;
    const local = [];
    for (let i = 1; i < DEFAULT_BLOCK_OPTIONS.minRequests; i++) local.push(blocks.rateNow('k'));
    expect(redis.calls.length).toBe(calls);
    for (const r of local) expect(r).toMatchObject({ allowed: true, retryAfterMs: 0 });
    // Remaining counts down with the block, as the asynchronous path's answers do.
    expect(local.map((r) => r?.remaining)).toEqual([...local.map((r) => r?.remaining)].sort((x, y) => (y ?? 0) - (x ?? 0)));
    expect(blocks.rateNow('k')).toBeUndefined(); // spent
    // A fresh block, then retired after useMs: not spent from any more.
    await blocks.rate('k', intervalUs, 1_000_000);
    expect(blocks.rateNow('k')).toBeDefined();
    await vi.advanceTimersByTimeAsync(DEFAULT_BLOCK_OPTIONS.useMs);
    expect(blocks.rateNow('k')).toBeUndefined();
  });

  it('reserveNow / settleNow: reservations and commits from the block now; a flush that fails is told to the watcher once per commit', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    const watcher = { done: vi.fn(), failed: vi.fn() };
    expect(blocks.reserveNow('b', 10, 'r0')).toBeUndefined(); // no block yet
    expect(blocks.settleNow('b', 'r0', true, watcher)).toBeUndefined(); // not served by a block: the caller asks Redis
    await blocks.reserve('b', 60_000, 1_000_000, 10, 'r1', 'r1:10', 30_000);
    const calls = redis.calls.length;
    expect(blocks.reserveNow('b', 10, 'r2')).toMatchObject({ reserved: true });
    expect(blocks.reserveNow('b', 10, 'r3')).toMatchObject({ reserved: true });
    // More than the block has left: undefined (Redis decides), nothing taken from the block.
    expect(blocks.reserveNow('b', 1_000, 'big')).toBeUndefined();
    expect(redis.calls.length).toBe(calls);
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 0, held: 80 });
    // A release goes back to the block; commits flush as one spend, told to the watcher.
    expect(blocks.settleNow('b', 'r2', false, watcher)).toBe(true);
    expect(blocks.settleNow('b', 'r1', true, watcher)).toBe(true);
    expect(blocks.settleNow('b', 'r3', true, watcher)).toBe(true);
    await settle();
    await vi.advanceTimersByTimeAsync(10);
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 20, held: 60 });
    expect(watcher.done).toHaveBeenCalledWith(true);
    expect(watcher.failed).not.toHaveBeenCalled();
    // The next flush fails: its one commit is told to the watcher as failed.
    expect(blocks.reserveNow('b', 10, 'r4')).toMatchObject({ reserved: true });
    redis.failNext(1);
    expect(blocks.settleNow('b', 'r4', true, watcher)).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    expect(watcher.failed).toHaveBeenCalledTimes(1);
    expect(watcher.failed.mock.calls[0][0]).toMatchObject({ message: 'redis down' });
  });
  it("reserveLot / settleLot: held by the caller's record (no id kept per reservation), settled once in O(1), commits flushed as one spend", async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    const watcher = { done: vi.fn(), failed: vi.fn() };
    const holder = () => ({ lot: undefined as unknown });
    const h0 = holder();
    expect(blocks.reserveLot('b', 10, h0)).toBeUndefined(); // no block yet: Redis must be asked
    expect(h0.lot).toBeUndefined();
    expect(blocks.settleLot(h0, 10, true, watcher)).toBeUndefined(); // not held by a block: settled by id
    await blocks.reserve('b', 60_000, 1_000_000, 10, 'r1', 'r1:10', 30_000);
    const calls = redis.calls.length;
    const held = Array.from({ length: 5 }, holder);
    for (const h of held) expect(blocks.reserveLot('b', 10, h)).toMatchObject({ reserved: true });
    // More than the block has left: undefined, the record untouched, nothing taken.
    const big = holder();
    expect(blocks.reserveLot('b', 1_000, big)).toBeUndefined();
    expect(big.lot).toBeUndefined();
    expect(redis.calls.length).toBe(calls);
    // Only the lease's own reservation (by id) is remembered by the block.
    expect(blocks.stats().trackedIds).toBe(1);
    // Two released (back to the block), three committed; settling again does nothing.
    expect(blocks.settleLot(held[0], 10, false, watcher)).toBe(true);
    expect(blocks.settleLot(held[1], 10, false, watcher)).toBe(true);
    for (const h of held.slice(2)) expect(blocks.settleLot(h, 10, true, watcher)).toBe(true);
    expect(blocks.settleLot(held[2], 10, true, watcher)).toBe(true);
    expect(blocks.settleLot(held[0], 10, true, watcher)).toBe(true);
    expect(blocks.settleNow('b', 'r1', true, watcher)).toBe(true);
    expect(blocks.stats().trackedIds).toBe(1); // r1, settled: remembered until the block is done
    await settle();
    await vi.advanceTimersByTimeAsync(10);
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 40, held: 40 });
    // Every commit is told once (four commits: r1 and three records; the repeats were not commits).
    expect(watcher.done).toHaveBeenCalledTimes(4);
    // The two released 10s serve the next records locally.
    for (let i = 0; i < 2; i++) expect(blocks.reserveLot('b', 10, holder())).toMatchObject({ reserved: true });
    expect(redis.calls.filter((c) => c === 'B' || c === 'b')).toHaveLength(1);
  });

  it('a flush carrying many commits tells each watcher once per commit (kept as runs of the same watcher, not one entry per request)', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis);
    const a = { done: vi.fn(), failed: vi.fn() };
    const b = { done: vi.fn(), failed: vi.fn() };
    await blocks.reserve('b', 60_000, 1_000_000, 1, 'r1', 'r1:1', 30_000);
    const held = Array.from({ length: 6 }, () => ({ lot: undefined as unknown }));
    for (const h of held) expect(blocks.reserveLot('b', 1, h)).toMatchObject({ reserved: true });
    // The first commit is flushed at once; the five behind it ride on the next flush together.
    blocks.settleLot(held[0], 1, true, a);
    blocks.settleLot(held[1], 1, true, a);
    blocks.settleLot(held[2], 1, true, a);
    blocks.settleLot(held[3], 1, true, a);
    blocks.settleLot(held[4], 1, true, b);
    blocks.settleLot(held[5], 1, true, a);
    await settle();
    await vi.advanceTimersByTimeAsync(10);
    await settle();
    expect(redis.calls.filter((c) => c === 'f')).toHaveLength(2);
    expect(a.done).toHaveBeenCalledTimes(5);
    expect(b.done).toHaveBeenCalledTimes(1);
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 6 });
  });
  it('flushMs: commits wait up to flushMs and go to Redis as one flush (Redis holds the whole block meanwhile); a retiring block flushes at once', async () => {
    const redis = fakeRedis(Date.now);
    const blocks = make(redis, { flushMs: 50 });
    const watcher = { done: vi.fn(), failed: vi.fn() };
    await blocks.reserve('b', 60_000, 1_000_000, 1, 'r1', 'r1:1', 30_000);
    const held = Array.from({ length: 6 }, () => ({ lot: undefined as unknown }));
    for (const h of held) blocks.reserveLot('b', 1, h);
    for (const h of held.slice(0, 3)) blocks.settleLot(h, 1, true, watcher);
    await vi.advanceTimersByTimeAsync(20);
    expect(redis.calls.filter((c) => c === 'f')).toHaveLength(0); // waiting: still all held in Redis
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 0, held: 8 });
    for (const h of held.slice(3, 5)) blocks.settleLot(h, 1, true, watcher);
    await vi.advanceTimersByTimeAsync(40);
    await settle();
    expect(redis.calls.filter((c) => c === 'f')).toHaveLength(1); // the five commits in one flush
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 5, held: 3 });
    expect(watcher.done).toHaveBeenCalledTimes(5);
    // Retired (useMs): what is unspent goes back at once, then the last commit goes at once too.
    await vi.advanceTimersByTimeAsync(DEFAULT_BLOCK_OPTIONS.useMs);
    await settle();
    const calls = redis.calls.length;
    blocks.settleLot(held[5], 1, true, watcher);
    await settle();
    expect(redis.calls.length).toBe(calls + 1);
    expect(redis.budget('b', 60_000)).toMatchObject({ spent: 6, held: 1 }); // r1 still in flight
  });
});
