/**
 * The harness's host check (bench/lib/report.mjs hostCheck): a row that does
 * everything another does and more is never the faster on a steady host, so a
 * pair out of order, in the medians or in any one round, marks the run's
 * ratios as the host's as much as Warden's.
 */

import { describe, expect, it } from 'vitest';
import { HOST_TOLERANCE, hostCheck, markdown, ORDERED_PAIRS, roundOutOfOrder, summarize } from '../../bench/lib/report.mjs';
import { TARGET_PAIRS, pairedTargets } from '../../bench/lib/paired.mjs';

/** A summarized row: its median and its throughput per round. */
const row = (...rounds: number[]) => ({
  rps: [...rounds].sort((a, b) => a - b)[Math.floor(rounds.length / 2)],
  rps_by_round: Object.fromEntries(rounds.map((v, i) => [String(i + 1), v])),
});

/** The row as the harness summarizes it from its rounds (what markdown reads). */
const summarized = (id: string, ...rounds: number[]) =>
  summarize(
    { id, what: id },
    rounds.map((rps, i) => ({ round: i + 1, wrk: { rps, latency_ms: { p50: 1, p99: 2 } } })),
  );

/** A run's result whose one pair is out of order in its third round (G1 26 % ahead of G0), as markdown reads it. */
const unsteadyRun = () => ({
  meta: { finished_at: 'now', cpus: 2, node: 'v20', nginx: 'nginx', wrk: 'wrk', rounds: 3, duration_s: 7, connections: 32, warmup_s: 2 },
  variants: [summarized('G0', 1000, 1000, 700), summarized('G1', 840, 940, 880)],
  host_check: hostCheck({ G0: row(1000, 1000, 700), G1: row(840, 940, 880) }),
  targets: [],
  ratios: [],
  micro: [],
});

describe('host check', () => {
  it('passes a run whose heavier rows are slower than their lighter pairs in every round', () => {
    const check = hostCheck({ R: row(1000, 1010, 990), RPb: row(850, 860, 845), G0: row(1000, 990, 1005), G1: row(940, 950, 930) });
    expect(check.pairs.map((p) => `${p.heavier}/${p.lighter}`)).toEqual(['G1/G0', 'RPb/R']);
    expect(check.pairs.every((p) => p.in_order)).toBe(true);
    expect(check.steady).toBe(true);
    expect(check.out_of_order).toBe(0);
    expect(check.r_spread).toBeCloseTo(1010 / 990 - 1, 12);
  });

  it('fails a run where one round put a heavier row ahead, though the medians are in order', () => {
    // Medians 940 / 1000 are in order; round 3 has G1 26 % faster than G0 (a host that moved between the two rows).
    const check = hostCheck({ G0: row(1000, 1000, 700), G1: row(840, 940, 880) });
    expect(check.pairs[0].value).toBeCloseTo(880 / 1000, 12);
    expect(check.pairs[0].per_round.map((v) => Number(v.toFixed(2)))).toEqual([0.84, 0.94, 1.26]);
    expect(check.pairs[0].in_order).toBe(false);
    expect(check.steady).toBe(false);
    expect(check.out_of_order).toBe(1);
  });

  it('allows a heavier row up to the tolerance ahead, not beyond it', () => {
    const within = 1 + HOST_TOLERANCE - 0.001;
    const beyond = 1 + HOST_TOLERANCE + 0.001;
    expect(hostCheck({ G3: row(1000 * within), G3q: row(1000) }).steady).toBe(true);
    expect(hostCheck({ G3: row(1000 * beyond), G3q: row(1000) }).steady).toBe(false);
  });

  it('checks only pairs both measured, and calls a run with none not steady (nothing was checked)', () => {
    const check = hostCheck({ R: row(1000), G0: row(990) });
    expect(check.pairs).toEqual([]);
    expect(check.steady).toBe(false);
    expect(check.r_spread).toBeNull();
  });

  it('pairs only rows that add work to the row they are compared with', () => {
    // Each heavier row is the lighter one plus something: never the same row twice, never a self-pair.
    for (const [heavier, lighter, adds] of ORDERED_PAIRS) {
      expect(heavier).not.toBe(lighter);
      expect(adds.length).toBeGreaterThan(0);
    }
    expect(new Set(ORDERED_PAIRS.map(([h, l]) => `${h}/${l}`)).size).toBe(ORDERED_PAIRS.length);
  });

  it('says so in the report, above the targets, when the run is not steady', () => {
    const result = unsteadyRun();
    const md = markdown(result);
    expect(md).toContain('**Not steady:** 1 of 1 pairs out of order');
    expect(md).toContain('| G1 | G0 | JWT verification | 0.88 | 0.84, 0.94, 1.26 | **no** |');
    expect(md.indexOf('## Host check')).toBeLessThan(md.indexOf('## Targets'));
    expect(md).toContain('**This run failed its host check (above):**');
    const steady = markdown({ ...result, host_check: hostCheck({ G0: row(1000), G1: row(900) }) });
    expect(steady).toContain('**Steady:** all 1 pairs in order.');
    expect(steady).not.toContain('failed its host check');
  });

  it('points an unsteady run to its paired targets when it measured them, and lists what it could not', () => {
    const pairs = [TARGET_PAIRS[0], TARGET_PAIRS[1]];
    const paired = {
      why: 'the rounds failed their host check',
      seconds: 300,
      starts: 4,
      slices: 8,
      sliceS: 8,
      connections: 16,
      node_flags: '--min-semi-space-size=8',
      pairs: [
        { ...pairs[0], slices: [], estimate: { median: 0.97, low: 0.95, high: 0.99, slices: 8 } },
        { ...pairs[1], slices: [], estimate: null, error: 'side B (G3) answered 500' },
      ],
      table: pairedTargets(pairs, { [pairs[0].name]: { median: 0.97, low: 0.95, high: 0.99, slices: 8 }, [pairs[1].name]: null }),
    };
    const result = { ...unsteadyRun(), paired };
    const md = markdown(result);
    expect(md).toContain('read the targets from “Targets, paired” below');
    expect(md.indexOf('## Targets (issue 7)')).toBeLessThan(md.indexOf('## Targets, paired'));
    expect(md).toContain('Measured because the rounds failed their host check, after the rounds (5 min):');
    expect(md).toContain('The throughput targets measured paired follow in “Targets, paired”.');
    expect(md).toContain('| G0 / R | ≥ 0.90 | 0.97 | 0.95–0.99 | pass |');
    expect(md).toContain('| G3 / G0 (policy chain cost) | ≥ 0.85 | – |  | not measured |');
    expect(md).toContain('Not measured: G3 / G0 (policy chain cost): side B (G3) answered 500.');
    // Without the paired phase, the same unsteady run points to the tools that measure them.
    const alone = markdown({ ...result, paired: null });
    expect(alone).not.toContain('## Targets, paired');
    expect(alone).toContain('`node bench/side-by-side.mjs --targets`, or a full run with `--paired always`');
  });
});

describe('one round out of order', () => {
  it('names the pairs whose heavier row ran ahead of its lighter one beyond the tolerance, in that round alone', () => {
    // From the first rounds of two runs on a busy host: G1 1.25x G0, G3L 1.10x G3; G2/G1 and G3/G2 in order; G4 not measured.
    const out = roundOutOfOrder({ G0: 14117, G1: 17626, G2: 13421, G3: 12173, G3L: 13345 });
    expect(out.map((p) => `${p.heavier}/${p.lighter}`)).toEqual(['G1/G0', 'G3L/G3']);
    expect(out[0].value).toBeCloseTo(17626 / 14117, 12);
    expect(out[0].adds).toBe('JWT verification');
    expect(roundOutOfOrder({ G0: 1000, G1: 1000 * (1 + HOST_TOLERANCE) })).toEqual([]);
  });

  it('agrees with the run’s host check: a round it flags fails the check', () => {
    const rounds = [
      { G0: 1000, G1: 940 },
      { G0: 700, G1: 880 },
    ];
    expect(roundOutOfOrder(rounds[0])).toEqual([]);
    expect(roundOutOfOrder(rounds[1])).toHaveLength(1);
    expect(hostCheck({ G0: row(1000, 700), G1: row(940, 880) }).steady).toBe(false);
  });
});
