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
 *         [--warm together|alone]
 *
 * Both sides are started fresh --starts times, alternating which goes first,
 * and warmed up together, in one-second runs until both rates stop rising (as
 * run.mjs judges a warm-up), so neither sits idle while the other warms: with
 * each warmed alone in turn, whichever started first measured 10-17 % ahead
 * in four of six pairs.
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
import { benchWorkspace, cpuTimeUs, freePort, rssNow, toolOptions, waitForHttp, waitIdle } from './lib/system.mjs';
import { startUpstream } from './lib/nginx.mjs';
import { runWrk, warmUp, warmedUp, writeWrkScript } from './lib/load.mjs';
import { ensureBuilt, mintToken, newVaultKey, seedVault, startRedis, variantYaml, wardenEnv, writeBigPolicies, writePolicies } from './lib/warden.mjs';
import { VARIANTS, WARDEN_NODE_FLAGS, proxyServerArgs, requestFor } from './lib/variants.mjs';
import { median } from './lib/report.mjs';
import { concrete, probe } from './lib/probe.mjs';
import { buildBaseline } from './lib/baseline.mjs';
import { TARGET_PAIRS, pairEstimate, pairedMarkdown, pairedTargets, parsePairs } from './lib/paired.mjs';

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
  slices: { type: 'string', default: '8' },
  starts: { type: 'string', default: '4' },
  warm: { type: 'string', default: 'together' },
  slice: { type: 'string', default: '8' },
  warmup: { type: 'string', default: '5' },
  'warmup-max': { type: 'string', default: '40' },
  connections: { type: 'string', default: '16' },
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
/** What this tool can start: one process per side, no OpenFGA (it runs on the load core and would be shared). */
const runnable = (v) =>
  v && (v.kind === 'node' || v.kind === 'fastify' || (v.kind === 'warden' && !v.needs?.includes('openfga') && (v.warden.workers ?? 1) === 1));
const rowOf = (id) => {
  const v = VARIANTS.find((x) => x.id === id);
  if (!runnable(v)) fail(`${id} is not a row this tool can run (R, RP, RPb, F, or a one-process Warden row without OpenFGA)`);
  return v;
};
// Every row of every pair, each once (refused here, before anything starts, when the tool cannot run it).
const rows = [...new Set(pairs.flatMap((p) => [p.a, p.b]))].map(rowOf);
const shipped = WARDEN_NODE_FLAGS.split(/\s+/);
const flags = { A: opt.a === undefined ? shipped : opt.a.split(/\s+/).filter(Boolean), B: opt.b === undefined ? shipped : opt.b.split(/\s+/).filter(Boolean) };
const slices = Number(opt.slices);
const starts = Number(opt.starts);
if (!(starts >= 1)) fail('--starts must be 1 or more');
if (opt.warm !== 'together' && opt.warm !== 'alone') fail('--warm is together or alone');
const sliceS = Number(opt.slice);
const connections = Number(opt.connections);
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

  /** One side: row `v` on `port` with Node flags `nodeFlags`; its request checked before it is measured. */
  const side = async (name, v, nodeFlags, port) => {
    let proc;
    let token = null;
    if (v.kind === 'warden') {
      const file = join(WORK, 'warden', `${name}-${v.id}-${port}.yaml`);
      writeFileSync(file, variantYaml(v, { port, upstreamPort, redisUrl: redis?.url, vaultKey, workDir: WORK, bigPolicies }));
      token = v.auth ? mintToken(clis[name], file, dataDir, v.mcp ? 'mcp' : undefined) : null;
      // node runs cli.js with the side's flags, so the bin does not re-exec with its own.
      const env = { ...wardenEnv(v, dataDir), WARDEN_NODE_FLAGS_APPLIED: 'off' };
      proc = tracker.start(name, process.execPath, [...nodeFlags, clis[name], 'start', '-c', file], { cpus: opt['sut-cpu'], env, logFile: '/dev/null' });
      await waitForHttp(`http://127.0.0.1:${port}/.warden/healthz`, { proc, timeoutMs: v.warden.tuples ? 180_000 : 30_000 });
    } else {
      proc = tracker.start(name, process.execPath, [...nodeFlags, ...proxyServerArgs(v, port, upstreamOrigin)], {
        cpus: opt['sut-cpu'],
        logFile: join(WORK, 'logs', `${name}-${v.id}.log`),
      });
      await waitForHttp(`http://127.0.0.1:${port}/api/items/42`, { proc });
    }
    const request = requestFor(v, token);
    const script = writeWrkScript(WORK, `${name}-${v.id}-${port}`, request);
    const origin = `http://127.0.0.1:${port}`;
    // run.mjs's checks: the upstream's answer, the chain really running (an MCP tool pinned by its tools/list).
    await probe(v, { url: origin }, request);
    return { name, id: v.id, url: origin + concrete(request).path, script, proc, request: concrete(request) };
  };

  /** After each slice: the side still answers with the upstream's answer (a refusal would be measured as one). */
  const check = async (s) => {
    const { request } = s;
    const r = await fetch(s.url, { method: request.method ?? 'GET', headers: request.headers, body: request.body });
    const text = await r.text();
    if (r.status !== 200 || (request.expect != null && text !== request.expect))
      throw new Error(`side ${s.name} (${s.id}) answered ${r.status} with ${JSON.stringify(text.slice(0, 200))}, not the upstream's answer`);
  };

  /**
   * Warm the sides up (load.mjs warmUp): `together` (the default) loads both at once, as they are then
   * measured, so neither sits idle while the other warms; `alone` warms each in turn on the whole core.
   * Returns what each side took.
   */
  const warmUpSides = async (sides) => {
    const options = { min: Number(opt.warmup), max: Number(opt['warmup-max']), connections, cpus: loadCpu };
    // At the cap with a rate still rising: measured anyway, and said so.
    const took = (w, i) => `${w.seconds} s${warmedUp(w.rates[i], { min: options.min }) ? '' : ' (still rising)'}`;
    if (opt.warm === 'alone') {
      const each = [];
      for (const s of sides) each.push(took(await warmUp([s], options), 0));
      return each;
    }
    const w = await warmUp(sides, options);
    return sides.map((_, i) => took(w, i));
  };

  const load = (sides, seconds) =>
    Promise.all(
      sides.map(async (s) => {
        const cpu0 = cpuTimeUs(s.proc.pid);
        const wrk = await runWrk({ url: s.url, script: s.script, durationSec: seconds, connections, cpus: loadCpu });
        const cpu = cpuTimeUs(s.proc.pid) - cpu0;
        const rss = rssNow(s.proc.pid) / 2 ** 20;
        return {
          name: s.name,
          id: s.id,
          rps: wrk.rps,
          requests: wrk.requests,
          errors: wrk.non2xx + wrk.socket_errors,
          cpuUsPerReq: cpu / Math.max(1, wrk.requests),
          rssMb: rss,
        };
      }),
    );

  /** One pair: --starts fresh starts of both sides, alternating which goes first, and the slices' CPU per request of each. */
  const measure = async (pair) => {
    const rowsOf = { A: rowOf(pair.a), B: rowOf(pair.b) };
    const got = [];
    for (let start = 0; start < starts; start++) {
      const ports = [await freePort(), await freePort()];
      const order = start % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
      const sides = [];
      for (const [i, name] of order.entries()) sides.push(await side(name, rowsOf[name], flags[name], ports[i]));
      for (const s of sides) await waitIdle(s.proc.pid);
      const took = await warmUpSides(sides);
      const warm = sides.map((s, i) => `${s.name} ${s.id} ${took[i]}`).join(', ');
      log(`${pair.name}, start ${start + 1} of ${starts}: ${order.join(' then ')} started; warmed up ${opt.warm} (${warm})`);
      for (let i = 0; i < Math.ceil(slices / starts); i++) {
        const by = Object.fromEntries((await load(sides, sliceS)).map((r) => [r.name, r]));
        for (const r of [by.A, by.B])
          if (r.errors > r.requests / 100) throw new Error(`side ${r.name} (${r.id}): ${r.errors} of ${r.requests} requests failed`);
        for (const s of sides) await check(s);
        got.push({ a: by.A.cpuUsPerReq, b: by.B.cpuUsPerReq });
        const fmt = (r) =>
          `${r.name} ${r.id} ${Math.round(r.rps)} req/s ${r.cpuUsPerReq.toFixed(1)} µs/req RSS ${Math.round(r.rssMb)} MB${r.errors ? ` (${r.errors} errors)` : ''}`;
        log(
          `slice: ${fmt(by.A)} | ${fmt(by.B)} | B/A CPU per request ${(by.B.cpuUsPerReq / by.A.cpuUsPerReq).toFixed(3)}, throughput ${(by.A.cpuUsPerReq / by.B.cpuUsPerReq).toFixed(3)}`,
        );
      }
      for (const s of sides) await s.proc.stop();
    }
    return got;
  };

  const results = {};
  const raw = [];
  for (const pair of pairs) {
    const got = await measure(pair);
    const est = pairEstimate(got);
    results[pair.name] = est;
    raw.push({ ...pair, slices: got, estimate: est, cpu_ratio_median: median(got.map((s) => s.b / s.a)) });
    log(`${pair.name}: B/A throughput ${est.median.toFixed(3)} (slices ${est.low.toFixed(3)}–${est.high.toFixed(3)})`);
  }
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
