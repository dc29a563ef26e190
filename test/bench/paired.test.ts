/**
 * bench/side-by-side.mjs --targets: each target ratio from two rows serving at once on one core, B/A throughput
 * estimated as the inverse ratio of their CPU per request (bench/lib/paired.mjs).
 */

import { describe, expect, it } from 'vitest';
import { DERIVED, TARGET_PAIRS, pairEstimate, pairedMarkdown, pairedTargets, parsePairs } from '../../bench/lib/paired.mjs';
import { VARIANTS } from '../../bench/lib/variants.mjs';

describe('pairEstimate', () => {
  it('takes B/A throughput as A’s CPU per request over B’s, and the median of the slices', () => {
    // G4 costs more per request than G3: its throughput is the lower.
    const est = pairEstimate([
      { a: 50, b: 70 },
      { a: 52, b: 68 },
      { a: 49, b: 75 },
    ])!;
    expect(est.median).toBeCloseTo(50 / 70, 6);
    expect(est.low).toBeCloseTo(49 / 75, 6);
    expect(est.high).toBeCloseTo(52 / 68, 6);
    expect(est.slices).toBe(3);
  });

  it('averages the middle two of an even count, and has nothing to say of no slice', () => {
    expect(
      pairEstimate([
        { a: 1, b: 1 },
        { a: 1, b: 2 },
        { a: 3, b: 1 },
        { a: 2, b: 1 },
      ])!.median,
    ).toBeCloseTo(1.5, 6);
    expect(pairEstimate([])).toBeNull();
  });
});

describe('parsePairs', () => {
  it('reads A:B lists, the reference first, and keeps the goal of a known target pair', () => {
    const [known, other] = parsePairs('R:G0, G3:G3T');
    expect(known).toMatchObject({ a: 'R', b: 'G0', goal: 0.9 });
    expect(other).toMatchObject({ a: 'G3', b: 'G3T', name: 'G3T / G3', goal: null });
  });

  it('refuses anything that is not A:B', () => {
    expect(() => parsePairs('R-G0')).toThrow(/not A:B/);
    expect(() => parsePairs('R:G0:G3')).toThrow(/not A:B/);
  });
});

describe('pairedTargets', () => {
  it('judges each measured pair against its goal and leaves the rest unmeasured', () => {
    const rows = pairedTargets(TARGET_PAIRS, {
      'G0 / R': { median: 1.02, low: 0.98, high: 1.1, slices: 6 },
      'G4 / G3 (MCP tools/call chain; the issue’s form)': { median: 0.72, low: 0.68, high: 0.76, slices: 6 },
    });
    expect(rows.find((r) => r.name === 'G0 / R')).toMatchObject({ measured: true, pass: true });
    expect(rows.find((r) => r.name.startsWith('G4 / G3'))).toMatchObject({ measured: true, pass: false });
    expect(rows.find((r) => r.name.startsWith('G3 / F'))).toMatchObject({ measured: false, pass: null });
    // No derived row without both of its pairs.
    expect(rows.some((r) => r.derived)).toBe(false);
  });

  it('derives Warden’s MCP target from G4 / RPb and G3 / R, with the widest range their slices allow', () => {
    const [num, den] = DERIVED[0].of;
    const rows = pairedTargets(TARGET_PAIRS, {
      [num]: { median: 0.8, low: 0.76, high: 0.84, slices: 6 },
      [den]: { median: 0.9, low: 0.85, high: 0.95, slices: 6 },
    });
    const d = rows.find((r) => r.derived)!;
    expect(d.median).toBeCloseTo(0.8 / 0.9, 6);
    expect(d.low).toBeCloseTo(0.76 / 0.95, 6);
    expect(d.high).toBeCloseTo(0.84 / 0.85, 6);
    expect(d.pass).toBe(true);
  });

  it('writes a row per ratio, failures in bold', () => {
    const md = pairedMarkdown(
      pairedTargets([{ a: 'G3', b: 'G4', name: 'G4 / G3', goal: 0.85 }], { 'G4 / G3': { median: 0.7, low: 0.6, high: 0.8, slices: 2 } }),
    );
    expect(md).toContain('| G4 / G3 | ≥ 0.85 | 0.70 | 0.60–0.80 | **FAIL** |');
  });

  it('gives a third decimal to a ratio that rounds to its goal, so a fail never reads as the goal itself', () => {
    const pairs = [
      { a: 'G2', b: 'G2e1m', name: 'G2e1m / G2', goal: 0.8 },
      { a: 'G3', b: 'G3L', name: 'G3L / G3', goal: 0.9 },
    ];
    const md = pairedMarkdown(
      pairedTargets(pairs, {
        'G2e1m / G2': { median: 0.7991, low: 0.78, high: 0.86, slices: 8 },
        'G3L / G3': { median: 0.9004, low: 0.84, high: 0.92, slices: 8 },
      }),
    );
    expect(md).toContain('| G2e1m / G2 | ≥ 0.80 | 0.799 | 0.78–0.86 | **FAIL** |');
    expect(md).toContain('| G3L / G3 | ≥ 0.90 | 0.900 | 0.84–0.92 | pass |');
  });
});

describe('TARGET_PAIRS', () => {
  it('names only rows the harness has, each pair two different rows, each name once', () => {
    const ids = new Set(VARIANTS.map((v) => v.id));
    for (const p of TARGET_PAIRS) {
      expect(ids.has(p.a) && ids.has(p.b), `${p.a}:${p.b}`).toBe(true);
      expect(p.a).not.toBe(p.b);
    }
    expect(new Set(TARGET_PAIRS.map((p) => p.name)).size).toBe(TARGET_PAIRS.length);
    for (const d of DERIVED) for (const n of d.of) expect(TARGET_PAIRS.some((p) => p.name === n)).toBe(true);
  });
});
