/**
 * #11 like for like (bench/lib/baseline.mjs): the ratios G0/R, G3/G0 and G4/G3 of today's quiet rows and of
 * the pre-redesign build's rows (G0q@pre, G3q@pre, G4q@pre) from one run, and whether today's is within 0.05
 * of the old build's or better.
 */

import { describe, expect, it } from 'vitest';
import { BASELINE_REF, BASELINE_ROWS, baselineRatios, preId, TOLERANCE } from '../../bench/lib/baseline.mjs';

const rows = (rps: Record<string, number>) => Object.fromEntries(Object.entries(rps).map(([id, v]) => [id, { rps: v }]));

describe('baseline ratios (#11)', () => {
  it('names the commit before the redesign and its rows', () => {
    expect(BASELINE_REF).toBe('bcc2b87');
    expect(BASELINE_ROWS.map(preId)).toEqual(['G0q@pre', 'G3q@pre', 'G4q@pre']);
    expect(TOLERANCE).toBe(0.05);
  });

  it('computes each ratio for both builds from the same run, R shared', () => {
    const table = baselineRatios(rows({ R: 10_000, G0q: 9_000, G3q: 8_100, G4q: 6_075, 'G0q@pre': 9_500, 'G3q@pre': 8_550, 'G4q@pre': 5_985 }));
    expect(table.map((r) => r.name)).toEqual(['G0 / R', 'G3 / G0', 'G4 / G3']);
    expect(table.map((r) => [r.today_rows, r.pre_rows])).toEqual([
      ['G0q / R', 'G0q@pre / R'],
      ['G3q / G0q', 'G3q@pre / G0q@pre'],
      ['G4q / G3q', 'G4q@pre / G3q@pre'],
    ]);
    expect(table[0].today).toBeCloseTo(0.9, 12);
    expect(table[0].pre).toBeCloseTo(0.95, 12);
    expect(table[0].delta).toBeCloseTo(-0.05, 12);
    // Exactly 0.05 worse is still within.
    expect(table[0].pass).toBe(true);
    expect(table[1].today).toBeCloseTo(0.9, 12);
    expect(table[1].pre).toBeCloseTo(0.9, 12);
    expect(table[1].pass).toBe(true);
    // Better than before passes, however much better.
    expect(table[2].today).toBeCloseTo(0.75, 12);
    expect(table[2].pre).toBeCloseTo(0.7, 12);
    expect(table[2].delta).toBeCloseTo(0.05, 12);
    expect(table[2].pass).toBe(true);
  });

  it('fails a ratio more than 0.05 below the old build’s', () => {
    const table = baselineRatios(rows({ R: 10_000, G0q: 8_900, G3q: 8_000, G4q: 4_000, 'G0q@pre': 9_500, 'G3q@pre': 8_000, 'G4q@pre': 6_000 }));
    expect(table[0].delta).toBeCloseTo(-0.06, 12);
    expect(table[0].pass).toBe(false);
    expect(table[2].pass).toBe(false);
  });

  it('reports a ratio as not measured when a row is missing or failed', () => {
    const table = baselineRatios({ ...rows({ R: 10_000, G0q: 9_000, 'G0q@pre': 9_500, G3q: 8_000 }), 'G3q@pre': { rps: null } });
    expect(table[0].pass).toBe(true);
    expect(table[1]).toMatchObject({ today: 8_000 / 9_000, pre: null, delta: null, pass: null });
    expect(table[2]).toMatchObject({ today: null, pre: null, delta: null, pass: null });
  });
});
