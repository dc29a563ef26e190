#!/usr/bin/env node
/**
 * Two sets of Node flags for Warden, measured at the same time: both serve the
 * same row's configuration (G3 by default) on the same pinned core, each under
 * its own wrk with the same connections, in the same seconds. A busy host slows
 * both alike, so the ratio of their CPU per request is what the flags change,
 * where rows measured one after the other (bench/run.mjs) differ by ±20 % from
 * round to round on a shared machine.
 *
 *   node bench/side-by-side.mjs --a="--min-semi-space-size=8 --max-semi-space-size=8" \
 *        --b="--min-semi-space-size=8 --max-semi-space-size=8 --heap-growing-percent=20" [--variant G3] \
 *        [--slices 6] [--slice 10] [--warmup 15]
 *
 * Prints, per slice, each side's req/s, CPU µs per request and RSS, and the
 * ratio B/A of CPU per request; then the median ratio. The sides swap ports
 * and start order halfway, so neither gains from going first.
 */

import { parseArgs } from 'node:util';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTimeUs, createProcessTracker, freePort, waitForHttp, waitIdle } from './lib/system.mjs';
import { startUpstream } from './lib/nginx.mjs';
import { runWrk, writeWrkScript } from './lib/load.mjs';
import { ensureBuilt, mintToken, newVaultKey, seedVault, startRedis, variantYaml, writePolicies } from './lib/warden.mjs';
import { VARIANTS, requestFor } from './lib/variants.mjs';
import { median } from './lib/report.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH, '..');

const { values: opt } = parseArgs({
  options: {
    a: { type: 'string', default: '' },
    b: { type: 'string', default: '' },
    variant: { type: 'string', default: 'G3' },
    slices: { type: 'string', default: '6' },
    slice: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '15' },
    connections: { type: 'string', default: '16' },
    'sut-cpu': { type: 'string', default: '0' },
    'load-cpu': { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opt.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0] + '*/\n');
  process.exit(0);
}

const v = VARIANTS.find((x) => x.id === opt.variant);
if (!v || v.kind !== 'warden' || v.needs?.includes('openfga') || v.warden.tuples || (v.warden.workers ?? 1) > 1) {
  process.stderr.write(`side-by-side: ${opt.variant} is not a Warden row this tool can run (one process, no OpenFGA, no generated tuples)\n`);
  process.exit(2);
}
const flags = { A: opt.a.split(/\s+/).filter(Boolean), B: opt.b.split(/\s+/).filter(Boolean) };
const slices = Number(opt.slices);
const sliceS = Number(opt.slice);
const log = (line) => process.stderr.write(`[side-by-side] ${line}\n`);

const WORK = join(BENCH, '.work', `side-${process.pid}`);
mkdirSync(join(WORK, 'logs'), { recursive: true });
const tracker = createProcessTracker();
const cleanup = () => {
  tracker.killAll();
  rmSync(WORK, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  const cli = ensureBuilt(REPO, join(REPO, 'dist'), { log });
  const { port: upstreamPort } = await startUpstream(tracker, WORK, opt['load-cpu']);
  const vaultKey = newVaultKey();
  const redis = v.warden.redis ? await startRedis(tracker, WORK, opt['load-cpu']) : null;
  if (redis) await seedVault(join(REPO, 'dist'), redis.url, vaultKey);
  writePolicies(join(WORK, 'warden', 'policies'));
  const dataDir = join(WORK, 'data');

  /** One side: its config on a port, its token and wrk script, its process. */
  const side = async (name, port) => {
    const file = join(WORK, 'warden', `${name}-${port}.yaml`);
    writeFileSync(file, variantYaml(v, { port, upstreamPort, redisUrl: redis?.url, vaultKey, workDir: WORK }));
    const token = v.auth ? mintToken(cli, file, dataDir, v.mcp ? 'mcp' : undefined) : null;
    const request = requestFor(v, token);
    const script = writeWrkScript(WORK, `${name}-${port}`, request);
    const env = { ...process.env, WARDEN_DATA_DIR: dataDir, NODE_ENV: 'development', WARDEN_NODE_FLAGS_APPLIED: 'off' };
    delete env.WARDEN_LOG_LEVEL;
    const proc = tracker.start(name, process.execPath, [...flags[name], cli, 'start', '-c', file], {
      cpus: opt['sut-cpu'],
      env,
      logFile: '/dev/null',
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/.warden/healthz`, { proc });
    // A side that refuses the row's request would measure its refusals: one must pass first.
    const probe = await fetch(url + request.path, { method: request.method ?? 'GET', headers: request.headers, body: request.body });
    if (probe.status !== 200) throw new Error(`side ${name} answered ${probe.status} to ${v.id}'s request: ${(await probe.text()).slice(0, 200)}`);
    return { name, url: url + request.path, script, proc };
  };

  const load = (sides, seconds) =>
    Promise.all(
      sides.map(async (s) => {
        const cpu0 = cpuTimeUs(s.proc.pid);
        const wrk = await runWrk({ url: s.url, script: s.script, durationSec: seconds, connections: Number(opt.connections), cpus: opt['load-cpu'] });
        const cpu = cpuTimeUs(s.proc.pid) - cpu0;
        const rss = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${s.proc.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
        return {
          name: s.name,
          rps: wrk.rps,
          requests: wrk.requests,
          errors: wrk.non2xx + wrk.socket_errors,
          cpuUsPerReq: cpu / Math.max(1, wrk.requests),
          rssMb: rss,
        };
      }),
    );

  const ratios = [];
  for (const half of [0, 1]) {
    const ports = [await freePort(), await freePort()];
    const order = half === 0 ? ['A', 'B'] : ['B', 'A'];
    const sides = [];
    for (const [i, name] of order.entries()) sides.push(await side(name, ports[i]));
    for (const s of sides) await waitIdle(s.proc.pid);
    log(`half ${half + 1}: ${order.join(' then ')} started; warming up ${opt.warmup} s`);
    await load(sides, Number(opt.warmup));
    for (let i = 0; i < Math.ceil(slices / 2); i++) {
      const got = Object.fromEntries((await load(sides, sliceS)).map((r) => [r.name, r]));
      const ratio = got.B.cpuUsPerReq / got.A.cpuUsPerReq;
      for (const r of [got.A, got.B]) if (r.errors > r.requests / 100) throw new Error(`side ${r.name}: ${r.errors} of ${r.requests} requests failed`);
      ratios.push(ratio);
      const fmt = (r) =>
        `${r.name} ${Math.round(r.rps)} req/s ${Math.round(r.cpuUsPerReq)} µs/req RSS ${Math.round(r.rssMb)} MB${r.errors ? ` (${r.errors} errors)` : ''}`;
      log(`slice: ${fmt(got.A)} | ${fmt(got.B)} | B/A CPU per request ${ratio.toFixed(3)}`);
    }
    for (const s of sides) await s.proc.stop();
  }
  const m = median(ratios);
  process.stdout.write(JSON.stringify({ variant: v.id, a: opt.a, b: opt.b, ratios: ratios.map((r) => +r.toFixed(3)), median: +m.toFixed(3) }) + '\n');
} finally {
  cleanup();
}
