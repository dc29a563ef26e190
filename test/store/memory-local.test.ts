/**
 * The memory store's warm path without an id per reservation
 * (budgetReserveLocal / budgetSettleLocal, what the limits stage uses): the
 * reservations of one key made in the same millisecond with the same lease
 * share one held record (a lot), each reservation is settled once through its
 * own record, and nothing per request is kept or remembered. It must mean
 * exactly what the id path means: a model test runs the same random sequence
 * of reserves, commits, releases, double settlements and lapsed leases
 * through both and compares every answer and every state.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vi } from 'vitest';
import { createMemoryStore } from '../../src/store/memory.js';
import type { LocalReservation, SettleWatcher } from '../../src/store/store.js';
import { seededRandom } from '../support/random.js';

const watcher: SettleWatcher = { done: () => undefined, failed: () => undefined };

const local = (amount: number, leaseMs: number): LocalReservation => ({ id: 'unused', amount, leaseMs, lot: undefined });

describe('memory store: local reservations (no id)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 2_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('5000 reserved and committed over 10 ms: exact sums, nothing held or remembered per request, a second settlement counts nothing', async () => {
    const store = createMemoryStore();
    const spec = { max: 1e12, windowMs: 60_000 };
    const all: LocalReservation[] = [];
    for (let ms = 0; ms < 10; ms++) {
      const batch: LocalReservation[] = [];
      for (let i = 0; i < 500; i++) {
        const r = local(1, 70_000);
        expect(store.budgetReserveLocal?.('k', spec, r)?.reserved).toBe(true);
        expect(r.lot).toBeDefined();
        batch.push(r);
      }
      // In flight: 500 held, by one record.
      expect(store.budgetStats().held).toBe(500);
      for (const r of batch) expect(store.budgetSettleLocal?.(r, true, watcher)).toBe(true);
      all.push(...batch);
      vi.advanceTimersByTime(1);
    }
    expect(await store.budgetRead('k', spec.windowMs)).toMatchObject({ spent: 5000, held: 0 });
    expect(store.budgetStats()).toEqual({ spendRecords: 10, held: 0, committedRemembered: 0 });
    // Settled already: settling again (commit or release) changes nothing.
    expect(store.budgetSettleLocal?.(all[7], true, watcher)).toBe(true);
    expect(store.budgetSettleLocal?.(all[8], false, watcher)).toBe(true);
    expect(await store.budgetRead('k', spec.windowMs)).toMatchObject({ spent: 5000, held: 0 });
    await store.close();
  });

  it('reservations sharing a record are settled one by one: a release frees only its own amount, a lapsed lease frees what is left of them', async () => {
    const store = createMemoryStore();
    const spec = { max: 10, windowMs: 60_000 };
    const [a, b, c] = [local(3, 1_000), local(3, 1_000), local(3, 1_000)];
    for (const r of [a, b, c]) expect(store.budgetReserveLocal?.('s', spec, r)?.reserved).toBe(true);
    // 9 held: 2 more do not fit.
    expect(store.budgetReserveLocal?.('s', spec, local(2, 1_000))).toMatchObject({ reserved: false, held: 9 });
    store.budgetSettleLocal?.(a, false, watcher);
    expect(await store.budgetRead('s', spec.windowMs)).toMatchObject({ spent: 0, held: 6 });
    store.budgetSettleLocal?.(b, true, watcher);
    expect(await store.budgetRead('s', spec.windowMs)).toMatchObject({ spent: 3, held: 3 });
    // c's lease lapses: nothing held any more; its late release frees nothing, its late commit still counts (as by id).
    vi.advanceTimersByTime(1_000);
    expect(await store.budgetRead('s', spec.windowMs)).toMatchObject({ spent: 3, held: 0 });
    const d = local(4, 1_000);
    expect(store.budgetReserveLocal?.('s', spec, d)?.reserved).toBe(true);
    store.budgetSettleLocal?.(c, true, watcher);
    expect(await store.budgetRead('s', spec.windowMs)).toMatchObject({ spent: 6, held: 4 });
    await store.close();
  });

  it('means exactly what the id path means (a random model of 3000 steps, leases lapsing, windows sliding)', async () => {
    for (const seed of [1, 2, 3]) {
      const rnd = seededRandom(seed);
      const byId = createMemoryStore();
      const byLot = createMemoryStore();
      const spec = { max: 40, windowMs: 200 };
      const keys = ['p', 'q'];
      type Open = { key: string; id: string; r: LocalReservation };
      let open: Open[] = [];
      // Settled lately (the id path remembers a commit for COMMITTED_MEMORY_MS at least), and how.
      let settledOnce: Array<Open & { commit: boolean; at: number }> = [];
      let n = 0;
      for (let step = 0; step < 3000; step++) {
        const x = rnd();
        const key = keys[Math.floor(rnd() * keys.length)];
        if (x < 0.4) {
          const amount = [1, 2.5, 5, 0.1][Math.floor(rnd() * 4)];
          const leaseMs = rnd() < 0.8 ? 50 : 30;
          const id = `r${n++}`;
          const r = local(amount, leaseMs);
          const viaId = byId.budgetReserveNow?.(key, spec, { id, amount, leaseMs });
          const viaLot = byLot.budgetReserveLocal?.(key, spec, r);
          expect(viaLot, `seed ${seed} step ${step}`).toEqual(viaId);
          if (viaId?.reserved) open.push({ key, id, r });
        } else if (x < 0.75 && open.length > 0) {
          const i = Math.floor(rnd() * open.length);
          const o = open[i];
          open = open.filter((_, j) => j !== i);
          const commit = rnd() < 0.7;
          byId.budgetSettleNow?.(o.key, spec.windowMs, o.id, o.r.amount, commit, watcher);
          byLot.budgetSettleLocal?.(o.r, commit, watcher);
          settledOnce.push({ ...o, commit, at: Date.now() });
        } else if (x < 0.8 && (settledOnce = settledOnce.filter((s) => Date.now() - s.at < 500)).length > 0) {
          // A second settlement of something settled lately: a commit or a release once committed, a release once released
          // (what the id path, too, ignores; the stage settles each reservation once).
          const o = settledOnce[Math.floor(rnd() * settledOnce.length)];
          const commit = o.commit && rnd() < 0.5;
          byId.budgetSettleNow?.(o.key, spec.windowMs, o.id, o.r.amount, commit, watcher);
          byLot.budgetSettleLocal?.(o.r, commit, watcher);
        } else {
          vi.advanceTimersByTime(Math.floor(rnd() * 12));
        }
        for (const k of keys)
          expect(await byLot.budgetRead(k, spec.windowMs), `seed ${seed} step ${step} key ${k}`).toEqual(await byId.budgetRead(k, spec.windowMs));
      }
      await byId.close();
      await byLot.close();
    }
  });
});
