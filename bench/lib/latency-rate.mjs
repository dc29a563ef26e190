/**
 * The fixed rate of the latency measurement (#17 item 6: "a fixed rate the
 * slowest headline row can sustain, from an open-loop client") and the GC
 * trace parser for "what dominates the tail".
 *
 * Rule: every headline row in the run (G0–G4, Warden as shipped; without any,
 * every pinned Warden row) is driven open loop at a modest calibration rate
 * right after its last throughput round, and the CPU time it spends per
 * request there is measured, for its own pinned core and for the load core
 * (latency client, upstream nginx, Redis, OpenFGA). The latency rate is the
 * highest rate, rounded down to 100 req/s, at which *each* of those rows keeps
 * *both* cores at most UTILISATION busy. Open loop costs more CPU per request
 * than closed loop (each request arrives alone: its own wake-up, read and
 * write, no batching), so a closed-loop throughput says little about what a
 * row sustains open loop.
 *
 * Why 0.6: a latency test measures a server that keeps up, with headroom, not
 * a queue (wrk2 / HdrHistogram: measure at a constant rate the system
 * sustains, well below its maximum, and report percentiles against that
 * rate). Queueing time grows as ρ / (1 − ρ): at 0.6 the expected wait is 1.5
 * service times, at 0.8 it is 4 and at 0.9 it is 9, and the knee that
 * capacity planning keeps below is the 60–70 % band. 0.6 is the low end of
 * that band because the host is shared: other work takes part of each core.
 * It is chosen on that principle, not to pass a target; `--rate` overrides it.
 */

/** Highest utilisation of a pinned core the latency rate may cause. */
export const UTILISATION = 0.6;
/** Calibration rate (req/s): low enough that every Node row stays well under saturation open loop. */
export const CALIBRATION_RATE = 2000;
/** Rates are rounded down to this step. */
export const RATE_STEP = 100;

/** Fraction of one core busy at `rate` req/s when each request costs `cpuUs` µs. */
export const utilisationAt = (rate, cpuUs) => (rate * cpuUs) / 1e6;

/** The highest rate (a multiple of `step`, at least `step`) at which `cpuUs` µs/req keeps one core at most `utilisation` busy. */
export function maxRateFor(cpuUs, { utilisation = UTILISATION, step = RATE_STEP } = {}) {
  if (!(cpuUs > 0)) return null;
  return Math.max(step, Math.floor((utilisation * 1e6) / cpuUs / step) * step);
}

/**
 * The latency rate from calibrations [{ id, rate, sutCpuUs, loadCpuUs }] (CPU µs per request open loop at `rate`).
 * Returns { rate, limiting: { id, core: 'sut' | 'load', cpuUs }, rows: [{ id, rate, sutCpuUs, loadCpuUs, sutMax, loadMax }] },
 * or null when no calibration is usable.
 */
export function latencyRate(calibrations, { utilisation = UTILISATION, step = RATE_STEP } = {}) {
  const rows = calibrations
    .filter((c) => c && c.sutCpuUs > 0)
    .map((c) => ({
      ...c,
      sutMax: maxRateFor(c.sutCpuUs, { utilisation, step }),
      loadMax: c.loadCpuUs > 0 ? maxRateFor(c.loadCpuUs, { utilisation, step }) : null,
    }));
  if (rows.length === 0) return null;
  let best = null;
  for (const r of rows) {
    for (const [core, max, cpuUs] of [
      ['sut', r.sutMax, r.sutCpuUs],
      ['load', r.loadMax, r.loadCpuUs],
    ]) {
      if (max === null) continue;
      if (best === null || max < best.rate) best = { rate: max, limiting: { id: r.id, core, cpuUs } };
    }
  }
  return { ...best, utilisation, rows };
}

/** One sentence for the report: the rule and what set the rate. */
export function describeRate(result) {
  if (!result) return null;
  const { limiting, utilisation } = result;
  const core = limiting.core === 'sut' ? 'its pinned core' : 'the load core (client, upstream, Redis)';
  return (
    `the highest rate at which every calibrated row keeps its pinned core and the load core ≤ ${Math.round(utilisation * 100)} % busy ` +
    `(open-loop CPU per request at ${CALIBRATION_RATE} req/s); set by ${limiting.id}, ${core}: ${Math.round(limiting.cpuUs)} µs/req`
  );
}

/**
 * GC pauses from node's --trace-gc output: counts and main-thread pause time (ms) of scavenges and of
 * full collections (mark-compact / mark-sweep), optionally only for lines whose isolate time is ≥ `fromMs`.
 * A line: `[pid:0x…]     1234 ms: Scavenge 5.1 (6.3) -> 4.3 (7.3) MB, 0.61 / 0.00 ms  (average mu = …) allocation failure;`
 */
export function parseTraceGc(text, { fromMs = 0 } = {}) {
  const out = { scavenge: { count: 0, ms: 0, max: 0 }, full: { count: 0, ms: 0, max: 0 } };
  const re =
    /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: (Scavenge|Minor Mark-Compact|Minor Mark-Sweep|Mark-Compact|Mark-Sweep|Mark-sweep)[^,]*, ([\d.]+) \/ ([\d.]+) ms/gm;
  for (const m of text.matchAll(re)) {
    if (Number(m[1]) < fromMs) continue;
    const kind = m[2].startsWith('Scavenge') || m[2].startsWith('Minor') ? out.scavenge : out.full;
    const ms = Number(m[3]);
    kind.count++;
    kind.ms += ms;
    kind.max = Math.max(kind.max, ms);
  }
  return out;
}
