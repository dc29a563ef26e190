/**
 * Paired targets: each of #17's throughput ratios measured with both rows
 * serving at once on the same pinned core (bench/side-by-side.mjs --targets),
 * instead of one after the other (bench/run.mjs). A row pinned to its core and
 * saturated by wrk serves 1 / (its CPU per request), so the ratio of two rows'
 * throughput alone is the inverse ratio of their CPU per request, and that
 * ratio, measured in the same seconds, does not move when the host's speed
 * does: a busy neighbour slows both sides of a slice alike. On a host whose
 * drift fails run.mjs's host check, these are the ratios that still mean
 * something; they are an estimate of the same targets, not a replacement for a
 * full run on a quiet host (two processes sharing a core also share its caches
 * and its scheduler's slices, which a row alone does not).
 */

import { median } from './stats.mjs';

/**
 * One pair: `a` is the reference (the ratio's denominator), `b` the row
 * compared with it; `goal` is the least B/A throughput #17 (or the issue
 * named in `issue`) asks for, null where the ratio is only reported.
 */
export const TARGET_PAIRS = [
  { a: 'R', b: 'G0', name: 'G0 / R', goal: 0.9 },
  { a: 'G0', b: 'G3', name: 'G3 / G0 (policy chain cost)', goal: 0.85 },
  { a: 'F', b: 'G3', name: 'G3 / F', goal: 1.3 },
  { a: 'G3', b: 'G4', name: 'G4 / G3 (MCP tools/call chain; the issue’s form)', goal: 0.85 },
  { a: 'R', b: 'G3', name: 'G3 / R (the REST chain against Node on its GET)', goal: null },
  { a: 'RPb', b: 'G4', name: 'G4 / RPb (the MCP chain against Node on its POST)', goal: null },
  { a: 'G0-2k1', b: 'G0-2kN', name: 'G0-2kN / G0-2k1 (last of 2,000 routes vs first)', goal: 0.95 },
  { a: 'G2', b: 'G2e1m', name: 'G2e1m / G2 (1M tuples, a miss per request)', goal: 0.8 },
  { a: 'G3', b: 'G3L', name: 'G3L / G3 (rate limit + budget on Redis)', goal: 0.9, issue: 'limits' },
  { a: 'G3', b: 'G3D', name: 'G3D / G3 (decision log on)', goal: 0.9, issue: 'decision log' },
  { a: 'G3m0', b: 'G3', name: 'G3 / G3m0 (metrics on vs off)', goal: 0.97, issue: 'observability' },
  { a: 'G3', b: 'G5', name: 'G5 / G3 (identity assertion)', goal: 0.9, issue: 'assertion' },
];

/** Ratios derived from two measured pairs: Warden's MCP target, G4 / G3 without Node's price of the POST. */
const nameOf = (a, b) => TARGET_PAIRS.find((p) => p.a === a && p.b === b).name;
export const DERIVED = [{ name: '(G4 / RPb) / (G3 / R): Warden’s MCP target', of: [nameOf('RPb', 'G4'), nameOf('R', 'G3')], goal: 0.85 }];

/** `"R:G0,G0:G3"` → [{ a: 'R', b: 'G0' }, …]; throws on anything else. */
export function parsePairs(text) {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const m = /^([^:\s]+):([^:\s]+)$/.exec(s);
      if (!m) throw new Error(`--pairs: "${s}" is not A:B (two row ids, the reference first)`);
      const known = TARGET_PAIRS.find((p) => p.a === m[1] && p.b === m[2]);
      return known ?? { a: m[1], b: m[2], name: `${m[2]} / ${m[1]}`, goal: null };
    });
}

/**
 * One pair's slices → its estimate. Each slice is { a, b } with each side's CPU µs per request; B/A throughput
 * of a slice is a / b. The estimate is the median over the slices; `low` and `high` their range.
 */
export function pairEstimate(slices) {
  if (slices.length === 0) return null;
  const ratios = slices.map((s) => s.a / s.b);
  return { median: median(ratios), low: Math.min(...ratios), high: Math.max(...ratios), slices: ratios.length };
}

/**
 * The table: measured pairs (in `results`, by name: { median, low, high }) against their goals, then the derived
 * ratios whose two pairs were both measured. `pass` is null where there is no goal.
 */
export function pairedTargets(pairs, results) {
  const rows = pairs.map((p) => {
    const r = results[p.name] ?? null;
    return { name: p.name, goal: p.goal, issue: p.issue ?? null, ...(r ?? {}), measured: r !== null, pass: r && p.goal !== null ? r.median >= p.goal : null };
  });
  for (const d of DERIVED) {
    const [x, y] = d.of.map((n) => results[n]);
    if (!x || !y) continue;
    // The range of a quotient: its lowest is the lowest numerator over the highest denominator.
    const median = x.median / y.median;
    rows.push({
      name: d.name,
      goal: d.goal,
      issue: null,
      median,
      low: x.low / y.high,
      high: x.high / y.low,
      measured: true,
      pass: median >= d.goal,
      derived: true,
    });
  }
  return rows;
}

/** Markdown of pairedTargets(). */
export function pairedMarkdown(rows, { header = '' } = {}) {
  const f = (x) => (typeof x === 'number' ? x.toFixed(2) : '–');
  // A ratio that rounds to its goal gets a third decimal, so that "0.80" never reads as a fail of ≥ 0.80.
  const measured = (r) => (typeof r.median === 'number' && r.goal !== null && r.median.toFixed(2) === r.goal.toFixed(2) ? r.median.toFixed(3) : f(r.median));
  const lines = [header, '| ratio (B / A throughput) | goal | measured (median of slices) | slices, lowest–highest | result |', '|---|---|---:|---|---|'];
  for (const r of rows) {
    const goal = r.goal === null ? 'reported' : `≥ ${r.goal.toFixed(2)}${r.issue ? ` (${r.issue})` : ''}`;
    const result = !r.measured ? 'not measured' : r.pass === null ? 'reported' : r.pass ? 'pass' : '**FAIL**';
    lines.push(`| ${r.name} | ${goal} | ${measured(r)} | ${r.measured ? `${f(r.low)}–${f(r.high)}` : ''} | ${result} |`);
  }
  return lines.filter((l) => l !== '').join('\n') + '\n';
}
