/**
 * The bound Node puts on G4 / G3 (bench/lib/report.mjs): with an MCP layer that cost nothing, G4 would still
 * pay all of G3's work plus what Node and undici charge for the tools/call POST over the GET (RPb − R).
 */

import { describe, expect, it } from 'vitest';
import { MCP_ANSWER, MCP_PARSE, mcpBudget, mcpCeiling, mcpFloor, mcpOwn, normalizedRounds, targets } from '../../bench/lib/report.mjs';

describe('the MCP rows against Node’s price of a POST', () => {
  it('bounds G4 / G3 by G3 / (G3 + RPb − R) in CPU per request', () => {
    // G3 80 µs, R 60, RPb 80: a free MCP layer makes G4 cost 100 µs, so G4 / G3 ≤ 0.8.
    expect(mcpCeiling(80, 80, 60)).toBeCloseTo(0.8, 12);
    expect(mcpCeiling(80, null, 60)).toBeNull();
  });

  it('states what the MCP layer itself costs', () => {
    expect(mcpOwn(130, 80, 80, 60)).toBeCloseTo(30, 12);
    expect(mcpOwn(130, 80, 80, undefined)).toBeNull();
  });

  it('states the budget G4 / G3 ≥ 0.85 leaves the MCP layer once G3 and the POST are paid', () => {
    // G3 85 µs: G4 may cost 100; R 60, RPb 70 take 10 of the 15 left: 5 µs for the MCP layer.
    expect(mcpBudget(85, 70, 60)).toBeCloseTo(5, 12);
    // A POST that costs more than the whole margin leaves a negative budget: no MCP layer can reach the goal.
    expect(mcpBudget(85, 80, 60)).toBeCloseTo(-5, 12);
    expect(mcpBudget(85, 70, 60, 0.5)).toBeCloseTo(75, 12);
    expect(mcpBudget(null, 70, 60)).toBeNull();
  });

  it('takes the MCP layer’s floor from the same run’s microbenchmarks, in µs, and only when both checks ran', () => {
    const micro = [
      { name: 'canonicalize /api/items/42', ns_per_op: 90 },
      { name: MCP_PARSE, ns_per_op: 900 },
      { name: MCP_ANSWER, ns_per_op: 1_100 },
    ];
    expect(mcpFloor(micro)).toBeCloseTo(2, 12);
    expect(mcpFloor(micro.slice(0, 2))).toBeNull();
    expect(mcpFloor([])).toBeNull();
    expect(mcpFloor(undefined)).toBeNull();
  });

  it('reports the ceiling, the MCP cost and the normalized ratio in the targets table, next to G4 / G3', () => {
    const row = (rps: number, cpu: number) => ({ rps, sut_cpu_us_per_request: cpu });
    const table = targets({ R: row(16_000, 60), RPb: row(12_000, 80), G3: row(12_000, 80), G4: row(8_000, 130) });
    const names = table.map((t) => t.name);
    const at = names.findIndex((n) => n.startsWith('G4 / G3 throughput'));
    expect(table[at].value).toBeCloseTo(8_000 / 12_000, 12);
    expect(table[at].pass).toBe(false);
    expect(table[at + 1].value).toBeCloseTo(0.8, 12);
    expect(table[at + 2].value).toBeCloseTo(30, 12);
    // (8,000 / 12,000) / (12,000 / 16,000) = 0.889: passes its 0.85.
    expect(table[at + 3].value).toBeCloseTo(8_000 / 12_000 / (12_000 / 16_000), 12);
    expect(table[at + 3].pass).toBe(true);
    // The budget: 80 / 0.85 − 80 − 20 = −5.9 µs (this POST alone exceeds the margin); no micro results, no floor.
    expect(table[at + 4].value).toBeCloseTo(80 / 0.85 - 80 - 20, 12);
    expect(table[at + 4].pass).toBe('reported');
    expect(table[at + 5].value).toBeNull();
  });

  it('sets the floor from the micro results passed with the rows', () => {
    const row = (rps: number, cpu: number) => ({ rps, sut_cpu_us_per_request: cpu });
    const micro = [
      { name: MCP_PARSE, ns_per_op: 800 },
      { name: MCP_ANSWER, ns_per_op: 1_000 },
    ];
    const table = targets({ R: row(16_000, 60), RPb: row(12_000, 80), G3: row(12_000, 80), G4: row(8_000, 130) }, micro);
    const floor = table.find((t) => t.name.startsWith('the MCP layer’s floor'))!;
    expect(floor.value).toBeCloseTo(1.8, 12);
  });

  it('gives (G4 / RPb) / (G3 / R) round by round, in round order, only where all four rows were measured', () => {
    const rows = (byRound: Record<string, number>) => ({ rps_by_round: byRound });
    const g4 = rows({ 2: 700, 1: 600, 3: 650 });
    const rpb = rows({ 1: 800, 2: 900, 3: 850 });
    const g3 = rows({ 1: 900, 2: 950, 3: 900 });
    const r = rows({ 1: 1000, 2: 1000 }); // round 3 of R failed
    const per = normalizedRounds(g4, rpb, g3, r);
    expect(per).toHaveLength(2);
    expect(per[0]).toBeCloseTo(600 / 800 / (900 / 1000), 12);
    expect(per[1]).toBeCloseTo(700 / 900 / (950 / 1000), 12);
    expect(normalizedRounds(g4, rpb, g3, undefined)).toEqual([]);
    // The targets table carries them on the like-for-like row (Warden’s MCP target).
    const row = targets({ G4: { rps: 650, ...g4 }, RPb: { rps: 850, ...rpb }, G3: { rps: 900, ...g3 }, R: { rps: 1000, ...r } }).find((t) =>
      t.name.startsWith('(G4 / RPb) / (G3 / R)'),
    )!;
    expect(row.per_round).toEqual(per);
  });
});
