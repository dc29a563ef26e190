#!/usr/bin/env node
/**
 * Summarize V8 CPU profiles (`node --cpu-prof`, as written by
 * `node bench/run.mjs --profile` into bench/profiles/): the functions with the
 * most self time, and the inclusive time of Warden's own modules.
 *
 *   node bench/profile-summary.mjs bench/profiles/G3-r1.cpuprofile [--top 25] [--json] [--skip 3]
 *
 * --skip S leaves out the first S seconds of the profile (start-up: module loading and compilation
 * dwarf the per-request work in a short run).
 */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false }, skip: { type: 'string', default: '0' } },
});
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/profile-summary.mjs <file.cpuprofile>... [--top N] [--json]\n');
  process.exit(2);
}

const short = (url) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, 'npm:')
    .replace(/^.*\/\.?dist[^/]*\/src\//, 'src/')
    .replace(/^node:/, 'node:');

/** Self and inclusive time per function (keyed by name + location). */
export function summarize(profile, skipUs = 0) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  const deltas = profile.timeDeltas;
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += deltas[i] ?? 0;
    const dt = deltas[i + 1] ?? 0;
    if (at < skipUs) continue;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const keyOf = (n) => {
    const cf = n.callFrame;
    return `${cf.functionName || '(anonymous)'} ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  };
  const self = new Map();
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const n = nodes.get(id);
    self.set(keyOf(n), (self.get(keyOf(n)) ?? 0) + us);
    // Inclusive: charge every distinct frame on the stack once.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(nodes.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;
  const rows = (m) => [...m].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(root)')).sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    self: rows(self).map(([k, v]) => ({ fn: k, ms: v / 1000, pct: (100 * v) / busy })),
    inclusive: rows(incl).map(([k, v]) => ({ fn: k, ms: v / 1000, pct: (100 * v) / busy })),
  };
}

const top = Number(opt.top);
const out = [];
for (const file of positionals) {
  const s = summarize(JSON.parse(readFileSync(file, 'utf8')), Number(opt.skip) * 1e6);
  out.push({ file, ...s, self: s.self.slice(0, top), inclusive: s.inclusive.filter((r) => r.fn.includes(' src/')).slice(0, top) });
}
if (opt.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
else {
  for (const p of out) {
    process.stdout.write(`\n${p.file}: ${p.busyMs.toFixed(0)} ms busy of ${p.totalMs.toFixed(0)} ms\n\nself time (% of busy):\n`);
    for (const r of p.self) process.stdout.write(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.fn}\n`);
    process.stdout.write(`\ninclusive time of Warden functions (% of busy):\n`);
    for (const r of p.inclusive) process.stdout.write(`  ${r.pct.toFixed(1).padStart(5)}%  ${r.fn}\n`);
  }
}
