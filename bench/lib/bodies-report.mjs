/**
 * bench/bodies.mjs's arithmetic and table: the rounds of each (gateway,
 * direction, size) reduced to medians, and Warden's figures over R's for the
 * same case (the Node floor on the same flags).
 */

import { median } from './stats.mjs';

const UNITS = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** "64KB" → 65536 (KB, MB, GB are powers of 1024; a bare number is bytes); NaN when it is not a size. */
export function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?$/i.exec(String(text).trim());
  if (!m) return NaN;
  return Math.round(Number(m[1]) * UNITS[(m[2] ?? 'B').toUpperCase()]);
}

/** 65536 → "64 KB" (the largest unit it is a whole number of). */
export function sizeText(bytes) {
  for (const unit of ['GB', 'MB', 'KB']) if (bytes >= UNITS[unit] && bytes % UNITS[unit] === 0) return `${bytes / UNITS[unit]} ${unit}`;
  return `${bytes} B`;
}

/**
 * One line per (row, direction, size) from the measured runs
 * ({row, direction, size, requests, bytes, seconds, cpu_us, peak_rss_mb}):
 * medians over the rounds of MB/s, requests/s, the gateway's CPU µs per MB
 * moved and per request, and its peak RSS.
 */
export function summarizeBodies(samples) {
  const groups = new Map();
  for (const s of samples) {
    const key = `${s.row}\0${s.direction}\0${s.size}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(s);
  }
  return [...groups.values()].map((runs) => {
    const { row, direction, size } = runs[0];
    const mb = (s) => s.bytes / UNITS.MB;
    return {
      row,
      direction,
      size,
      rounds: runs.length,
      mb_per_s: +median(runs.map((s) => mb(s) / s.seconds)).toFixed(1),
      req_per_s: +median(runs.map((s) => s.requests / s.seconds)).toFixed(1),
      cpu_us_per_mb: +median(runs.map((s) => (mb(s) > 0 ? s.cpu_us / mb(s) : NaN))).toFixed(0),
      cpu_us_per_request: +median(runs.map((s) => (s.requests > 0 ? s.cpu_us / s.requests : NaN))).toFixed(1),
      peak_rss_mb: +median(runs.map((s) => s.peak_rss_mb)).toFixed(0),
    };
  });
}

/** Warden's value over R's for the same direction and size (null for R itself, without R, or when R's is 0). */
export function overR(results, row, key) {
  const r = results.find((x) => x.row === 'R' && x.direction === row.direction && x.size === row.size);
  if (row.row === 'R' || !r || !(r[key] > 0)) return null;
  return row[key] / r[key];
}

const times = (x) => (x === null ? '–' : `${x.toFixed(2)}×`);

/** The markdown report: `header`, the bodies table, the slow readers table (if any), and how to read them. */
export function bodiesMarkdown(results, slow, { header = '' } = {}) {
  const lines = [
    header,
    '| gateway | direction | body | MB/s | × R | requests/s | CPU µs per MB | × R | CPU µs per request | peak RSS MB | rounds |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const x of results) {
    lines.push(
      `| ${x.row} | ${x.direction} | ${sizeText(x.size)} | ${x.mb_per_s} | ${times(overR(results, x, 'mb_per_s'))} | ${x.req_per_s} | ${x.cpu_us_per_mb} | ${times(overR(results, x, 'cpu_us_per_mb'))} | ${x.cpu_us_per_request} | ${x.peak_rss_mb} | ${x.rounds} |`,
    );
  }
  if (slow.length) {
    lines.push(
      '',
      '| gateway | slow readers | each read at | RSS before MB | RSS with them MB | KB per slow reader | read by all, MB |',
      '|---|---:|---:|---:|---:|---:|---:|',
    );
    for (const s of slow)
      lines.push(`| ${s.row} | ${s.readers} | ${sizeText(s.rate)}/s | ${s.rss_before_mb} | ${s.rss_with_mb} | ${s.kb_per_reader} | ${s.read_mb} |`);
  }
  lines.push(
    '',
    "MB/s: body bytes moved per second by all connections (download: the answers read to their end; upload: the bodies sent, each answered 200). CPU µs per MB and per request: the gateway's CPU (user + system) over the measured run divided by what it moved; it is the figure to read on a busy host (MB/s also depends on the load core, which runs the upstream and the clients). Peak RSS: the gateway's highest resident set during the measured run. Slow readers: agents reading a large answer slower than the upstream sends it; KB per slow reader = (RSS with them − RSS before) / readers, near the end of the hold (bounded: the gateway waits on each agent's socket instead of buffering the answer).",
    '',
  );
  return lines.join('\n');
}
