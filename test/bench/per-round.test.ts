/**
 * Per-round ratios in the targets table (bench/lib/report.mjs): next to the ratio of two rows' medians, the
 * same ratio within each round, so a reader sees how far the host moved it.
 */

import { describe, expect, it } from 'vitest';
import { summarize, targets, type RoundSample } from '../../bench/lib/report.mjs';

const sample = (round: number, rps: number, error?: string): RoundSample => ({ round, error, wrk: { rps, latency_ms: { p50: 1, p99: 2 } } });

describe('per-round ratios', () => {
  it('keeps each valid round’s throughput, not a failed one’s', () => {
    const s = summarize({ id: 'G0', what: 'x' }, [sample(1, 900), sample(2, 800, 'wrk failed'), sample(3, 1000)]);
    expect(s.rps_by_round).toEqual({ 1: 900, 3: 1000 });
    expect(s.rps).toBe(950);
  });

  it('pairs the rows round by round, in round order, only where both were measured', () => {
    const g0 = summarize({ id: 'G0', what: 'x' }, [sample(2, 900), sample(1, 800), sample(3, 1200)]);
    const r = summarize({ id: 'R', what: 'x' }, [sample(1, 1000), sample(2, 1000), sample(3, 1000, 'refused')]);
    const row = targets({ G0: g0, R: r }).find((t) => t.name === 'G0 / R throughput')!;
    expect(row.per_round).toEqual([0.8, 0.9]);
    // The result itself stays the ratio of the medians: 900 (of 800, 900, 1,200) / 1,000.
    expect(row.value).toBeCloseTo(900 / 1000, 12);
  });
});
