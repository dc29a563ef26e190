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
 *
 * --against A compares each profile with A per request: every function's share of busy time times
 * its row's CPU µs per request, B − A, largest first, and the sums by where the code lives (Warden,
 * undici, Node, V8 and the kernel). The CPU per request comes from the `.meta.json` that run.mjs
 * writes beside each profile, or from --cpu A,B (µs):
 *
 *   node bench/profile-summary.mjs bench/profiles/G4-r1.cpuprofile --against bench/profiles/RPb-r1.cpuprofile --skip 3
 */

import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { comparePerRequest, summarize } from './lib/profiles.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    json: { type: 'boolean', default: false },
    skip: { type: 'string', default: '0' },
    against: { type: 'string' },
    cpu: { type: 'string' },
  },
});
if (positionals.length === 0) {
  process.stderr.write('usage: node bench/profile-summary.mjs <file.cpuprofile>... [--top N] [--json] [--skip S] [--against A.cpuprofile [--cpu A,B]]\n');
  process.exit(2);
}

const top = Number(opt.top);
const skipUs = Number(opt.skip) * 1e6;
const load = (file) => summarize(JSON.parse(readFileSync(file, 'utf8')), skipUs);

/** The row's CPU µs per request recorded beside a profile by run.mjs, or null. */
function recordedCpu(file) {
  const meta = file.replace(/\.cpuprofile$/, '.meta.json');
  if (!existsSync(meta)) return null;
  return JSON.parse(readFileSync(meta, 'utf8')).sut_cpu_us_per_request ?? null;
}

if (opt.against !== undefined) {
  const given = opt.cpu?.split(',').map(Number);
  if (given && (given.length !== 2 || !given.every((x) => x > 0))) {
    process.stderr.write('--cpu takes two CPU times per request in µs, A then B: --cpu 99,128\n');
    process.exit(2);
  }
  if (given && positionals.length > 1) {
    process.stderr.write('--cpu gives one pair of CPU times: compare one profile with A at a time\n');
    process.exit(2);
  }
  const base = load(opt.against);
  const cpuA = given?.[0] ?? recordedCpu(opt.against);
  const out = [];
  for (const file of positionals) {
    const cpuB = given?.[1] ?? recordedCpu(file);
    if (!cpuA || !cpuB) {
      process.stderr.write(
        `no CPU per request recorded for ${!cpuA ? opt.against : file} (run.mjs --profile writes it beside the profile as .meta.json): give --cpu A,B\n`,
      );
      process.exit(2);
    }
    const c = comparePerRequest(base, load(file), cpuA, cpuB);
    out.push({ file, against: opt.against, ...c, functions: c.functions });
  }
  if (opt.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  else {
    const num = (x, sign = false) => `${sign && x > 0 ? '+' : ''}${x.toFixed(2)}`.padStart(8);
    for (const c of out) {
      process.stdout.write(
        `\n${c.file} (B) against ${c.against} (A): CPU µs per request, each function's share of busy time × its row's CPU per request (A ${c.cpuA.toFixed(0)}, B ${c.cpuB.toFixed(0)} µs)\n\n`,
      );
      process.stdout.write(`${'A'.padStart(8)}${'B'.padStart(8)}${'B − A'.padStart(8)}  where\n`);
      for (const p of c.parts) process.stdout.write(`${num(p.a)}${num(p.b)}${num(p.delta, true)}  ${p.part}\n`);
      process.stdout.write(`\nwhat B spends more on (top ${top}):\n`);
      for (const f of c.functions.slice(0, top)) if (f.delta > 0) process.stdout.write(`${num(f.a)}${num(f.b)}${num(f.delta, true)}  ${f.fn}\n`);
      const less = c.functions
        .filter((f) => f.delta < 0)
        .slice(-Math.ceil(top / 3))
        .reverse();
      if (less.length) {
        process.stdout.write(`\nwhat B spends less on (top ${less.length}):\n`);
        for (const f of less) process.stdout.write(`${num(f.a)}${num(f.b)}${num(f.delta, true)}  ${f.fn}\n`);
      }
    }
  }
  process.exit(0);
}

const out = [];
for (const file of positionals) {
  const s = load(file);
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
