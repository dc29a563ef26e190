#!/usr/bin/env node
/**
 * Large bodies: what a gateway costs per byte, not per request. The headline
 * rows move bodies of a few hundred bytes; APIs behind Warden also serve
 * files, exports and uploads. For Warden as shipped (a public route: the bin,
 * the default log level and Node flags, one audit line per request) and the
 * Node floor R (bench/servers/node-proxy.mjs on the same flags), this
 * measures, per body size:
 *
 *   - downloads (GET, the answer read to its end) and uploads (POST of the
 *     body, streamed to the upstream): MB/s and requests/s with
 *     `--connections` in flight, and the gateway's CPU per MB and per request;
 *   - the gateway's peak RSS under that load;
 *   - slow readers: agents reading a large answer slower than the upstream
 *     sends it, and the memory each costs the gateway (backpressure, not
 *     buffering).
 *
 *   node bench/bodies.mjs [--downloads 64KB,1MB,16MB] [--uploads 64KB,1MB,8MB]
 *                         [--rows R,W] [--rounds 2] [--duration 8] [--warmup 3]
 *                         [--connections 8] [--slow 50] [--slow-rate 256KB] [--slow-hold 8] [--out DIR]
 *
 * Extra rows: Wd, Warden on V8's default heap sizing (no flags); Ws, Warden
 * with the semi-space flags but V8's own old-generation growth.
 *
 * Uploads above Warden's default `server.limits.body_bytes` (10 MiB) are
 * refused by it (413), so the default sizes stay below. Each round starts
 * each gateway afresh, in alternating order; the figures are medians over
 * the rounds. The gateway is pinned to CPU 0; the upstream
 * (bench/servers/body-upstream.mjs) and the clients (bench/lib/body-client.mjs)
 * run on CPU 1.
 */

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { benchWorkspace, cpuTimeUs, freePort, peakRss, resetPeakRss, rssNow, sleep, toolOptions, waitForHttp } from './lib/system.mjs';
import { ensureBuilt, newVaultKey, wardenEnv, wardenYaml, writePolicies } from './lib/warden.mjs';
import { VARIANTS, WARDEN_NODE_FLAGS, proxyServerArgs } from './lib/variants.mjs';
import { median } from './lib/stats.mjs';
import { bodiesMarkdown, parseSize, summarizeBodies } from './lib/bodies-report.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH, '..');
const R = VARIANTS.find((v) => v.id === 'R');
const SHIPPED_FLAGS = WARDEN_NODE_FLAGS.split(/\s+/);
/** The rows: their names in the report, whether they are Warden, and the Node flags they run with. */
const ROWS = {
  R: { name: 'R', flags: SHIPPED_FLAGS },
  W: { name: 'Warden', warden: true, flags: SHIPPED_FLAGS },
  Wd: { name: 'Warden on V8 defaults (extra)', warden: true, flags: [] },
  Ws: { name: 'Warden, semi-space flags only (extra)', warden: true, flags: SHIPPED_FLAGS.filter((f) => f.includes('semi-space')) },
};

const { opt, fail } = toolOptions(import.meta.url, 'bodies', {
  downloads: { type: 'string', default: '64KB,1MB,16MB' },
  uploads: { type: 'string', default: '64KB,1MB,8MB' },
  rows: { type: 'string', default: 'R,W' },
  rounds: { type: 'string', default: '2' },
  duration: { type: 'string', default: '8' },
  warmup: { type: 'string', default: '3' },
  connections: { type: 'string', default: '8' },
  slow: { type: 'string', default: '50' },
  'slow-rate': { type: 'string', default: '256KB' },
  'slow-hold': { type: 'string', default: '8' },
  'sut-cpu': { type: 'string', default: '0' },
  'load-cpu': { type: 'string', default: '1' },
  out: { type: 'string' },
});
const sizes = (text, what) => {
  if (text === '') return [];
  const list = text.split(',').map(parseSize);
  if (list.some((n) => !(n > 0))) fail(`--${what} is a list of sizes such as 1KB,64KB,1MB`);
  return list;
};
const cases = [
  ...sizes(opt.downloads, 'downloads').map((size) => ({ direction: 'download', size })),
  ...sizes(opt.uploads, 'uploads').map((size) => ({ direction: 'upload', size })),
];
const rowIds = opt.rows.split(',');
for (const id of rowIds)
  if (!Object.hasOwn(ROWS, id))
    fail(`unknown row ${id} (R: the Node floor, W: Warden as shipped; extra: Wd, Warden on V8's default heap; Ws, Warden with the semi-space flags only)`);
const [rounds, duration, warmup, connections, slowReaders, slowHold] = ['rounds', 'duration', 'warmup', 'connections', 'slow', 'slow-hold'].map((k) =>
  Number(opt[k]),
);
const slowRate = parseSize(opt['slow-rate']);
if (!Number.isInteger(rounds) || rounds < 1 || !(duration > 0) || !(warmup >= 0) || !Number.isInteger(connections) || connections < 1)
  fail('--rounds and --connections are positive integers, --duration a positive number of seconds, --warmup ≥ 0');
if (!Number.isInteger(slowReaders) || slowReaders < 0 || !(slowRate > 0) || !(slowHold > 0))
  fail('--slow is a count (0: none), --slow-rate a size per second, --slow-hold seconds');
if (cases.length === 0 && slowReaders === 0) fail('nothing to measure: give --downloads, --uploads or --slow');

const sutCpu = opt['sut-cpu'];
const loadCpu = opt['load-cpu'];
const log = (line) => process.stderr.write(`[bodies ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const { work: WORK, tracker, cleanup } = benchWorkspace(BENCH, 'bodies');

const CLIENT = join(BENCH, 'lib', 'body-client.mjs');

/** Run body-client.mjs on the load CPU; `onLine` sees each JSON report line; resolves with all of them. */
function client(args, onLine = () => {}) {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', loadCpu, process.execPath, CLIENT, ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line);
      lines.push(msg);
      onLine(msg);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(lines) : reject(new Error(`body-client ${args[0]} exited ${code}: ${stderr.slice(0, 1000)}`))));
  });
}

const started = performance.now();
const samples = [];
const slowRuns = [];
try {
  const cli = rowIds.some((id) => ROWS[id].warden) ? ensureBuilt(REPO, join(REPO, 'dist'), { log }) : null;
  const upstreamPort = await freePort();
  const upstreamProc = tracker.start('upstream', process.execPath, [join(BENCH, 'servers', 'body-upstream.mjs'), String(upstreamPort)], {
    cpus: loadCpu,
    logFile: join(WORK, 'logs', 'upstream.log'),
  });
  const upstream = `http://127.0.0.1:${upstreamPort}`;
  await waitForHttp(`${upstream}/items/1`, { proc: upstreamProc });
  if (cli) writePolicies(join(WORK, 'warden', 'policies'));
  const dataDir = join(WORK, 'data');

  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? rowIds : [...rowIds].reverse();
    for (const id of order) {
      const port = await freePort();
      let proc;
      let base;
      if (ROWS[id].warden) {
        const file = join(WORK, 'warden', `bodies-${port}.yaml`);
        // G0's gateway: one public route (/api/items/:id → the upstream's /items/:id).
        writeFileSync(file, wardenYaml({ port, upstreamPort, level: 0, vaultKey: newVaultKey() }));
        // As shipped (default log level); node runs cli.js with the bin's flags, so the bin does not re-exec.
        // (WARDEN_NODE_FLAGS_APPLIED=off: the flags given here, or none, are the ones it runs with.)
        const env = { ...wardenEnv({}, dataDir), WARDEN_NODE_FLAGS_APPLIED: 'off' };
        proc = tracker.start('W', process.execPath, [...ROWS[id].flags, cli, 'start', '-c', file], {
          cpus: sutCpu,
          env,
          cwd: join(WORK, 'warden'),
          logFile: join(WORK, 'logs', `W-${round}.log`),
        });
        await waitForHttp(`http://127.0.0.1:${port}/.warden/healthz`, { proc });
        base = `http://127.0.0.1:${port}/api/items`;
      } else {
        proc = tracker.start('R', process.execPath, [...ROWS[id].flags, ...proxyServerArgs(R, port, upstream)], {
          cpus: sutCpu,
          logFile: join(WORK, 'logs', `R-${round}.log`),
        });
        await waitForHttp(`http://127.0.0.1:${port}/items/1`, { proc });
        base = `http://127.0.0.1:${port}/items`;
      }
      const name = ROWS[id].name;
      for (const { direction, size } of cases) {
        const args = direction === 'download' ? [`${base}/${size}`, 'GET', size] : [`${base}/upload`, 'POST', size];
        if (warmup > 0) await client(['load', ...args, connections, warmup]);
        resetPeakRss(proc.pid);
        const cpu0 = cpuTimeUs(proc.pid);
        const [run] = await client(['load', ...args, connections, duration]);
        const cpu = cpuTimeUs(proc.pid) - cpu0;
        if (run.errors > 0)
          throw new Error(
            `${name}: ${run.errors} of the ${direction}s of ${size} bytes failed${direction === 'upload' && ROWS[id].warden ? ' (an upload above server.limits.body_bytes, 10 MiB by default, is refused)' : ''}`,
          );
        const sample = {
          round,
          row: name,
          direction,
          size,
          requests: run.requests,
          bytes: run.bytes,
          seconds: run.seconds,
          cpu_us: cpu,
          peak_rss_mb: peakRss(proc.pid) / 2 ** 20,
        };
        samples.push(sample);
        log(
          `round ${round} ${name} ${direction} ${size} B: ${(run.bytes / 2 ** 20 / run.seconds).toFixed(1)} MB/s, ${run.requests} requests, ${(cpu / (run.bytes / 2 ** 20)).toFixed(0)} µs CPU per MB`,
        );
      }
      if (slowReaders > 0) {
        await sleep(1_000);
        const rss0 = rssNow(proc.pid);
        let rss1 = 0;
        // 1 GB answers: no reader gets near the end in the hold.
        const lines = await client(['slow', `${base}/${2 ** 30}`, slowReaders, slowRate, slowHold], (msg) => {
          if (msg.read !== undefined) rss1 = rssNow(proc.pid);
        });
        const read = lines.find((m) => m.read !== undefined)?.read ?? 0;
        slowRuns.push({ round, row: name, readers: slowReaders, rate: slowRate, rss0, rss1, read });
        log(`round ${round} ${name} ${slowReaders} slow readers: RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MB`);
      }
      await proc.stop();
    }
  }
  const results = summarizeBodies(samples);
  const slow = rowIds
    .map((id) => ROWS[id].name)
    .flatMap((row) => {
      const runs = slowRuns.filter((s) => s.row === row);
      if (!runs.length) return [];
      return [
        {
          row,
          readers: slowReaders,
          rate: slowRate,
          rss_before_mb: +median(runs.map((s) => s.rss0 / 2 ** 20)).toFixed(0),
          rss_with_mb: +median(runs.map((s) => s.rss1 / 2 ** 20)).toFixed(0),
          kb_per_reader: +median(runs.map((s) => (s.rss1 - s.rss0) / 1024 / slowReaders)).toFixed(0),
          read_mb: +median(runs.map((s) => s.read / 2 ** 20)).toFixed(1),
        },
      ];
    });
  const seconds = Math.round((performance.now() - started) / 1000);
  const md = bodiesMarkdown(results, slow, {
    header: `Large bodies: each gateway pinned to CPU ${sutCpu}, upstream and clients on CPU ${loadCpu}, Node flags ${SHIPPED_FLAGS.join(' ')} (R and Warden; the extra rows say their own), ${connections} connections, ${rounds} round(s) of ${duration} s per case after ${warmup} s of warm-up; ${seconds} s. Node ${process.version}.\n`,
  });
  process.stdout.write(md);
  if (opt.out) {
    mkdirSync(opt.out, { recursive: true });
    writeFileSync(join(opt.out, 'bodies.md'), md);
    writeFileSync(
      join(opt.out, 'bodies.json'),
      JSON.stringify(
        { at: new Date().toISOString(), node: process.version, seconds, connections, rounds, duration, warmup, results, slow, samples, slow_runs: slowRuns },
        null,
        2,
      ) + '\n',
    );
    log(`wrote ${join(opt.out, 'bodies.md')} and bodies.json`);
  }
} finally {
  cleanup();
}
