#!/usr/bin/env node
/**
 * Two systems under test measured at the same time: both serve on the same
 * pinned core, each under its own wrk with the same connections, in the same
 * seconds. A busy host slows both alike, so the ratio of their CPU per request
 * is what differs between them, where rows measured one after the other
 * (bench/run.mjs) differ by ±20 % from round to round on a shared machine.
 *
 * Two flag sets on one row (G3 by default):
 *   node bench/side-by-side.mjs --a="--min-semi-space-size=8 --max-semi-space-size=8" \
 *        --b="--min-semi-space-size=8 --max-semi-space-size=8 --heap-growing-percent=20" [--variant G3]
 * Two rows (A the reference), on the shipped flags unless --a / --b say otherwise:
 *   node bench/side-by-side.mjs --pairs R:G0,G3:G4
 * Two builds serving one row (a commit against this tree, or two commits), each side on the shipped flags:
 *   node bench/side-by-side.mjs --variant G4 --a-ref HEAD~3 [--b-ref <commit>]
 * #17's targets (and the other issues' G3 ratios), each pair in turn (~35 min):
 *   node bench/side-by-side.mjs --targets [--out /tmp/paired]
 * Common: [--starts 4] [--slices 8] [--slice 8] [--warmup 5] [--warmup-max 40] [--connections 16]
 *         [--warm together|alone] [--idle 0]
 *
 * --idle S leaves both sides idle for S seconds after they start, before the
 * warm-up: what a gateway meets after a quiet spell (V8 collects an idle heap
 * in full; see src/core/tick-shape.ts for what that once cost every request).
 *
 * Both sides are started fresh --starts times, alternating which goes first,
 * and warmed up together (bench/lib/paired-runner.mjs says why).
 * Then both are loaded at once in slices. Prints, per slice, each side's
 * req/s, CPU µs per request and RSS, the ratio B/A of CPU per request and
 * its inverse, B/A throughput (a pinned, saturated process serves 1 / its CPU
 * per request); then the medians. Rows: R, RP, RPb, F and the one-process
 * Warden rows without OpenFGA (bench/lib/variants.mjs). Every side passes
 * run.mjs's probe first and must answer with the upstream's answer after
 * every slice (an MCP refusal is a 200).
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchWorkspace, toolOptions } from './lib/system.mjs';
import { startUpstream } from './lib/nginx.mjs';
import { ensureBuilt, newVaultKey, seedVault, startRedis, writeBigPolicies, writePolicies } from './lib/warden.mjs';
import { WARDEN_NODE_FLAGS } from './lib/variants.mjs';
import { buildBaseline } from './lib/baseline.mjs';
import { TARGET_PAIRS, pairedMarkdown, pairedTargets, parsePairs } from './lib/paired.mjs';
import { PAIRED_DEFAULTS, measurePairs, pairableRow } from './lib/paired-runner.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH, '..');

const { opt, fail } = toolOptions(import.meta.url, 'side-by-side', {
  a: { type: 'string' },
  b: { type: 'string' },
  variant: { type: 'string', default: 'G3' },
  pairs: { type: 'string' },
  'a-ref': { type: 'string' },
  'b-ref': { type: 'string' },
  targets: { type: 'boolean', default: false },
  slices: { type: 'string', default: String(PAIRED_DEFAULTS.slices) },
  starts: { type: 'string', default: String(PAIRED_DEFAULTS.starts) },
  warm: { type: 'string', default: PAIRED_DEFAULTS.warm },
  slice: { type: 'string', default: String(PAIRED_DEFAULTS.sliceS) },
  warmup: { type: 'string', default: String(PAIRED_DEFAULTS.warmup) },
  'warmup-max': { type: 'string', default: String(PAIRED_DEFAULTS.warmupMax) },
  connections: { type: 'string', default: String(PAIRED_DEFAULTS.connections) },
  idle: { type: 'string', default: '0' },
  'sut-cpu': { type: 'string', default: '0' },
  'load-cpu': { type: 'string', default: '1' },
  out: { type: 'string' },
});

let pairs;
try {
  pairs = opt.targets
    ? TARGET_PAIRS
    : opt.pairs
      ? parsePairs(opt.pairs)
      : [{ a: opt.variant, b: opt.variant, name: `${opt.variant}, side B / side A`, goal: null }];
} catch (err) {
  fail(err.message);
}
// Every row of every pair, each once (refused here, before anything starts, when a pair cannot hold it).
let rows;
try {
  rows = [...new Set(pairs.flatMap((p) => [p.a, p.b]))].map(pairableRow);
} catch (err) {
  fail(err.message);
}
const shipped = WARDEN_NODE_FLAGS.split(/\s+/);
const flags = { A: opt.a === undefined ? shipped : opt.a.split(/\s+/).filter(Boolean), B: opt.b === undefined ? shipped : opt.b.split(/\s+/).filter(Boolean) };
const slices = Number(opt.slices);
const starts = Number(opt.starts);
if (!(starts >= 1)) fail('--starts must be 1 or more');
if (opt.warm !== 'together' && opt.warm !== 'alone') fail('--warm is together or alone');
const sliceS = Number(opt.slice);
const connections = Number(opt.connections);
const idleS = Number(opt.idle);
if (!(idleS >= 0)) fail('--idle is a number of seconds, 0 or more');
const loadCpu = opt['load-cpu'];
const log = (line) => process.stderr.write(`[side-by-side ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

const { work: WORK, tracker, cleanup } = benchWorkspace(BENCH, 'side');

const started = performance.now();
try {
  const anyWarden = rows.some((v) => v.kind === 'warden');
  const cli = anyWarden ? ensureBuilt(REPO, join(REPO, 'dist'), { log }) : null;
  // --a-ref / --b-ref: that side's Warden is the build of a commit (a temporary worktree), the other side's this tree's.
  const clis = { A: cli, B: cli };
  for (const name of ['A', 'B']) {
    const ref = opt[`${name.toLowerCase()}-ref`];
    if (ref === undefined) continue;
    if (!anyWarden) fail(`--${name.toLowerCase()}-ref needs a Warden row`);
    const built = buildBaseline(REPO, ref, { log });
    process.once('exit', () => built.remove());
    clis[name] = built.cli;
    log(`side ${name} runs the build of ${built.sha.slice(0, 10)}`);
  }
  const { port: upstreamPort, origin: upstreamOrigin } = await startUpstream(tracker, WORK, loadCpu);
  const vaultKey = newVaultKey();
  const redis = rows.some((v) => v.warden?.redis) ? await startRedis(tracker, WORK, loadCpu) : null;
  if (redis) await seedVault(join(REPO, 'dist'), redis.url, vaultKey);
  if (anyWarden) writePolicies(join(WORK, 'warden', 'policies'));
  const bigPolicies = new Map();
  for (const n of new Set(rows.map((v) => v.warden?.tuples).filter(Boolean))) {
    log(`writing ${n.toLocaleString('en')} tuples`);
    bigPolicies.set(n, await writeBigPolicies(join(WORK, 'warden'), n));
  }
  const dataDir = join(WORK, 'data');

  const raw = await measurePairs(pairs, {
    tracker,
    work: WORK,
    dataDir,
    clis,
    flags,
    upstreamPort,
    upstreamOrigin,
    redis,
    vaultKey,
    bigPolicies,
    starts,
    slices,
    sliceS,
    warmup: Number(opt.warmup),
    warmupMax: Number(opt['warmup-max']),
    warm: opt.warm,
    connections,
    idleS,
    sutCpu: opt['sut-cpu'],
    loadCpu,
    log,
  });
  const failed = raw.filter((p) => p.error);
  if (failed.length === raw.length) throw new Error(`every pair failed: ${failed.map((p) => `${p.name}: ${p.error}`).join('; ')}`);
  const results = Object.fromEntries(raw.map((p) => [p.name, p.estimate]));
  const seconds = Math.round((performance.now() - started) / 1000);
  if (pairs.length === 1 && pairs[0].a === pairs[0].b) {
    // One row, two flag sets or builds: the ratio of CPU per request, B over A.
    const r = raw[0];
    process.stdout.write(
      JSON.stringify({
        variant: r.a,
        a: flags.A.join(' '),
        b: flags.B.join(' '),
        a_ref: opt['a-ref'] ?? null,
        b_ref: opt['b-ref'] ?? null,
        ratios: r.slices.map((s) => +(s.b / s.a).toFixed(3)),
        median: +r.cpu_ratio_median.toFixed(3),
      }) + '\n',
    );
  } else {
    const table = pairedTargets(pairs, results);
    const header = `Paired: both rows of each pair on CPU ${opt['sut-cpu']} at once (load CPU ${loadCpu}), ${slices} slices × ${sliceS} s, ${connections} connections each, Node flags A ${flags.A.join(' ') || '(none)'} / B ${flags.B.join(' ') || '(none)'}${opt['a-ref'] ? `, A on the build of ${opt['a-ref']}` : ''}${opt['b-ref'] ? `, B on the build of ${opt['b-ref']}` : ''}; ${seconds} s. Node ${process.version}.\n`;
    const md = pairedMarkdown(table, { header });
    process.stdout.write(md);
    if (opt.out) {
      mkdirSync(opt.out, { recursive: true });
      writeFileSync(join(opt.out, 'paired.md'), md);
      writeFileSync(
        join(opt.out, 'paired.json'),
        JSON.stringify(
          { at: new Date().toISOString(), node: process.version, seconds, flags, slices, slice_s: sliceS, connections, pairs: raw, table },
          null,
          2,
        ) + '\n',
      );
      log(`wrote ${join(opt.out, 'paired.md')} and paired.json`);
    }
  }
} finally {
  cleanup();
}
