/**
 * The bound Node puts on G4 / G3 (bench/lib/report.mjs): with an MCP layer that cost nothing, G4 would still
 * pay all of G3's work plus what Node and undici charge for the tools/call POST over the GET (RPb − R).
 */

import { describe, expect, it } from 'vitest';
import { mcpCeiling, mcpOwn, targets } from '../../bench/lib/report.mjs';

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

  it('reports the ceiling, the MCP cost and the normalized ratio in the targets table, next to G4 / G3', () => {
    const row = (rps: number, cpu: number) => ({ rps, sut_cpu_us_per_request: cpu });
    const table = targets({ R: row(16_000, 60), RPb: row(12_000, 80), G3: row(12_000, 80), G4: row(8_000, 130) });
    const names = table.map((t) => t.name);
    const at = names.findIndex((n) => n.startsWith('G4 / G3 throughput'));
    expect(table[at].value).toBeCloseTo(8_000 / 12_000, 12);
    expect(table[at].pass).toBe(false);
    expect(table[at + 1].value).toBeCloseTo(0.8, 12);
    expect(table[at + 2].value).toBeCloseTo(30, 12);
    // (8,000 / 12,000) / (12,000 / 16,000) = 0.889: passes the proposed 0.85.
    expect(table[at + 3].value).toBeCloseTo(8_000 / 12_000 / (12_000 / 16_000), 12);
    expect(table[at + 3].pass).toBe(true);
  });
});
