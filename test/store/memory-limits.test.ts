/**
 * The memory store's budgets under load: what it keeps per key stays bounded
 * by time, not by the requests a window saw (a busy budget with a one-minute
 * window used to keep one object and one string per request for the whole
 * minute: tens of MB promoted into V8's old generation, long pauses when it was
 * collected). The exact figures are the contract suite's; this checks that
 * they hold with the compact records, and that the sweep works a slice at a
 * time.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { COMMITTED_MEMORY_MS, createMemoryStore } from '../../src/store/memory.js';
import { sliceSweeper } from '../../src/store/sweep.js';

describe('memory store budgets keep no record per request', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const spec = { max: 1e12, windowMs: 60_000 };

  it('5000 settled requests over 10 ms: one spend record per millisecond, nothing held, committed ids forgotten after about a second', async () => {
    const store = createMemoryStore();
    let n = 0;
    for (let ms = 0; ms < 10; ms++) {
      for (let i = 0; i < 500; i++) {
        const id = `r${n++}`;
        expect(store.budgetReserveNow?.('k', spec, { id, amount: 1, leaseMs: 70_000 })?.reserved).toBe(true);
        expect(store.budgetSettleNow?.('k', spec.windowMs, id, 1, true, { done: () => undefined, failed: () => undefined })).toBe(true);
      }
      vi.advanceTimersByTime(1);
    }
    expect(await store.budgetRead('k', spec.windowMs)).toMatchObject({ spent: 5000, held: 0 });
    expect(store.budgetStats()).toEqual({ spendRecords: 10, held: 0, committedRemembered: 5000 });
    // A committed id counts once while it is remembered.
    expect(await store.budgetCommit('k', spec.windowMs, 'r7', 1)).toBe(false);
    expect((await store.budgetRead('k', spec.windowMs)).spent).toBe(5000);
    vi.advanceTimersByTime(2 * COMMITTED_MEMORY_MS);
    const last = 'r-last';
    await store.budgetReserve('k', spec, { id: last, amount: 2, leaseMs: 70_000 });
    await store.budgetCommit('k', spec.windowMs, last, 2);
    expect(store.budgetStats()).toEqual({ spendRecords: 11, held: 0, committedRemembered: 1 });
    await store.close();
  });

  it('merged records slide out of the window exactly: a millisecond’s spends leave together, the next ones stay', async () => {
    const store = createMemoryStore();
    const small = { max: 100, windowMs: 1_000 };
    const spend = async (id: string, amount: number) => {
      await store.budgetReserve('w', small, { id, amount, leaseMs: 5_000 });
      await store.budgetCommit('w', small.windowMs, id, amount);
    };
    await spend('a', 10);
    await spend('b', 15.5);
    vi.advanceTimersByTime(400);
    await spend('c', 20);
    expect(await store.budgetRead('w', small.windowMs)).toEqual({ spent: 45.5, held: 0, nextReleaseMs: 600 });
    vi.advanceTimersByTime(599);
    expect((await store.budgetRead('w', small.windowMs)).spent).toBe(45.5);
    vi.advanceTimersByTime(1);
    expect(await store.budgetRead('w', small.windowMs)).toEqual({ spent: 20, held: 0, nextReleaseMs: 400 });
    vi.advanceTimersByTime(400);
    expect(await store.budgetRead('w', small.windowMs)).toEqual({ spent: 0, held: 0, nextReleaseMs: 0 });
    expect(store.budgetStats().spendRecords).toBe(0);
    await store.close();
  });

  it('20000 spends in a window of 10 s at 2 per ms: the records left behind are compacted, the sum stays exact', async () => {
    const store = createMemoryStore();
    const w = { max: 1e12, windowMs: 10_000 };
    for (let ms = 0; ms < 20_000; ms++) {
      for (const id of [`x${ms}`, `y${ms}`]) {
        store.budgetReserveNow?.('c', w, { id, amount: 0.5, leaseMs: 70_000 });
        store.budgetSettleNow?.('c', w.windowMs, id, 0.5, true, { done: () => undefined, failed: () => undefined });
      }
      vi.advanceTimersByTime(1);
    }
    // The last 10 s: 10 000 ms of 1 each (the spend made exactly 10 s ago has left).
    expect((await store.budgetRead('c', w.windowMs)).spent).toBe(9_999);
    expect(store.budgetStats().spendRecords).toBe(9_999);
    await store.close();
  });
});

describe('sliceSweeper', () => {
  it('looks at a bounded slice per call, carries on where it stopped, and starts a new pass at the end', () => {
    const map = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) map.set(i, i % 2 === 0 ? 0 : Infinity);
    const sweep = sliceSweeper(map, (expiresAt, now) => expiresAt <= now, 1_000);
    sweep(1);
    // 1000 looked at, 500 of them expired.
    expect(map.size).toBe(9_500);
    for (let i = 0; i < 9; i++) sweep(1);
    expect(map.size).toBe(5_000);
    // The next pass starts over: entries expired since are found again.
    map.set(0, 0);
    sweep(1);
    sweep(1);
    expect(map.has(0)).toBe(false);
  });

  it('keeps up with a map that gains more than a slice per call: expired entries do not pile up behind the inserts', () => {
    // A Map iterator also visits entries added after it was made: while more arrive per call than a
    // slice, a pass never ends and the oldest entries, expired long ago, are never reached again.
    const map = new Map<number, number>();
    const sweep = sliceSweeper(map, (expiresAt, now) => expiresAt <= now, 1_000);
    let id = 0;
    // 1 500 new entries per call, each expiring two calls later: at most 3 000 are ever unexpired.
    for (let tick = 1; tick <= 200; tick++) {
      for (let i = 0; i < 1_500; i++) map.set(id++, tick + 2);
      sweep(tick);
    }
    expect(map.size).toBeLessThanOrEqual(6_000);
  });
});
