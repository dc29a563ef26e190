/**
 * Turns round samples into the result: medians per variant, ratios, the
 * issue's targets with pass/fail, and the markdown table for the README.
 */

import { median } from './stats.mjs';
import { pairedMarkdown } from './paired.mjs';

/** Median of each measure over the valid rounds of one variant. */
export function summarize(variant, samples) {
  const ok = samples.filter((s) => !s.error);
  // Latency is measured once per row (after the throughput rounds), so only one sample carries it.
  const timed = ok.filter((s) => s.latency);
  const lat = (k) => median(timed.map((s) => s.latency.latency_ms?.[k]));
  return {
    id: variant.id,
    what: variant.what,
    pinned: variant.pinned !== false,
    rounds: samples.length,
    valid_rounds: ok.length,
    errors: samples.filter((s) => s.error).map((s) => s.error),
    rps: median(ok.map((s) => s.wrk.rps)),
    rps_samples: ok.map((s) => Math.round(s.wrk.rps)),
    // Throughput per numbered round (the latency round is not one): ratios of rows per round pair rows measured minutes apart, not runs apart.
    rps_by_round: Object.fromEntries(ok.filter((s) => typeof s.round === 'number').map((s) => [s.round, s.wrk.rps])),
    // The seconds of load each round's warm-up took to reach a steady rate, and the rounds whose rate still rose at the cap.
    warmup_s: ok.filter((s) => s.warmup?.steady !== undefined && s.warmup?.steady !== null).map((s) => s.warmup.seconds),
    warmup_still_rising: ok.filter((s) => s.warmup?.steady === false).length,
    wrk_p50_ms: median(ok.map((s) => s.wrk.latency_ms.p50)),
    wrk_p99_ms: median(ok.map((s) => s.wrk.latency_ms.p99)),
    latency: timed.length
      ? {
          p50: lat('p50'),
          p90: lat('p90'),
          p99: lat('p99'),
          p999: lat('p999'),
          achieved_rate: median(timed.map((s) => s.latency.achieved_rate)),
          non2xx: timed.reduce((a, s) => a + (s.latency.non2xx ?? 0) + (s.latency.errors ?? 0), 0),
          // The row could not keep up with the fixed rate: its percentiles measure a queue, not the proxy.
          overloaded: timed.some((s) => s.latency.achieved_rate < 0.95 * s.latency.requested_rate),
        }
      : null,
    // What the tail is made of at the fixed rate (run.mjs measureLatency): core utilisations, run-queue wait, client lag, GC.
    tail: timed.find((s) => s.tail)?.tail ?? null,
    // The latency rate's open-loop calibration of this row (run.mjs calibrate), when it was calibrated.
    calibration: ok.find((s) => s.calibration)?.calibration ?? null,
    upstream_connections: median(ok.map((s) => s.upstream?.connections)),
    sut_cpu_us_per_request: median(ok.map((s) => s.cpu_us_per_request?.sut)),
    redis_cpu_us_per_request: median(ok.map((s) => s.cpu_us_per_request?.redis ?? undefined)),
    openfga_cpu_us_per_request: median(ok.map((s) => s.cpu_us_per_request?.openfga ?? undefined)),
    sut_cpu_us_per_request_fixed: median(ok.map((s) => s.cpu_us_per_request_fixed?.sut)),
    redis_cpu_us_per_request_fixed: median(ok.map((s) => s.cpu_us_per_request_fixed?.redis ?? undefined)),
    redis_commands_per_request: median(ok.map((s) => s.redis_per_request?.commands)),
    redis_scripts_per_request: median(ok.map((s) => s.redis_per_request?.scripts)),
    peak_rss_mb: ok.length ? Math.max(...ok.map((s) => s.rss_bytes)) / 2 ** 20 : null,
    serving_peak_rss_mb: ok.some((s) => s.serving_rss_bytes) ? Math.max(...ok.map((s) => s.serving_rss_bytes ?? 0)) / 2 ** 20 : null,
    relay_peak_rss_mb: ok.some((s) => s.relay_rss_bytes) ? Math.max(...ok.map((s) => s.relay_rss_bytes ?? 0)) / 2 ** 20 : null,
    relay_own_rss_mb: ok.some((s) => s.relay_own_rss_bytes) ? Math.max(...ok.map((s) => s.relay_own_rss_bytes ?? 0)) / 2 ** 20 : null,
    warmup_peak_rss_mb: ok.some((s) => s.warmup_rss_bytes) ? Math.max(...ok.map((s) => s.warmup_rss_bytes ?? 0)) / 2 ** 20 : null,
    // Spawn → first healthz answer (start-up, config, policies).
    load_s: ok.some((s) => s.load_ms) ? median(ok.map((s) => s.load_ms)) / 1000 : null,
  };
}

/** Serving process peak plus the relay's own (anonymous) pages: memory the machine spends, the shared Node binary counted once. */
function memoryOnce(v) {
  if (!v || v.serving_peak_rss_mb === null || v.serving_peak_rss_mb === undefined) return v?.peak_rss_mb ?? null;
  return v.serving_peak_rss_mb + (v.relay_own_rss_mb ?? 0);
}

const ratio = (a, b) => (a && b ? a / b : null);
const diff = (a, b) => (a !== null && a !== undefined && b !== null && b !== undefined ? a - b : null);

/**
 * What G4 / G3 would be if Warden's MCP layer cost nothing: G4 still pays all
 * of G3's work plus what Node and undici charge for its POST over the GET
 * (RPb − R, the cheapest way Node forwards it), in CPU per request.
 */
export function mcpCeiling(g3, rpb, r) {
  return g3 && rpb && r ? g3 / (g3 + rpb - r) : null;
}

/** What Warden's MCP layer itself costs per tools/call: G4 − G3 − (RPb − R), CPU µs per request. */
export function mcpOwn(g4, g3, rpb, r) {
  return g4 && g3 && rpb && r ? g4 - g3 - (rpb - r) : null;
}

/**
 * What Warden's MCP layer may cost per tools/call for G4 / G3 to reach `goal`:
 * G4 may cost G3 / goal, of which G3's work and Node's price of the POST
 * (RPb − R) are spent before the layer does anything. CPU µs per request.
 */
export function mcpBudget(g3, rpb, r, goal = 0.85) {
  return g3 && rpb && r ? g3 / goal - g3 - (rpb - r) : null;
}

/** Names of the micro.mjs cases that time the checks every tools/call needs (G4's body and answer). */
export const MCP_PARSE = 'MCP tools/call: strict JSON parse of G4’s body';
export const MCP_ANSWER = 'MCP tools/call: may G4’s answer pass unchanged (scan + UTF-8)';

/** The MCP layer's floor from micro.mjs's results: those two checks, hot, in µs (null unless both ran). */
export function mcpFloor(micro) {
  const ns = (name) => micro?.find((m) => m.name === name)?.ns_per_op ?? null;
  const parse = ns(MCP_PARSE),
    answer = ns(MCP_ANSWER);
  return parse !== null && answer !== null ? (parse + answer) / 1000 : null;
}

/**
 * One line on the warm-ups of the run: each row's seconds of load before its
 * rate stopped rising (range over rounds), and the rows whose rate still rose
 * at --warmup-max (their numbers include part of the climb). Null when the
 * warm-ups were fixed (no judgement made).
 */
export function warmupLine(variants) {
  const rows = variants.filter((v) => v.warmup_s?.length || v.warmup_still_rising);
  if (!rows.length) return null;
  const range = (list) => (list.length ? (Math.min(...list) === Math.max(...list) ? `${list[0]}` : `${Math.min(...list)}–${Math.max(...list)}`) : '–');
  const rising = rows.filter((v) => v.warmup_still_rising);
  return (
    `Warm-up (seconds of load until the rate stopped rising; V8 optimizing the hot code): ${rows.map((v) => `${v.id} ${range(v.warmup_s)}`).join(', ')}. ` +
    (rising.length
      ? `**Still rising at the cap** in some round: ${rising.map((v) => `${v.id} (${v.warmup_still_rising})`).join(', ')}; those rounds include part of the climb.`
      : 'Every row settled before the cap.')
  );
}

/** Ratios and the targets of issue 7 (`micro`: micro.mjs's results of the same run, for the MCP layer's floor). */
export function targets(byId, micro = []) {
  const g = (id) => byId[id];
  const rps = (id) => g(id)?.rps ?? null;
  const lat = (id, k) => g(id)?.latency?.[k] ?? null;
  const cpu = (id) => g(id)?.sut_cpu_us_per_request ?? null;
  const rounds = (a, b) => roundRatios(g(a), g(b));
  const rows = [
    { name: 'G0 / R throughput', value: ratio(rps('G0'), rps('R')), perRound: rounds('G0', 'R'), target: '≥ 0.90', pass: (v) => v >= 0.9 },
    {
      name: 'G3 / G0 throughput (policy chain cost)',
      value: ratio(rps('G3'), rps('G0')),
      perRound: rounds('G3', 'G0'),
      target: '≥ 0.85',
      pass: (v) => v >= 0.85,
    },
    { name: 'G3 / F throughput', value: ratio(rps('G3'), rps('F')), perRound: rounds('G3', 'F'), target: '≥ 1.30', pass: (v) => v >= 1.3 },
    {
      name: 'G4 / G3 throughput (MCP tools/call chain; the issue’s form, which Node’s price of the POST bounds: see the next row)',
      value: ratio(rps('G4'), rps('G3')),
      perRound: rounds('G4', 'G3'),
      target: '≥ 0.85 (#17 as written)',
      pass: (v) => v >= 0.85,
    },
    {
      name: 'G4 / G3 with an MCP layer that cost nothing: G3 / (G3 + RPb − R), CPU µs/req (Node’s own price of the POST bounds G4 / G3)',
      value: mcpCeiling(cpu('G3'), cpu('RPb'), cpu('R')),
      target: 'reported',
      pass: () => 'reported',
    },
    {
      name: 'Warden’s MCP layer on a tools/call: G4 − G3 − (RPb − R), CPU µs/req',
      value: mcpOwn(cpu('G4'), cpu('G3'), cpu('RPb'), cpu('R')),
      target: 'reported',
      pass: () => 'reported',
    },
    {
      name: '(G4 / RPb) / (G3 / R): the MCP chain against Node on its request, over the REST chain against Node on its own (G4 / G3 without the POST’s price)',
      value: ratio(ratio(rps('G4'), rps('RPb')), ratio(rps('G3'), rps('R'))),
      perRound: normalizedRounds(g('G4'), g('RPb'), g('G3'), g('R')),
      target: '≥ 0.85 (Warden’s MCP target)',
      pass: (v) => v >= 0.85,
    },
    {
      name: 'the MCP layer’s budget for G4 / G3 ≥ 0.85: G3 / 0.85 − G3 − (RPb − R), CPU µs/req',
      value: mcpBudget(cpu('G3'), cpu('RPb'), cpu('R')),
      target: 'reported',
      pass: () => 'reported',
    },
    {
      name: 'the MCP layer’s floor: the strict parse of G4’s body + the check of its answer, hot loop (micro.mjs), µs',
      value: mcpFloor(micro),
      target: 'reported',
      pass: () => 'reported',
    },
    { name: 'added latency G3 − D, p50 (ms)', value: diff(lat('G3', 'p50'), lat('D', 'p50')), target: '≤ 0.5 ms', pass: (v) => v <= 0.5 },
    { name: 'added latency G3 − D, p99 (ms)', value: diff(lat('G3', 'p99'), lat('D', 'p99')), target: '≤ 2 ms', pass: (v) => v <= 2 },
    {
      name: 'G0-2kN / G0-2k1 throughput (last of 2,000 routes vs first)',
      value: ratio(rps('G0-2kN'), rps('G0-2k1')),
      perRound: rounds('G0-2kN', 'G0-2k1'),
      target: '≥ 0.95',
      pass: (v) => v >= 0.95,
    },
    {
      name: 'G2m / F0 throughput (Warden in front of OpenFGA, a cache miss per request)',
      value: ratio(rps('G2m'), rps('F0')),
      perRound: rounds('G2m', 'F0'),
      target: '≥ 0.80',
      pass: (v) => v >= 0.8,
    },
    {
      name: 'G3L / G3 throughput (rate limit + budget on Redis)',
      value: ratio(rps('G3L'), rps('G3')),
      perRound: rounds('G3L', 'G3'),
      target: '≥ 0.90',
      pass: (v) => v >= 0.9,
    },
    {
      name: 'G3D / G3 throughput (decision log on: file, chain, checkpoints)',
      value: ratio(rps('G3D'), rps('G3')),
      perRound: rounds('G3D', 'G3'),
      target: '≥ 0.90',
      pass: (v) => v >= 0.9,
    },
    {
      name: 'G3 / G3m0 throughput (metrics on vs off, tracing off: the off-path cost of observability)',
      value: ratio(rps('G3'), rps('G3m0')),
      perRound: rounds('G3', 'G3m0'),
      target: '≥ 0.97',
      pass: (v) => v >= 0.97,
    },
    {
      name: 'G3T / G3 throughput (traces on at sampling 0.01: what they cost)',
      value: ratio(rps('G3T'), rps('G3')),
      perRound: rounds('G3T', 'G3'),
      target: 'reported',
      pass: () => 'reported',
    },
    {
      name: 'G5 / G3 throughput (identity assertion on every request)',
      value: ratio(rps('G5'), rps('G3')),
      perRound: rounds('G5', 'G3'),
      target: '≥ 0.90',
      pass: (v) => v >= 0.9,
    },
    { name: 'peak RSS of G3 under load (MB; every process, VmHWM summed)', value: g('G3')?.peak_rss_mb ?? null, target: '≤ 120 MB', pass: (v) => v <= 120 },
    {
      name: "peak RSS of G3 under load (MB; the Node binary's shared pages once: serving + the relay's own)",
      value: memoryOnce(g('G3')),
      target: '≤ 120 MB',
      pass: (v) => v <= 120,
    },
    { name: 'G2e1m load time, 1M tuples (s, spawn → healthz)', value: g('G2e1m')?.load_s ?? null, target: '≤ 10 s', pass: (v) => v <= 10 },
    {
      name: 'G2e1m peak RSS, 1M tuples (MB, start-up and warm-up)',
      value: g('G2e1m') ? Math.max(g('G2e1m').warmup_peak_rss_mb ?? 0, g('G2e1m').peak_rss_mb ?? 0) : null,
      target: '≤ 600 MB',
      pass: (v) => v <= 600,
    },
    {
      name: 'G2e1m / G2 throughput (1M tuples, a miss per request)',
      value: ratio(rps('G2e1m'), rps('G2')),
      perRound: rounds('G2e1m', 'G2'),
      target: '≥ 0.80',
      pass: (v) => v >= 0.8,
    },
  ];
  return rows.map((r) => ({
    name: r.name,
    target: r.target,
    value: r.value,
    per_round: r.perRound ?? [],
    pass: r.value === null ? null : r.pass(r.value),
  }));
}

/**
 * The committed run before the architecture redesign (#11: ratios must stay
 * within 0.05 of it): bench/results/latest.* of 2026-11-28T13:47Z, 3 rounds.
 * Its Warden rows ran at log level warn with the semi-space flags given on the
 * command line (no relay parent), R and F without them; the like-for-like rows
 * today are the quiet ones (G0q, G3q, G4q: WARDEN_LOG_LEVEL=warn).
 */
export const BEFORE_REDESIGN = {
  run: '2026-11-28T13:47:12Z',
  ratios: [
    { name: 'G0 / R', now: ['G0q', 'R'], then: 1.047 },
    { name: 'G3 / G0', now: ['G3q', 'G0q'], then: 0.941 },
    { name: 'G4 / G3', now: ['G4q', 'G3q'], then: 0.694 },
  ],
};

/** #11: today's quiet-row ratios next to the committed run's; each must be within 0.05 of it. */
export function beforeRedesign(byId) {
  const rps = (id) => byId[id]?.rps ?? null;
  return BEFORE_REDESIGN.ratios.map((r) => {
    const value = ratio(rps(r.now[0]), rps(r.now[1]));
    return { name: r.name, rows: `${r.now[0]} / ${r.now[1]}`, then: r.then, value, pass: value === null ? null : Math.abs(value - r.then) <= 0.05 };
  });
}

/** `combine` of the rows' throughputs in each round all of them were measured in, in round order. */
function perRound(rows, combine) {
  const byRound = rows.map((row) => row?.rps_by_round);
  if (byRound.some((r) => !r)) return [];
  return Object.keys(byRound[0])
    .filter((round) => byRound.every((r) => r[round]))
    .sort((x, y) => Number(x) - Number(y))
    .map((round) => combine(...byRound.map((r) => r[round])));
}

/** Throughput ratio a / b in each round both rows were measured in, in round order. */
function roundRatios(a, b) {
  return perRound([a, b], (x, y) => x / y);
}

/** (a / b) / (c / d) in each round all four rows were measured in, in round order. */
export function normalizedRounds(a, b, c, d) {
  return perRound([a, b, c, d], (w, x, y, z) => w / x / (y / z));
}

/**
 * Rows that do everything another row does and more, on the same request or a
 * costlier one: [heavier, lighter, what the heavier adds]. On a steady host
 * the heavier row is never the faster.
 */
export const ORDERED_PAIRS = [
  ['G1', 'G0', 'JWT verification'],
  ['G1u', 'G1', 'a signature check on every request'],
  ['G2', 'G1', 'one authorization check'],
  ['G3', 'G2', 'the vault credential swap'],
  ['G4', 'G3', 'the MCP tools/call (a POST, parsed and checked)'],
  ['RPb', 'R', 'the tools/call POST and its body'],
  ['G0', 'G0q', 'the audit line'],
  ['G3', 'G3q', 'the audit line'],
  ['G4', 'G4q', 'the audit line'],
  ['G3', 'G3m0', 'metrics'],
  ['G3L', 'G3', 'rate limit and budget'],
  ['G3D', 'G3', 'the decision log'],
  ['G3T', 'G3', 'traces'],
  ['G5', 'G3', 'the identity assertion'],
];

/** How much faster than its lighter pair a heavier row may measure before the host, not the work, is taken to explain it. */
export const HOST_TOLERANCE = 0.05;

/**
 * Whether the host held still enough for this run's ratios to mean what they
 * say: every pair of ORDERED_PAIRS both measured must be in order (heavier /
 * lighter ≤ 1 + tolerance) in the medians and in every round. A pair out of
 * order shows the host moved throughput more than the difference in work
 * between the two rows; the targets of such a run measure the host as much as
 * Warden. Also reports R's spread across rounds (max / min − 1).
 */
export function hostCheck(byId, tolerance = HOST_TOLERANCE) {
  const pairs = [];
  for (const [heavier, lighter, adds] of ORDERED_PAIRS) {
    const a = byId[heavier],
      b = byId[lighter];
    if (!a?.rps || !b?.rps) continue;
    const value = a.rps / b.rps;
    const perRound = roundRatios(a, b);
    pairs.push({ heavier, lighter, adds, value, per_round: perRound, in_order: Math.max(value, ...perRound) <= 1 + tolerance });
  }
  const r = byId.R?.rps_by_round ? Object.values(byId.R.rps_by_round) : [];
  return {
    tolerance,
    pairs,
    out_of_order: pairs.filter((p) => !p.in_order).length,
    r_spread: r.length > 1 ? Math.max(...r) / Math.min(...r) - 1 : null,
    steady: pairs.length > 0 && pairs.every((p) => p.in_order),
  };
}

/**
 * The pairs of ORDERED_PAIRS out of order in one round (`rpsById`: each row's
 * req/s in that round): [{ heavier, lighter, adds, value }]. Any one makes
 * the run's host check fail whatever the other rounds measure, so the harness
 * says so as soon as the round ends (and stops there with --stop-unsteady).
 */
export function roundOutOfOrder(rpsById, tolerance = HOST_TOLERANCE) {
  // hostCheck of the round alone: each row's median and its one round are the round's req/s.
  const rows = {};
  for (const id in rpsById) if (rpsById[id]) rows[id] = { rps: rpsById[id], rps_by_round: { 1: rpsById[id] } };
  return hostCheck(rows, tolerance)
    .pairs.filter((p) => !p.in_order)
    .map(({ heavier, lighter, adds, value }) => ({ heavier, lighter, adds, value }));
}

/** Other ratios worth reading (not targets). */
export function ratios(byId) {
  const rps = (id) => byId[id]?.rps ?? null;
  const pairs = [
    ['R / N', 'R', 'N'],
    ['F / N', 'F', 'N'],
    ['G0 / N', 'G0', 'N'],
    ['G1 / G0 (JWT, cached)', 'G1', 'G0'],
    ['G1u / G1 (no token cache)', 'G1u', 'G1'],
    ['G2 / G1 (embedded check)', 'G2', 'G1'],
    ['G2e1m / G2 (embedded, 1M tuples, a miss per request)', 'G2e1m', 'G2'],
    ['G2o / G2 (OpenFGA, no decision cache)', 'G2o', 'G2'],
    ['G2oc / G2 (OpenFGA, decision cache)', 'G2oc', 'G2'],
    ['G2m / G2oc (OpenFGA: a different object per request vs one object)', 'G2m', 'G2oc'],
    ['G3 / G2 (vault on Redis)', 'G3', 'G2'],
    ['G0q / G0 (log level warn vs the default info)', 'G0q', 'G0'],
    ['G3q / G3 (log level warn vs the default info)', 'G3q', 'G3'],
    ['G4q / G4 (log level warn vs the default info)', 'G4q', 'G4'],
    ['G3D / G3 (decision log on)', 'G3D', 'G3'],
    ['G3D / G3q (decision log on vs no per-request audit output at all)', 'G3D', 'G3q'],
    ['G3 / G3m0 (metrics on vs off)', 'G3', 'G3m0'],
    ['G3T / G3 (traces at sampling 0.01)', 'G3T', 'G3'],
    ['G3T1 / G3 (traces at sampling 1)', 'G3T1', 'G3'],
    ['G3L / G3 (rate limit + budget on Redis)', 'G3L', 'G3'],
    ['G2Lm / G2 (rate limit + budget on the in-memory store)', 'G2Lm', 'G2'],
    ['G5 / G3 (identity assertion, reused)', 'G5', 'G3'],
    ['G5r / G3 (identity assertion, signed per request)', 'G5r', 'G3'],
    ['G3d / G3 (V8 default heap vs production flags)', 'G3d', 'G3'],
    ['G4 / G3 (MCP tools/call)', 'G4', 'G3'],
    ['RP / R (bare Node proxy: the tools/call POST vs the GET)', 'RP', 'R'],
    ['G4 / RP (MCP tools/call chain vs the bare Node proxy on the same POST; compare G3 / R)', 'G4', 'RP'],
    ['RPb / R (bare Node proxy, body buffered: the tools/call POST vs the GET)', 'RPb', 'R'],
    ['RPb / RP (the POST body buffered vs streamed to undici)', 'RPb', 'RP'],
    ['G4 / RPb (MCP tools/call chain vs the bare Node proxy buffering the same POST)', 'G4', 'RPb'],
    ['G3 / R (full chain vs the bare Node proxy on the GET)', 'G3', 'R'],
    ['GC / NC (2 workers each)', 'GC', 'NC'],
  ];
  return pairs.map(([name, a, b]) => ({ name, value: ratio(rps(a), rps(b)) })).filter((r) => r.value !== null);
}

const f = (v, d = 2) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));
const k = (v) => (v === null || v === undefined ? '–' : Math.round(v).toLocaleString('en-US'));

const mark = (v) => (v.latency?.overloaded ? ' †' : '');

/** The report's "Targets, paired" section: run.mjs's paired phase (bench/lib/paired-runner.mjs). */
function pairedSection(p) {
  const intro =
    `Measured because ${p.why}, after the rounds (${Math.round(p.seconds / 60)} min): each target’s two rows serving at once on the pinned core, each under its own wrk ` +
    `(${p.connections} connections), ${p.starts} fresh starts alternating which side starts first, both warmed up together, ${p.slices} slices of ${p.sliceS} s in all; ` +
    `Node flags ${p.node_flags} on both sides. A busy neighbour slows both rows of a slice alike, so these ratios hold where rows measured one after the other do not; ` +
    'they cancel drift in the host’s speed, not contention that slows one row more than its partner (for memory bandwidth or the shared cache). ' +
    'Memory, load time and latency are the targets above.';
  const failed = p.pairs.filter((x) => x.error).map((x) => `${x.name}: ${x.error}`);
  const lines = ['## Targets, paired', '', intro, '', pairedMarkdown(p.table).trimEnd()];
  if (failed.length) lines.push('', `Not measured: ${failed.join('; ')}.`);
  return lines;
}

/** The markdown report (README-ready). */
export function markdown(result) {
  const { meta, variants } = result;
  const byId = Object.fromEntries(variants.map((v) => [v.id, v]));
  const ref = (id) => byId[id]?.rps ?? null;
  const lines = [];
  lines.push(`# Warden benchmark — ${meta.finished_at}`);
  lines.push('');
  lines.push(
    `${meta.cpus} CPUs, Node ${meta.node}, ${meta.nginx}, ${meta.wrk}. ` +
      `Rounds: ${meta.stopped_after_round ? `${meta.stopped_after_round} of ${meta.rounds} (stopped there with --stop-unsteady: that round already failed the host check; no latency run)` : meta.rounds} (alternating order), wrk ${meta.duration_s}s × ${meta.connections} connections after ${meta.warmup_max_s > meta.warmup_s ? `a warm-up of at least ${meta.warmup_s}s, until the rate stopped rising (at most ${meta.warmup_max_s}s)` : `${meta.warmup_s}s warm-up`}` +
      (meta.slices > 1 ? ` as ${meta.slices} consecutive slices of ${meta.duration_s / meta.slices}s (each slice's req/s in the JSON)` : '') +
      '; ' +
      `latency at a fixed ${k(meta.rate)} req/s (${meta.rate_from ?? 'fixed'}) for ${meta.latency_duration_s}s with the open-loop ${meta.latency_tool} client, every row restarted and warmed up for it. ` +
      `System under test pinned to CPU ${meta.sut_cpu}, load generator and upstream/Redis/OpenFGA to CPU ${meta.load_cpu}; cluster rows unpinned. ` +
      `Warden rows run the bin as shipped (\`dist/src/cli.js start\` executed as a file, as \`warden start\` does; default log level) with node flags ${meta.warden_node_flags || '(none)'}; R and F run with the same flags. ` +
      'Peak RSS is the highest resident set during the measured wrk load (VmHWM, reset after the warm-up); ' +
      'the warm-up column is the peak of start-up plus warm-up (first connections, JIT compilation).',
  );
  lines.push('');
  lines.push(
    '| variant | what it measures | req/s (median) | × R | × N | p50 ms | p99 ms | p99.9 ms | peak RSS MB | warm-up peak MB | upstream conns | valid rounds |',
  );
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const v of variants) {
    const r = ratio(v.rps, ref('R'));
    const n = ratio(v.rps, ref('N'));
    lines.push(
      `| ${v.id} | ${v.what} | ${k(v.rps)} | ${f(r)} | ${f(n)} | ${f(v.latency?.p50, 3)}${mark(v)} | ${f(v.latency?.p99, 3)}${mark(v)} | ${f(v.latency?.p999, 3)}${mark(v)} | ${f(v.peak_rss_mb, 0)} | ${f(v.warmup_peak_rss_mb, 0)} | ${v.id === 'D' ? '–' : k(v.upstream_connections)} | ${v.valid_rounds}/${v.rounds} |`,
    );
  }
  lines.push('');
  if (variants.some((v) => v.latency?.overloaded)) {
    lines.push('† did not sustain the fixed rate in at least one round (achieved < 95 % of it): these percentiles include queueing, not only the proxy.');
    lines.push('');
  }
  const d = byId.D?.latency;
  if (variants.some((v) => v.latency)) {
    lines.push(`## Latency at a fixed ${k(meta.rate)} req/s (open loop), alongside D`);
    lines.push('');
    lines.push('Added = the row minus D (the upstream alone) at the same percentile: what the proxy adds.');
    lines.push('');
    lines.push('| variant | achieved req/s | p50 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const v of variants)
      if (v.latency)
        lines.push(
          `| ${v.id} | ${k(v.latency.achieved_rate)} | ${f(v.latency.p50, 3)}${mark(v)} | ${f(v.latency.p99, 3)}${mark(v)} | ${f(v.latency.p999, 3)}${mark(v)} | ${v.id === 'D' ? '–' : f(diff(v.latency.p50, d?.p50), 3)} | ${v.id === 'D' ? '–' : f(diff(v.latency.p99, d?.p99), 3)} |`,
        );
    lines.push('');
  }
  const rule = meta.rate_rule;
  if (rule) {
    lines.push('### How the latency rate was chosen');
    lines.push('');
    lines.push(
      `Rule (bench/lib/latency-rate.mjs): ${meta.rate_from}. Each calibrated row was driven open loop at ${k(rule.calibration_rate)} req/s right after its last throughput round; ` +
        `its CPU per request there gives the highest rate at which it keeps its pinned core, and the load core, ≤ ${Math.round(rule.utilisation * 100)} % busy.`,
    );
    lines.push('');
    lines.push(
      '| row | achieved req/s | SUT µs/req | load core µs/req (client) | max rate, SUT core | max rate, load core | p99 at calibration ms | run-queue wait ms/s |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rule.rows)
      lines.push(
        `| ${r.id} | ${k(r.achieved_rate)} | ${f(r.sutCpuUs, 0)} | ${f(r.loadCpuUs, 0)} (${f(r.clientCpuUs, 0)}) | ${k(r.sutMax)} | ${k(r.loadMax)} | ${f(r.p99_ms, 3)} | ${f(r.runqueue_wait_ms_per_s, 0)} |`,
      );
    lines.push('');
    if (rule.rows.some((r) => r.achieved_rate < 0.95 * rule.calibration_rate))
      lines.push(
        `**The host was busy:** a row did not keep even the calibration rate (${k(rule.calibration_rate)} req/s) while its threads waited for their core (run-queue wait above); the latencies of this run measure the host more than Warden.`,
        '',
      );
  }
  if (variants.some((v) => v.tail)) {
    lines.push('### What the tail is made of');
    lines.push('');
    lines.push(
      'At the fixed rate: how busy the row kept its pinned core and the load core (CPU per request × achieved rate), how long its threads waited for their core behind other work ' +
        '(run-queue wait, /proc schedstat), the client’s send lag p99 (how late requests left against the plan), p99 measured from the plan (wrk2’s coordinated-omission-corrected p99: send lag included)' +
        (meta.trace_gc ? ', and the GC pauses during the latency run (--trace-gc: main-thread pause, count and total)' : '') +
        '.',
    );
    lines.push('');
    lines.push(
      `| variant | SUT core busy | load core busy | run-queue wait ms/s | send lag p99 ms | p99 ms | p99 from plan ms |${meta.trace_gc ? ' scavenges (ms total, max) | full GCs (ms total) | GC share of wall time |' : ''}`,
    );
    lines.push(`|---|---:|---:|---:|---:|---:|---:|${meta.trace_gc ? '---:|---:|---:|' : ''}`);
    const pct = (x) => (x === null || x === undefined ? '–' : `${Math.round(x * 100)} %`);
    for (const v of variants) {
      const t = v.tail;
      if (!t) continue;
      const gc = t.gc;
      const gcCols = meta.trace_gc
        ? gc
          ? ` ${gc.scavenge.count} (${f(gc.scavenge.ms, 1)}, ${f(gc.scavenge.max, 2)}) | ${gc.full.count} (${f(gc.full.ms, 1)}) | ${f(((gc.scavenge.ms + gc.full.ms) / (gc.seconds * 1000)) * 100, 2)} % |`
          : ' – | – | – |'
        : '';
      lines.push(
        `| ${v.id} | ${pct(t.sut_busy)} | ${pct(t.load_busy)} | ${f(t.runqueue_wait_ms_per_s, 1)} | ${f(t.send_lag_p99_ms, 3)} | ${f(v.latency?.p99, 3)} | ${f(t.p99_from_plan_ms, 3)} |${gcCols}`,
      );
    }
    lines.push('');
  }
  const host = result.host_check;
  if (host?.pairs.length) {
    lines.push('## Host check');
    lines.push('');
    lines.push(
      'Each row below does everything the row it is compared with does, and more: on a steady host it is never the faster. ' +
        `Out of order (faster by more than ${Math.round(host.tolerance * 100)} %, in the medians or in any round) means the host moved throughput more than the work differs, ` +
        'and the ratios of this run, targets included, measure the host as much as Warden.',
    );
    lines.push('');
    lines.push(
      host.steady
        ? `**Steady:** all ${host.pairs.length} pairs in order.`
        : `**Not steady:** ${host.out_of_order} of ${host.pairs.length} pairs out of order. Do not quote this run’s ratios; ${result.paired ? 'read the targets from “Targets, paired” below (each target’s two rows measured at the same time), or measure again on a quieter host.' : 'measure again on a quieter host, or read the targets paired (`node bench/side-by-side.mjs --targets`, or a full run with `--paired always`: each target’s two rows at the same time).'}`,
    );
    if (host.r_spread !== null) lines.push('', `R across rounds: ${f(host.r_spread * 100, 0)} % between its slowest and fastest round.`);
    const warm = warmupLine(result.variants);
    if (warm) lines.push('', warm);
    lines.push('');
    lines.push('| row | vs | what it adds | ratio | per round | in order |');
    lines.push('|---|---|---|---:|---|---|');
    for (const p of host.pairs)
      lines.push(`| ${p.heavier} | ${p.lighter} | ${p.adds} | ${f(p.value)} | ${p.per_round.map((v) => f(v)).join(', ')} | ${p.in_order ? 'yes' : '**no**'} |`);
    lines.push('');
  }
  lines.push('## Targets (issue 7)');
  lines.push('');
  if (host && !host.steady && host.pairs.length)
    lines.push(
      `**This run failed its host check (above):** pass and fail below are the host’s as much as Warden’s.${result.paired ? ' The throughput targets measured paired follow in “Targets, paired”.' : ''}`,
      '',
    );
  lines.push(
    'Measured = the ratio of the rows’ medians (the result). Per round = the same ratio within each round, in round order: how far the host moved it.',
  );
  lines.push('');
  lines.push('| target | goal | measured | result | per round |');
  lines.push('|---|---|---:|---|---|');
  for (const t of result.targets)
    lines.push(
      `| ${t.name} | ${t.target} | ${f(t.value, t.name.includes('ms') ? 3 : 2)} | ${t.pass === null ? 'not measured' : t.pass === 'reported' ? 'reported' : t.pass ? 'pass' : '**FAIL**'} | ${(t.per_round ?? []).map((v) => f(v)).join(', ')} |`,
    );
  lines.push('');
  if (result.paired) lines.push(...pairedSection(result.paired), '');
  const like = result.before_redesign ?? [];
  if (like.some((r) => r.value !== null)) {
    lines.push(`## Against the committed run before the redesign (#11, ${BEFORE_REDESIGN.run})`);
    lines.push('');
    lines.push(
      'Quiet rows (log level warn), as that run measured Warden; each ratio must stay within 0.05 of it. That run started R without the semi-space flags and Warden with them, ' +
        'and R now runs with Warden’s flags: these numbers compare two harnesses. The like-for-like comparison is the old build measured in this run (`--baseline`, below).',
    );
    lines.push('');
    lines.push('| ratio | rows now | then | now | within 0.05 |');
    lines.push('|---|---|---:|---:|---|');
    for (const r of like)
      lines.push(`| ${r.name} | ${r.rows} | ${f(r.then)} | ${f(r.value)} | ${r.pass === null ? 'not measured' : r.pass ? 'yes' : '**no**'} |`);
    lines.push('');
  }
  const pre = result.baseline_ratios ?? [];
  if (pre.length) {
    const b = meta.baseline;
    lines.push(`## Against the build before the redesign, same run (#11: ${b?.ref ?? ''}${b?.sha ? ` = ${b.sha.slice(0, 10)}` : ''})`);
    lines.push('');
    lines.push(
      'The old build measured in this run as G0q@pre, G3q@pre, G4q@pre: the same harness, configs, Node flags (on its command line; it predates the bin’s re-exec), log level warn and pinning as G0q, G3q, G4q; R is the same row for both. ' +
        `Today’s ratio passes when it is within 0.05 of the old build’s or better.${b?.build_s ? ` (The old build took ${Math.round(b.build_s)} s: a temporary git worktree, \`npm ci --offline\`, tsc; removed after the run.)` : ''}`,
    );
    lines.push('');
    lines.push('| ratio | today (rows) | before the redesign (rows) | today − before | within 0.05 or better |');
    lines.push('|---|---:|---:|---:|---|');
    for (const r of pre)
      lines.push(
        `| ${r.name} | ${f(r.today)} (${r.today_rows}) | ${f(r.pre)} (${r.pre_rows}) | ${r.delta === null ? '–' : (r.delta >= 0 ? '+' : '') + f(r.delta)} | ${r.pass === null ? 'not measured' : r.pass ? 'yes' : '**no**'} |`,
      );
    lines.push('');
  }
  const mem = variants.filter((v) => v.relay_peak_rss_mb !== null || v.serving_peak_rss_mb !== null);
  if (mem.length) {
    lines.push('## Memory of the Warden rows');
    lines.push('');
    lines.push(
      "Peak RSS under load (VmHWM after the warm-up) of the serving process and of the relay parent of `warden start` (the process that re-executed Node with Warden's flags; 0 when the flags were given on the command line).",
    );
    lines.push('');
    lines.push(
      "The relay's resident set is mostly the Node binary's pages, which the serving process maps too (the same physical pages, counted in both VmHWM); its own memory is its anonymous pages (RssAnon + RssShmem).",
    );
    lines.push('');
    lines.push('| variant | total MB (VmHWM summed) | serving MB | relay MB | relay own MB | serving + relay own MB |');
    lines.push('|---|---:|---:|---:|---:|---:|');
    for (const v of mem)
      lines.push(
        `| ${v.id} | ${f(v.peak_rss_mb, 0)} | ${f(v.serving_peak_rss_mb, 0)} | ${f(v.relay_peak_rss_mb, 0)} | ${f(v.relay_own_rss_mb, 0)} | ${f(memoryOnce(v), 0)} |`,
      );
    lines.push('');
  }
  if (result.ratios.length) {
    lines.push('## Other ratios (throughput)');
    lines.push('');
    lines.push('| ratio | value |');
    lines.push('|---|---:|');
    for (const r of result.ratios) lines.push(`| ${r.name} | ${f(r.value)} |`);
    lines.push('');
  }
  if (variants.some((v) => v.sut_cpu_us_per_request)) {
    lines.push('## CPU per request');
    lines.push('');
    lines.push(
      'CPU time (user + system, 10 ms ticks) of the system under test, of Redis and of OpenFGA divided by the requests served, during the wrk run (closed loop) ' +
        'and during the fixed-rate latency run (the same work for every row): less sensitive to a noisy machine than req/s.',
    );
    lines.push('');
    lines.push(
      'Redis commands per request (INFO commandstats, wrk run): every command, those a script runs included, and in brackets the script calls alone (round trips of the limits).',
    );
    lines.push('');
    lines.push(
      '| variant | SUT µs/req (wrk) | Redis µs/req (wrk) | OpenFGA µs/req (wrk) | SUT µs/req (fixed rate) | Redis µs/req (fixed rate) | Redis commands/req (scripts) |',
    );
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const v of variants)
      if (v.sut_cpu_us_per_request)
        lines.push(
          `| ${v.id} | ${f(v.sut_cpu_us_per_request, 0)} | ${f(v.redis_cpu_us_per_request, 1)} | ${f(v.openfga_cpu_us_per_request, 0)} | ${f(v.sut_cpu_us_per_request_fixed, 0)} | ${f(v.redis_cpu_us_per_request_fixed, 1)} | ${v.redis_commands_per_request != null ? `${f(v.redis_commands_per_request, 2)} (${f(v.redis_scripts_per_request, 3)})` : '–'} |`,
        );
    lines.push('');
  }
  const errs = variants.filter((v) => v.errors.length);
  if (errs.length) {
    lines.push('## Rounds that failed');
    lines.push('');
    for (const v of errs) for (const e of v.errors) lines.push(`- ${v.id}: ${e}`);
    lines.push('');
  }
  if (result.micro?.length) {
    lines.push('## Microbenchmarks (one core, warm)');
    lines.push('');
    lines.push('| operation | ns/op (median) | ops/s |');
    lines.push('|---|---:|---:|');
    for (const m of result.micro) lines.push(`| ${m.name} | ${k(m.ns_per_op)} | ${k(1e9 / m.ns_per_op)} |`);
    lines.push('');
  }
  lines.push(`Reproduce: \`${meta.command}\` (see docs/performance.md).`);
  return lines.join('\n') + '\n';
}
