/**
 * The latency rate's rule (bench/lib/latency-rate.mjs, #17 item 6): the highest rate, in steps of 100 req/s,
 * at which every calibrated row keeps its pinned core and the load core at most 60 % busy, from the open-loop
 * CPU per request of its calibration; and the --trace-gc parser behind the GC share of the tail.
 */

import { describe, expect, it } from 'vitest';
import { describeRate, latencyRate, maxRateFor, parseTraceGc, RATE_STEP, UTILISATION, utilisationAt } from '../../bench/lib/latency-rate.mjs';

describe('latency rate rule', () => {
  it('targets 60 % of a core in steps of 100 req/s', () => {
    expect(UTILISATION).toBe(0.6);
    expect(RATE_STEP).toBe(100);
    // 0.6 s of CPU per second / 200 µs = 3,000 req/s exactly; 194 µs → 3,092 → 3,000; 140 µs → 4,285 → 4,200.
    expect(maxRateFor(200)).toBe(3000);
    expect(maxRateFor(194)).toBe(3000);
    expect(maxRateFor(140)).toBe(4200);
    expect(maxRateFor(176, { utilisation: 0.7 })).toBe(3900);
    expect(maxRateFor(176, { step: 1 })).toBe(3409);
  });

  it('never returns less than one step, and nothing without a cost', () => {
    expect(maxRateFor(1e6)).toBe(100);
    expect(maxRateFor(0)).toBeNull();
    expect(maxRateFor(Number.NaN)).toBeNull();
  });

  it('the chosen rate keeps the limiting core at or under the target, and one step more would not', () => {
    for (const cpuUs of [37, 46, 69, 126, 140, 176, 194, 333, 1234]) {
      const rate = maxRateFor(cpuUs)!;
      expect(utilisationAt(rate, cpuUs)).toBeLessThanOrEqual(UTILISATION + 1e-12);
      if (rate > RATE_STEP || utilisationAt(RATE_STEP, cpuUs) <= UTILISATION) expect(utilisationAt(rate + RATE_STEP, cpuUs)).toBeGreaterThan(UTILISATION);
    }
  });

  it('takes the most expensive row and core over every calibration', () => {
    const rule = latencyRate([
      { id: 'G0', sutCpuUs: 120, loadCpuUs: 150 },
      { id: 'G3', sutCpuUs: 176, loadCpuUs: 185 },
      { id: 'G4', sutCpuUs: 194, loadCpuUs: 160 },
    ])!;
    expect(rule.rate).toBe(3000);
    expect(rule.limiting).toEqual({ id: 'G4', core: 'sut', cpuUs: 194 });
    expect(rule.rows.map((r) => [r.id, r.sutMax, r.loadMax])).toEqual([
      ['G0', 5000, 4000],
      ['G3', 3400, 3200],
      ['G4', 3000, 3700],
    ]);
    expect(describeRate(rule)).toContain('set by G4, its pinned core: 194 µs/req');
  });

  it('the load core can set the rate (the open-loop client shares it with the upstream and Redis)', () => {
    const rule = latencyRate([{ id: 'G3', sutCpuUs: 100, loadCpuUs: 250 }])!;
    expect(rule.rate).toBe(2400);
    expect(rule.limiting.core).toBe('load');
    expect(describeRate(rule)).toContain('the load core');
  });

  it('skips failed calibrations and gives up only when none is usable', () => {
    expect(latencyRate([])).toBeNull();
    expect(latencyRate([null, undefined, { id: 'G1', sutCpuUs: 0 }])).toBeNull();
    const rule = latencyRate([null, { id: 'G2', sutCpuUs: 150, loadCpuUs: null }])!;
    expect(rule.rate).toBe(4000);
    expect(rule.rows[0].loadMax).toBeNull();
  });
});

describe('--trace-gc parser', () => {
  const trace = [
    '[4242:0x5a1e2b0]       26 ms: Scavenge 3.9 (4.0) -> 3.6 (5.0) MB, 1.17 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ',
    'some log line {"level":30}',
    '[4242:0x5a1e2b0]     1031 ms: Scavenge 12.1 (20.0) -> 4.1 (20.0) MB, 0.45 / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; ',
    '[4242:0x5a1e2b0]     2040 ms: Mark-Compact 59.7 (78.7) -> 43.0 (77.7) MB, 11.56 / 0.02 ms  (average mu = 0.990, current mu = 0.980) finalize incremental marking via task; GC in old space requested',
    '[4242:0x5a1e2b0]     2500 ms: Mark-Compact (reduce) 43.0 (77.7) -> 40.0 (60.0) MB, 3.50 / 0.00 ms  (average mu = 0.990, current mu = 0.980) low memory notification',
    '[4242:0x5a1e2b0]     2600 ms: Scavenge 12.3 (20.0) -> 4.0 (20.0) MB, 2.05 / 0.00 ms  (average mu = 1.000, current mu = 1.000) task; ',
  ].join('\n');

  it('counts scavenges and full collections with their main-thread pauses', () => {
    const gc = parseTraceGc(trace);
    expect(gc.scavenge.count).toBe(3);
    expect(gc.scavenge.ms).toBeCloseTo(1.17 + 0.45 + 2.05, 9);
    expect(gc.scavenge.max).toBe(2.05);
    expect(gc.full.count).toBe(2);
    expect(gc.full.ms).toBeCloseTo(11.56 + 3.5, 9);
    expect(gc.full.max).toBe(11.56);
  });

  it('can start at an isolate time (the measured window)', () => {
    const gc = parseTraceGc(trace, { fromMs: 2000 });
    expect(gc.scavenge.count).toBe(1);
    expect(gc.full.count).toBe(2);
  });

  it('reads nothing from output without GC lines', () => {
    expect(parseTraceGc('{"level":30,"msg":"listening"}\n')).toEqual({ scavenge: { count: 0, ms: 0, max: 0 }, full: { count: 0, ms: 0, max: 0 } });
  });
});
