#!/usr/bin/env node
/**
 * Warden's load harness (`npm run bench`). Starts a static nginx upstream and,
 * one after another, every system under test; measures throughput with wrk,
 * repeats in alternating order; then measures latency of every row at one fixed
 * rate (open loop: the highest rate at which every headline row G0–G4 keeps its
 * pinned core and the load core ≤ 60 % busy, from an open-loop calibration of
 * each right after its last round; bench/lib/latency-rate.mjs; or --rate);
 * writes medians, ratios and the issue's targets to bench/results/latest.{json,md}.
 * A full run (no --variants, no --quick) also builds the commit before the
 * redesign (bench/lib/baseline.mjs) and measures it as G0q@pre, G3q@pre, G4q@pre
 * next to G0q, G3q, G4q (#11); --baseline REF / --baseline none choose.
 * See docs/performance.md for what each variant measures and how to read it.
 *
 *   node bench/run.mjs                                  # everything (≈ 45 min on 2 cores, ≈ 30 more when paired)
 *   node bench/run.mjs --quick                          # D,N,R,F,G0,G3, 1 round, short runs
 *   node bench/run.mjs --variants D,R,G0,G3 --rounds 1 --duration 5
 *   node bench/run.mjs --variants G0,G3 --profile       # + CPU profiles of Warden and the Node rows (bench/profiles/)
 *   node bench/run.mjs --variants R,G0q,G3q,G4q --baseline bcc2b87 --rounds 1 --duration 5
 *   node bench/run.mjs --variants D,R,G3 --rounds 1 --trace-gc --latency-samples   # tail analysis
 *   node bench/run.mjs --stop-unsteady                  # a full run that ends after a round the host check already fails
 *
 * When the rounds fail their host check (rows measured one after the other on a host whose speed moved more than
 * the rows' work differs), a full run then measures each target's two rows at the same time on one core
 * (bench/lib/paired-runner.mjs, ~30 min), and the report gives those paired targets too: --paired auto|always|off.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import {
  cpuCount,
  cpuTimeUs,
  createProcessTracker,
  ensureTools,
  exitOnSignals,
  freePort,
  peakRss,
  peakRssSplit,
  pinTree,
  resetPeakRss,
  runQueueWaitUs,
  sleep,
  toolOptions,
  waitForHttp,
  waitIdle,
} from './lib/system.mjs';
import { startUpstream, writeProxyConf } from './lib/nginx.mjs';
import { mergeWrk, runLatency, runWrk, warmUp, writeWrkScript } from './lib/load.mjs';
import { concrete, probe } from './lib/probe.mjs';
import {
  ensureBuilt,
  mintToken,
  newVaultKey,
  seedVault,
  startOpenFga,
  startRedis,
  variantYaml,
  wardenEnv,
  writeBigPolicies,
  writePolicies,
} from './lib/warden.mjs';
import { DEFAULT_VARIANTS, HEADLINE_VARIANTS, QUICK_VARIANTS, VARIANTS, WARDEN_NODE_FLAGS, proxyServerArgs, requestFor } from './lib/variants.mjs';

const BASELINE_FLAGS = WARDEN_NODE_FLAGS.split(/\s+/);
import { beforeRedesign, hostCheck, markdown, ratios, roundOutOfOrder, summarize, targets } from './lib/report.mjs';
import { CALIBRATION_RATE, describeRate, latencyRate, parseTraceGc, UTILISATION, utilisationAt } from './lib/latency-rate.mjs';
import { BASELINE_REF, BASELINE_ROWS, baselineRatios, buildBaseline, preId } from './lib/baseline.mjs';
import { TARGET_PAIRS, pairedTargets } from './lib/paired.mjs';
import { PAIRED_DEFAULTS, measurePairs, pairable } from './lib/paired-runner.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH, '..');
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

const { opt } = toolOptions(import.meta.url, 'bench', {
  variants: { type: 'string' },
  rounds: { type: 'string' },
  duration: { type: 'string' },
  // Each row's measured load as N consecutive wrk runs of duration / N seconds, each one's req/s kept (see measure).
  slices: { type: 'string' },
  'latency-duration': { type: 'string' },
  warmup: { type: 'string' },
  'warmup-max': { type: 'string' },
  rate: { type: 'string' },
  'calibration-rate': { type: 'string' },
  // GC pauses of the latency runs (node --trace-gc on Warden, R and F; output to a log file instead of /dev/null).
  'trace-gc': { type: 'boolean', default: false },
  // One CSV per row of the latency run's requests (issue time, latency, send lag) in <out>/latency-samples/.
  'latency-samples': { type: 'boolean', default: false },
  // #11: a commit to build and measure as G0q@pre, G3q@pre, G4q@pre ('none': off; default: on for a full run).
  baseline: { type: 'string' },
  connections: { type: 'string', default: '32' },
  'latency-connections': { type: 'string', default: '64' },
  'latency-tool': { type: 'string', default: 'paced' },
  quick: { type: 'boolean', default: false },
  build: { type: 'boolean', default: false },
  'no-build': { type: 'boolean', default: false },
  dist: { type: 'string' },
  profile: { type: 'boolean', default: false },
  'no-micro': { type: 'boolean', default: false },
  // Stop after a round in which a heavier row outran its lighter pair (the host check cannot pass any more).
  'stop-unsteady': { type: 'boolean', default: false },
  // The targets' pairs measured at the same time (bench/lib/paired-runner.mjs) after the rounds: auto (when the
  // host check failed; a full run's default), always, off (the default with --variants or --quick).
  paired: { type: 'string' },
  'sut-cpu': { type: 'string', default: '0' },
  'load-cpu': { type: 'string', default: '1' },
  out: { type: 'string' },
  // Extra Node flags for Warden rows, to try tunings; the bin already applies WARDEN_NODE_FLAGS itself.
  'node-flags': { type: 'string', default: '' },
});

const quick = opt.quick;
const cfg = {
  variants: (opt.variants ?? (quick ? QUICK_VARIANTS : DEFAULT_VARIANTS).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  rounds: Number(opt.rounds ?? (quick ? 1 : 3)),
  duration: Number(opt.duration ?? (quick ? 4 : 7)),
  slices: Number(opt.slices ?? 1),
  latencyDuration: Number(opt['latency-duration'] ?? (quick ? 3 : 6)),
  // Warm-up: at least `warmup` seconds, then on until the rate stops rising (warmedUp), at most `warmupMax`.
  warmup: Number(opt.warmup ?? (quick ? 1 : 2)),
  warmupMax: Number(opt['warmup-max'] ?? (quick ? (opt.warmup ?? 1) : 30)),
  connections: Number(opt.connections),
  latencyConnections: Number(opt['latency-connections']),
  latencyTool: opt['latency-tool'],
  sutCpu: opt['sut-cpu'],
  loadCpu: opt['load-cpu'],
  dist: resolve(opt.dist ?? process.env.WARDEN_BENCH_DIST ?? join(REPO, 'dist')),
  outDir: resolve(opt.out ?? join(BENCH, 'results')),
  profile: opt.profile,
  /** Extra node flags for the Warden processes (e.g. "--max-semi-space-size=8"), to try tunings (they replace the bin's own semi-space flags). */
  nodeFlags: opt['node-flags'].split(/\s+/).filter(Boolean),
  calibrationRate: Number(opt['calibration-rate'] ?? CALIBRATION_RATE),
  traceGc: opt['trace-gc'],
  latencySamples: opt['latency-samples'],
  // The pre-redesign build: by default in a full run (every variant), else only when asked.
  baseline: opt.baseline === 'none' ? null : (opt.baseline ?? (opt.variants || quick ? null : BASELINE_REF)),
  paired: opt.paired ?? (opt.variants || quick ? 'off' : 'auto'),
};
if (!['auto', 'always', 'off'].includes(cfg.paired)) throw new Error(`--paired ${opt.paired}: auto, always or off`);
if (!Number.isInteger(cfg.slices) || cfg.slices < 1 || !Number.isInteger(cfg.duration / cfg.slices))
  throw new Error(`--slices ${opt.slices}: must be a whole number that divides --duration (${cfg.duration} s) into whole seconds`);
for (const id of cfg.variants)
  if (!VARIANTS.some((v) => v.id === id)) throw new Error(`unknown variant ${id} (known: ${VARIANTS.map((v) => v.id).join(', ')})`);
// D runs whenever latency is measured: every row's latency reads against it (added latency = row − D).
if (cfg.latencyDuration > 0 && !cfg.variants.includes('D')) cfg.variants.unshift('D');
// The baseline's ratios need R and today's quiet rows in the same run.
if (cfg.baseline) for (const id of ['R', ...BASELINE_ROWS]) if (!cfg.variants.includes(id)) cfg.variants.push(id);
const selected = VARIANTS.filter((v) => cfg.variants.includes(v.id));
// G0q@pre, G3q@pre, G4q@pre: today's quiet rows (same config, flags, pinning, request) on the old build, each
// measured right after its twin (before it in even rounds), so that the host's drift hits both alike.
if (cfg.baseline)
  for (const id of BASELINE_ROWS) {
    const at = selected.findIndex((v) => v.id === id);
    const base = selected[at];
    selected.splice(at + 1, 0, { ...base, id: preId(id), what: `extra: ${id} on the build of ${cfg.baseline} (before the redesign, #11)`, baseline: true });
  }
const needs = new Set(selected.flatMap((v) => v.needs ?? []));

// ------------------------------------------------------------ setup

ensureTools(
  { nginx: 'nginx', wrk: 'wrk', taskset: 'util-linux', ...(needs.has('redis') ? { 'redis-server': 'redis-server', 'redis-cli': 'redis-tools' } : {}) },
  log,
);
if (cpuCount() < 2) {
  log('warning: one CPU only; the system under test and the load generator share it');
  cfg.sutCpu = cfg.loadCpu = '0';
}

function newestMtime(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}
const cliPath = join(cfg.dist, 'src', 'cli.js');
// tsc rewrites .tsbuildinfo on every build (unchanged outputs keep their mtime).
const buildStamp = [join(cfg.dist, '.tsbuildinfo'), cliPath].find((p) => existsSync(p));
const stale = buildStamp !== undefined && newestMtime(join(REPO, 'src')) > statSync(buildStamp).mtimeMs;
const cli =
  selected.some((v) => v.kind === 'warden') || !opt['no-micro'] ? ensureBuilt(REPO, cfg.dist, { build: opt.build || (stale && !opt['no-build']), log }) : null;

// #11: the old build, in a temporary worktree removed when the run ends.
let baseline = null;
if (cfg.baseline) {
  try {
    baseline = buildBaseline(REPO, cfg.baseline, { log });
    process.once('exit', () => baseline.remove());
  } catch (err) {
    log(`baseline rows skipped: ${err.message.slice(0, 500)}`);
  }
}

// Per-run scratch space, so two runs on one machine never share configs or pid files.
const WORK = join(BENCH, '.work', String(process.pid));
rmSync(WORK, { recursive: true, force: true });
mkdirSync(join(WORK, 'logs'), { recursive: true });
const PROFILES = join(BENCH, 'profiles');
if (cfg.profile) mkdirSync(PROFILES, { recursive: true });
const DATA_DIR = join(WORK, 'data');
const DATA_DIR_PRE = join(WORK, 'data-pre');
const tracker = createProcessTracker();
// The work directory stays (logs of failed rounds are kept for inspection).
exitOnSignals(tracker.killAll);

const { proc: upstream, port: upstreamPort, origin: upstreamOrigin } = await startUpstream(tracker, WORK, cfg.loadCpu);
log(`upstream nginx on ${upstreamOrigin} (CPU ${cfg.loadCpu})`);

let redis = null;
let openfga = null;
const vaultKey = newVaultKey();
if (needs.has('redis')) {
  redis = await startRedis(tracker, WORK, cfg.loadCpu);
  await seedVault(cfg.dist, redis.url, vaultKey);
  log(`redis on ${redis.url}; vault connection seeded for the bench user`);
}
// Without OpenFGA the G2o rows are reported as failed; the rest of the run goes on.
const unavailable = new Map();
const PRE_KEY_PREFIX = 'wbenchpre:';
if (cfg.baseline) {
  for (const v of selected) if (v.baseline && !baseline) unavailable.set(v.id, 'the baseline build failed (see the log)');
  if (baseline && redis) {
    try {
      // The old build reads its vault records with its own code, under its own key prefix.
      await seedVault(baseline.dist, redis.url, vaultKey, PRE_KEY_PREFIX);
    } catch (err) {
      for (const v of selected)
        if (v.baseline && v.needs?.includes('redis')) unavailable.set(v.id, `seeding the old build's vault failed: ${err.message.slice(0, 200)}`);
    }
  }
}
if (needs.has('openfga')) {
  try {
    openfga = await startOpenFga(tracker, WORK, cfg.loadCpu, {
      objects: Math.max(0, ...selected.filter((v) => v.needs?.includes('openfga') || v.kind === 'openfga').map((v) => v.spread ?? 0)),
    });
    log(`openfga on ${openfga.apiUrl}, store ${openfga.storeId}`);
  } catch (err) {
    log(`openfga unavailable: ${err.message}`);
    for (const v of selected) if (v.needs?.includes('openfga')) unavailable.set(v.id, `openfga unavailable: ${err.message.slice(0, 200)}`);
  }
}

// Per-variant fixed port, config and token (tokens are bound to the listener's public URL).
const wardenSetup = new Map();
if (selected.some((v) => v.kind === 'warden')) writePolicies(join(WORK, 'warden', 'policies'));
// G2e1m: the embedded engine at size (generated once per run).
const bigPolicies = new Map();
for (const n of new Set(selected.map((v) => v.warden?.tuples).filter(Boolean))) {
  log(`generating ${n} tuples (bench/gen-tuples.mjs)`);
  bigPolicies.set(n, await writeBigPolicies(join(WORK, 'warden'), n));
}
for (const v of selected) {
  const port = await freePort();
  if (v.kind !== 'warden' || unavailable.has(v.id)) {
    wardenSetup.set(v.id, { port });
    continue;
  }
  const file = join(WORK, 'warden', `${v.id}.yaml`);
  writeFileSync(
    file,
    variantYaml(v, {
      port,
      upstreamPort,
      redisUrl: redis?.url,
      vaultKey,
      openfga,
      workDir: WORK,
      bigPolicies,
      keyPrefix: v.baseline ? PRE_KEY_PREFIX : undefined,
    }),
  );
  // A baseline build: its own CLI mints its token. An MCP token is bound to the route's resource (RFC 8707) when
  // that build knows `warden token --route` (a recent --baseline); the build before the redesign had no --route.
  const dataDir = v.baseline ? DATA_DIR_PRE : DATA_DIR;
  const by = v.baseline ? baseline.cli : cli;
  let token = null;
  try {
    if (v.auth) token = mintRowToken(v, by, file, dataDir);
  } catch (err) {
    if (!v.baseline) throw err;
    unavailable.set(v.id, err.message.slice(0, 300));
  }
  wardenSetup.set(v.id, { port, file, token, dataDir, cli: by });
}

/** A row's token from its build's CLI: bound to the MCP route when it is one (unbound for a baseline without --route). */
function mintRowToken(v, by, file, dataDir) {
  if (!v.mcp) return mintToken(by, file, dataDir);
  try {
    return mintToken(by, file, dataDir, 'mcp');
  } catch (err) {
    if (!v.baseline) throw err;
    return mintToken(by, file, dataDir);
  }
}

// ------------------------------------------------------------ systems under test

/** --profile: node's flags for a CPU profile of row `v` in `round` (pinned rows only), in bench/profiles/. */
const profileFlags = (v, round) =>
  cfg.profile && v.pinned !== false ? ['--cpu-prof', '--cpu-prof-dir', PROFILES, '--cpu-prof-name', `${v.id}-r${round}.cpuprofile`] : [];

/**
 * --profile: beside a round's profile, what the harness measured in it (the
 * row's CPU µs per request), so that profile-summary.mjs --against can compare
 * two rows' profiles per request.
 */
function writeProfileMeta(v, round, s) {
  if (!cfg.profile || v.pinned === false || !s.cpu_us_per_request) return;
  const meta = { row: v.id, round, rps: s.wrk.rps, sut_cpu_us_per_request: s.cpu_us_per_request.sut };
  writeFileSync(join(PROFILES, `${v.id}-r${round}.meta.json`), JSON.stringify(meta, null, 2) + '\n');
}

async function startSut(v, round) {
  const { port, file, token, dataDir, cli: wardenCli } = wardenSetup.get(v.id);
  const cpus = v.pinned === false ? null : cfg.sutCpu;
  const logFile = join(WORK, 'logs', `${v.id}.log`);
  // --trace-gc: the latency run's Node processes print their GC pauses to a log of their own.
  const traceGc = cfg.traceGc && round === 'lat';
  const gcLog = join(WORK, 'logs', `${v.id}-gc.log`);
  let proc;
  let loadMs = null;
  const url = `http://127.0.0.1:${port}`;
  switch (v.kind) {
    case 'openfga':
      // F0: OpenFGA itself is the system under test, where it runs for G2m (the load CPU).
      return { url: openfga.apiUrl, pid: openfga.proc.pid, stop: async () => {} };
    case 'direct':
      pinTree(upstream.pid, cfg.sutCpu);
      return { url: upstreamOrigin, pid: upstream.pid, stop: async () => pinTree(upstream.pid, cfg.loadCpu) };
    case 'nginx': {
      const prefix = join(WORK, `nginx-${v.id}-${round}`);
      proc = tracker.start(v.id, 'nginx', ['-c', writeProxyConf(prefix, port, upstreamPort, v.workers), '-p', prefix], { cpus, logFile });
      break;
    }
    case 'node':
    case 'fastify':
      // R and F run with the Node flags Warden's bin applies to itself.
      // --profile: R, RP, RPb and F are profiled too (their profile is the floor a Warden row's is read against).
      proc = tracker.start(
        v.id,
        process.execPath,
        [...BASELINE_FLAGS, ...(traceGc ? ['--trace-gc'] : []), ...profileFlags(v, round), ...proxyServerArgs(v, port, upstreamOrigin)],
        {
          cpus,
          logFile: traceGc ? gcLog : logFile,
        },
      );
      break;
    case 'warden': {
      const flags = profileFlags(v, round);
      // Headline rows run the bin as shipped: `cli.js start` executed as a file, as `warden start` and `npx warden
      // start` do (its `#!/usr/bin/env -S node …` line gives node Warden's flags; `env` finds this node first on
      // PATH), default log level (info: one audit line per request, written to /dev/null: its cost is serializing
      // and writing, not the disk).
      const env = wardenEnv(v, dataDir);
      delete env.WARDEN_NODE_FLAGS_APPLIED;
      // G3d: opt out of the bin's flags (V8 defaults). --node-flags / --profile: flags given here replace the re-exec.
      if (v.defaultHeap) env.WARDEN_NODE_FLAGS_APPLIED = 'off';
      // Profiling: give the flags here, so the bin does not re-exec (the profile is then of the serving process).
      // --trace-gc: the flags go on the command line too (V8 flags are not allowed in NODE_OPTIONS).
      // The old build (#11 rows) predates the bin's re-exec: node gets Warden's flags on its command line, as that run did.
      if (traceGc) flags.push('--trace-gc');
      const tuned = v.nodeFlags ?? cfg.nodeFlags;
      const nodeFlags = (flags.length || v.baseline) && !v.defaultHeap && tuned.length === 0 ? BASELINE_FLAGS : tuned;
      const asBin = !flags.length && !v.defaultHeap && tuned.length === 0 && !v.baseline;
      env.PATH = `${dirname(process.execPath)}${delimiter}${env.PATH ?? ''}`;
      const spawned = performance.now();
      const out = traceGc ? gcLog : '/dev/null';
      proc = asBin
        ? tracker.start(v.id, wardenCli, ['start', '-c', file], { cpus, env, logFile: out })
        : tracker.start(v.id, process.execPath, [...nodeFlags, ...flags, wardenCli, 'start', '-c', file], { cpus, env, logFile: out });
      await waitForHttp(`${url}/.warden/healthz`, { proc, timeoutMs: v.warden.tuples ? 180_000 : 30_000 });
      loadMs = performance.now() - spawned;
      // healthz answers as soon as the first worker listens; give the others time to start.
      if ((v.warden.workers ?? 1) > 1) await sleep(2_000);
      break;
    }
  }
  if (v.kind !== 'warden') await waitForHttp(`${url}/api/items/42`, { proc });
  // Start-up work still running on other threads (GC after a big load) is not the measured requests' cost.
  if (proc.pid) await waitIdle(proc.pid);
  return { url, pid: proc.pid, token, loadMs, gcLog: traceGc && v.kind !== 'nginx' ? gcLog : null, stop: () => proc.stop() };
}

const wrkScripts = new Map();
function wrkScriptFor(v, request) {
  if (!wrkScripts.has(v.id)) wrkScripts.set(v.id, writeWrkScript(WORK, v.id, request));
  return wrkScripts.get(v.id);
}

/** Connections the upstream has accepted so far (nginx stub_status). */
async function upstreamAccepts() {
  const text = await fetch(`${upstreamOrigin}/__bench/status`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.text());
  const m = /server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)/.exec(text);
  return m ? { accepts: Number(m[1]), requests: Number(m[3]) } : { accepts: 0, requests: 0 };
}

/** Commands Redis has run so far (INFO commandstats): all, including those a script runs, and the script calls alone. */
function redisCommands() {
  if (!redis) return null;
  const r = spawnSync('redis-cli', ['-p', String(redis.port), 'INFO', 'commandstats'], { encoding: 'utf8', timeout: 5_000 });
  let all = 0;
  let scripts = 0;
  for (const m of (r.stdout ?? '').matchAll(/^cmdstat_([a-z|_]+):calls=(\d+)/gm)) {
    all += Number(m[2]);
    if (m[1] === 'evalsha' || m[1] === 'eval' || m[1] === 'fcall') scripts += Number(m[2]);
  }
  return { all, scripts };
}

/**
 * Warm a started row up (load.mjs warmUp): at least --warmup seconds, then
 * until its rate stops rising, at most --warmup-max. The warm-up's requests
 * are not measured; what it took is reported (rates of its seconds, and
 * whether the rate settled before the cap).
 */
async function warmUpRow(url, script, cpus) {
  const w = await warmUp([{ url, script }], { min: cfg.warmup, max: cfg.warmupMax, connections: cfg.connections, cpus });
  return { seconds: w.seconds, steady: w.steady, rates: w.rates[0] };
}

/**
 * One row of one round: started, checked, warmed up, loaded for the duration
 * (in `--slices` consecutive wrk runs when asked: each slice's req/s is kept,
 * and shows whether the row was still getting faster), stopped.
 */
async function measure(v, round) {
  const before = await upstreamAccepts();
  const sut = await startSut(v, round);
  const request = requestFor(v, sut.token, openfga);
  const loadCpus = v.pinned === false ? null : cfg.loadCpu;
  const url = sut.url + concrete(request).path;
  try {
    await probe(v, sut, request);
    const script = wrkScriptFor(v, request);
    const warmup = await warmUpRow(url, script, loadCpus);
    // The warm-up is discarded, its memory peak too (start-up, first connections,
    // JIT compilation): the reported peak is that of the measured load.
    const warmupRss = peakRss(sut.pid);
    const peakReset = resetPeakRss(sut.pid);
    // CPU per request of the system under test and of Redis during the measured load (noise-robust, unlike req/s).
    // OpenFGA's CPU per request too for the rows that use it: on a shared machine the ratio of CPU per check
    // is steadier than req/s (F0 measures OpenFGA itself).
    const fga = v.needs?.includes('openfga') && openfga ? openfga.proc.pid : null;
    const cpu0 = { sut: cpuTimeUs(sut.pid), redis: redis ? cpuTimeUs(redis.proc.pid) : 0, openfga: fga ? cpuTimeUs(fga) : 0 };
    const cmd0 = redisCommands();
    const slices = [];
    for (let i = 0; i < cfg.slices; i++)
      slices.push(await runWrk({ url, script, durationSec: cfg.duration / cfg.slices, connections: cfg.connections, cpus: loadCpus }));
    const wrk = mergeWrk(slices);
    const cmd1 = redisCommands();
    // Redis commands per request during the measured load (script calls, and every command including those scripts run).
    const redisPerRequest =
      cmd0 && cmd1 && wrk.requests ? { commands: (cmd1.all - cmd0.all) / wrk.requests, scripts: (cmd1.scripts - cmd0.scripts) / wrk.requests } : null;
    const cpuUsPerRequest = wrk.requests
      ? {
          sut: (cpuTimeUs(sut.pid) - cpu0.sut) / wrk.requests,
          redis: redis ? (cpuTimeUs(redis.proc.pid) - cpu0.redis) / wrk.requests : null,
          openfga: fga ? (cpuTimeUs(fga) - cpu0.openfga) / wrk.requests : null,
        }
      : null;
    const total = wrk.requests || 1;
    if ((wrk.non2xx + wrk.socket_errors) / total > 0.001)
      throw new Error(`wrk: ${wrk.non2xx} non-2xx and ${wrk.socket_errors} socket errors of ${wrk.requests}`);
    const rss = peakRss(sut.pid);
    // Warden rows: the serving process and the relay parent of `warden start` apart (their sum is rss).
    const split = v.kind === 'warden' ? peakRssSplit(sut.pid) : null;
    const after = await upstreamAccepts();
    // Everything but D reaches the upstream through the system under test.
    const upstream = { connections: after.accepts - before.accepts, requests: after.requests - before.requests };
    // The latency rate's calibration: open loop at a modest rate on the warm process of the last round.
    const calibration = calibrating.has(v.id) && round === cfg.rounds ? await calibrate(v, sut, request, loadCpus) : null;
    return {
      calibration,
      round,
      wrk,
      latency: null,
      cpu_us_per_request: cpuUsPerRequest,
      cpu_us_per_request_fixed: null,
      redis_per_request: redisPerRequest,
      rss_bytes: rss,
      serving_rss_bytes: split?.serving ?? null,
      relay_rss_bytes: split?.relay ?? null,
      relay_own_rss_bytes: split?.relayOwn ?? null,
      warmup,
      warmup_rss_bytes: warmupRss,
      peak_reset: peakReset,
      load_ms: sut.loadMs ?? null,
      upstream,
    };
  } finally {
    await sut.stop();
  }
}

/** Pids of the load core's processes a row's requests pass through (the latency client reports its own CPU). */
function loadSidePids(v) {
  const pids = [upstream.pid];
  if (redis && v.needs?.includes('redis')) pids.push(redis.proc.pid);
  if (openfga && v.needs?.includes('openfga')) pids.push(openfga.proc.pid);
  return pids;
}
const cpuOf = (pids) => pids.reduce((a, p) => a + cpuTimeUs(p), 0);

/**
 * CPU per request open loop at the calibration rate, of the system under test (its pinned core) and of the
 * load side (client, upstream, Redis, OpenFGA): what bench/lib/latency-rate.mjs sets the latency rate from.
 */
async function calibrate(v, sut, request, loadCpus) {
  const pids = loadSidePids(v);
  const durationSec = Math.max(2, Math.min(4, cfg.latencyDuration));
  const c0 = { sut: cpuTimeUs(sut.pid), load: cpuOf(pids), wait: runQueueWaitUs(sut.pid) };
  const t0 = performance.now();
  try {
    const lat = await runLatency({
      url: sut.url + request.path,
      request,
      rate: cfg.calibrationRate,
      durationSec,
      connections: cfg.latencyConnections,
      cpus: loadCpus,
      tool: 'paced',
      // The process is warm (it just served the wrk round): no client warm-up, so the CPU counted is the measured requests'.
      warmupSec: 0,
    });
    const served = lat.requests;
    if (!served) return null;
    const c = {
      id: v.id,
      rate: cfg.calibrationRate,
      achieved_rate: lat.achieved_rate,
      sutCpuUs: (cpuTimeUs(sut.pid) - c0.sut) / served,
      loadCpuUs: (cpuOf(pids) - c0.load + (lat.client_cpu_us ?? 0)) / served,
      clientCpuUs: (lat.client_cpu_us ?? 0) / served,
      p99_ms: lat.latency_ms.p99,
      // Time the row waited for its core behind other work: when the row could not even keep the calibration rate,
      // the host is busy and every latency of this run measures the host more than the row.
      runqueue_wait_ms_per_s: (runQueueWaitUs(sut.pid) - c0.wait) / (performance.now() - t0),
    };
    log(
      `calibration ${v.id.padEnd(4)} at ${c.rate} req/s (achieved ${Math.round(c.achieved_rate)}): SUT ${Math.round(c.sutCpuUs)} µs/req, load core ${Math.round(c.loadCpuUs)} µs/req (client ${Math.round(c.clientCpuUs)})`,
    );
    return c;
  } catch (err) {
    log(`calibration ${v.id}: FAILED ${err.message.slice(0, 300)}`);
    return null;
  }
}

/**
 * Open-loop latency at the fixed `rate` (a fresh start of the row, warmed up with wrk first), with the CPU
 * per request at that rate: equal work for every row, so it compares like for like.
 */
async function measureLatency(v, rate) {
  const sut = await startSut(v, 'lat');
  const request = requestFor(v, sut.token, openfga);
  const loadCpus = v.pinned === false ? null : cfg.loadCpu;
  try {
    await probe(v, sut, request);
    await warmUpRow(sut.url + concrete(request).path, wrkScriptFor(v, request), loadCpus);
    await sleep(200);
    // The client's own warm-up at the rate comes first (2 s): the counters below span it, so per-request
    // numbers divide by every request sent, the warm-up's included.
    const warmupSec = 2;
    const pids = v.kind === 'direct' ? [] : loadSidePids(v);
    const gcFrom = sut.gcLog && existsSync(sut.gcLog) ? statSync(sut.gcLog).size : 0;
    const cpu1 = { sut: cpuTimeUs(sut.pid), redis: redis ? cpuTimeUs(redis.proc.pid) : 0, load: cpuOf(pids), wait: runQueueWaitUs(sut.pid) };
    const t1 = performance.now();
    const latency = await runLatency({
      url: sut.url + request.path,
      request,
      rate,
      durationSec: cfg.latencyDuration,
      connections: cfg.latencyConnections,
      cpus: loadCpus,
      tool: cfg.latencyTool,
      warmupSec,
      samplesFile: cfg.latencySamples ? join(cfg.outDir, 'latency-samples', `${v.id}.csv`) : undefined,
    });
    const wallSec = (performance.now() - t1) / 1000;
    const served = (latency.achieved_rate ?? 0) * (cfg.latencyDuration + warmupSec);
    const cpuUsPerRequestFixed =
      served > 0 ? { sut: (cpuTimeUs(sut.pid) - cpu1.sut) / served, redis: redis ? (cpuTimeUs(redis.proc.pid) - cpu1.redis) / served : null } : null;
    // What the tail is made of: how busy each core was at this rate, how long the system under test waited
    // for its core behind other work, how late the client sent, and (--trace-gc) the GC pauses.
    const sutBusy = cpuUsPerRequestFixed ? utilisationAt(latency.achieved_rate, cpuUsPerRequestFixed.sut) : null;
    const loadUs = served > 0 && v.kind !== 'direct' ? (cpuOf(pids) - cpu1.load) / served + (latency.client_cpu_us ?? 0) / (latency.requests || 1) : null;
    let gc = null;
    if (sut.gcLog && existsSync(sut.gcLog)) {
      const parsed = parseTraceGc(readFileSync(sut.gcLog, 'utf8').slice(gcFrom));
      // Per second of the measured window (the client's warm-up included: the same load).
      gc = { ...parsed, seconds: wallSec };
    }
    const tail = {
      sut_busy: sutBusy,
      load_busy: loadUs !== null ? utilisationAt(latency.achieved_rate, loadUs) : null,
      runqueue_wait_ms_per_s: (runQueueWaitUs(sut.pid) - cpu1.wait) / 1000 / wallSec || 0,
      send_lag_p99_ms: latency.send_lag_ms?.p99 ?? null,
      p99_from_plan_ms: latency.latency_from_plan_ms?.p99 ?? null,
      gc,
    };
    return { latency, cpu_us_per_request_fixed: cpuUsPerRequestFixed, tail };
  } finally {
    await sut.stop();
  }
}

// ------------------------------------------------------------ run

const started = new Date();
let rate = Number(opt.rate ?? 0);
let rateFrom = rate ? '--rate' : null;
let rateRule = null;
// Rows calibrated for the latency rate (after their last round): the headline rows in the run, else every pinned Warden row.
const calibrating = new Set();
if (!rate && cfg.latencyDuration > 0) {
  const own = selected.filter((v) => !v.baseline && v.pinned !== false);
  const headline = own.filter((v) => HEADLINE_VARIANTS.includes(v.id));
  for (const v of headline.length ? headline : own.filter((v) => v.kind === 'warden')) calibrating.add(v.id);
}
if (cfg.latencySamples) mkdirSync(join(cfg.outDir, 'latency-samples'), { recursive: true });

const samples = new Map(selected.map((v) => [v.id, []]));
const logSample = (round, v, s) =>
  log(
    `round ${round} ${v.id.padEnd(4)} ${String(Math.round(s.wrk.rps)).padStart(6)} req/s${s.wrk.slices ? ` (slices ${s.wrk.slices.join(' ')})` : ''}  warm-up ${s.warmup ? `${s.warmup.seconds} s${s.warmup.steady === false ? ' (still rising)' : ''}` : '-'}  CPU/req ${s.cpu_us_per_request ? `${Math.round(s.cpu_us_per_request.sut)} µs${s.cpu_us_per_request.redis !== null ? ` + Redis ${Math.round(s.cpu_us_per_request.redis)} µs` : ''}${s.cpu_us_per_request.openfga !== null ? ` + OpenFGA ${Math.round(s.cpu_us_per_request.openfga)} µs` : ''}` : '-'}${s.redis_per_request ? `  Redis cmds/req ${s.redis_per_request.commands.toFixed(3)} (scripts ${s.redis_per_request.scripts.toFixed(3)})` : ''}  RSS ${(s.rss_bytes / 2 ** 20).toFixed(0)} MB${s.relay_rss_bytes ? ` (serving ${(s.serving_rss_bytes / 2 ** 20).toFixed(0)} + relay ${(s.relay_rss_bytes / 2 ** 20).toFixed(0)})` : ''}  upstream conns ${s.upstream.connections}`,
  );
const logFailure = (round, v, err) => {
  samples.get(v.id).push({ round, error: err.message.slice(0, 500) });
  log(`round ${round} ${v.id}: FAILED ${err.message.slice(0, 300)}`);
};
/** The round after which --stop-unsteady ended the run, else null. */
let stoppedAfterRound = null;
for (let round = 1; round <= cfg.rounds; round++) {
  const order = round % 2 === 1 ? selected : [...selected].reverse();
  for (const v of order) {
    if (unavailable.has(v.id)) {
      samples.get(v.id).push({ round, error: unavailable.get(v.id) });
      continue;
    }
    try {
      const s = await measure(v, round);
      samples.get(v.id).push(s);
      logSample(round, v, s);
      writeProfileMeta(v, round, s);
    } catch (err) {
      logFailure(round, v, err);
    }
    await sleep(200);
  }
  // A pair out of order in this round fails the run's host check whatever the other rounds measure: say so now.
  const thisRound = Object.fromEntries(selected.map((v) => [v.id, samples.get(v.id).find((x) => x.round === round && !x.error)?.wrk.rps]));
  const unsteady = roundOutOfOrder(thisRound);
  if (unsteady.length > 0) {
    const pairs = unsteady.map((p) => `${p.heavier} ${p.value.toFixed(2)}× ${p.lighter}`).join(', ');
    log(`host check: round ${round} has ${pairs} (rows that do more work measured faster); this run's host check will fail`);
    if (opt['stop-unsteady'] && round < cfg.rounds) {
      stoppedAfterRound = round;
      log(`--stop-unsteady: no more rounds and no latency run; the report covers round${round > 1 ? 's 1–' : ' '}${round}`);
      break;
    }
  }
}

// Latency is measured unless switched off or the run stopped early (--stop-unsteady).
const latencyRun = cfg.latencyDuration > 0 && stoppedAfterRound === null;

// The fixed latency rate: what the slowest headline row (G0–G4) sustained, with 20 % headroom; without
// any headline row in the run, the slowest pinned Warden row. Every row is then measured at that rate.
const medianRps = (id) => {
  const list = samples
    .get(id)
    .filter((x) => !x.error)
    .map((x) => x.wrk.rps)
    .sort((a, b) => a - b);
  return list.length ? list[Math.floor(list.length / 2)] : null;
};
if (!rate && latencyRun) {
  const calibrations = [...calibrating].map((id) => samples.get(id).find((x) => x.calibration)?.calibration).filter(Boolean);
  rateRule = latencyRate(calibrations);
  if (rateRule) {
    rate = rateRule.rate;
    rateFrom = describeRate(rateRule);
    log(`fixed latency rate ${rate} req/s: ${rateFrom}`);
  }
}
if (!rate && latencyRun) {
  // No calibration succeeded: the older rule (closed-loop throughput with 20 % off), marked as such.
  const pool = selected.filter((v) => HEADLINE_VARIANTS.includes(v.id) && medianRps(v.id));
  const candidates = pool.length ? pool : selected.filter((v) => v.kind === 'warden' && v.pinned !== false && medianRps(v.id));
  if (candidates.length) {
    const slowest = candidates.reduce((a, b) => (medianRps(b.id) < medianRps(a.id) ? b : a));
    rate = Math.max(100, Math.floor((0.8 * medianRps(slowest.id)) / 100) * 100);
    rateFrom = `no calibration: 0.8 × ${slowest.id} (${Math.round(medianRps(slowest.id))} req/s closed loop, the slowest ${pool.length ? 'headline row' : 'Warden row'} run)`;
    log(`fixed latency rate ${rate} req/s = ${rateFrom}`);
  } else log('no Warden row measured: no latency run (give --rate)');
}
if (rate > 0 && latencyRun) {
  for (const v of selected) {
    const last = samples
      .get(v.id)
      .filter((x) => !x.error)
      .at(-1);
    if (!last) continue;
    try {
      Object.assign(last, await measureLatency(v, rate));
      const l = last.latency.latency_ms;
      const t = last.tail;
      log(
        `latency ${v.id.padEnd(4)} at ${rate} req/s (achieved ${Math.round(last.latency.achieved_rate)})  p50 ${l.p50?.toFixed(3) ?? '-'} p99 ${l.p99?.toFixed(3) ?? '-'} ms  CPU/req ${last.cpu_us_per_request_fixed ? Math.round(last.cpu_us_per_request_fixed.sut) : '-'} µs` +
          `  SUT core ${t.sut_busy !== null ? Math.round(t.sut_busy * 100) : '-'} % busy, load core ${t.load_busy !== null ? Math.round(t.load_busy * 100) : '-'} %, run-queue wait ${t.runqueue_wait_ms_per_s.toFixed(0)} ms/s, send lag p99 ${t.send_lag_p99_ms?.toFixed(3) ?? '-'} ms` +
          (t.gc
            ? `, GC: ${t.gc.scavenge.count} scavenges ${t.gc.scavenge.ms.toFixed(1)} ms (max ${t.gc.scavenge.max.toFixed(2)}), ${t.gc.full.count} full ${t.gc.full.ms.toFixed(1)} ms in ${t.gc.seconds.toFixed(1)} s`
            : ''),
      );
    } catch (err) {
      log(`latency ${v.id}: FAILED ${err.message.slice(0, 300)}`);
    }
    await sleep(200);
  }
}

const summaries = selected.map((v) => summarize(v, samples.get(v.id)));
const byId = Object.fromEntries(summaries.map((s) => [s.id, s]));
const host = hostCheck(byId);
const paired = await pairedPhase(host);

/**
 * The targets' pairs whose two rows this run measured, each pair's rows serving at once on the pinned core
 * (bench/lib/paired-runner.mjs): with --paired always, or auto when the rounds failed their host check.
 */
async function pairedPhase(check) {
  const unsteady = check.pairs.length > 0 && !check.steady;
  if (cfg.paired === 'off' || (cfg.paired === 'auto' && !unsteady)) return null;
  const ran = (id) => selected.some((v) => v.id === id && !v.baseline && pairable(v) && !unavailable.has(id));
  const pairs = TARGET_PAIRS.filter((p) => ran(p.a) && ran(p.b));
  if (pairs.length === 0) {
    log('paired targets: none of the targets has both its rows in this run');
    return null;
  }
  const why = unsteady ? 'the rounds failed their host check' : 'asked (`--paired always`)';
  log(`paired targets (${why}): ${pairs.length} pairs, each pair's two rows serving at once on CPU ${cfg.sutCpu}`);
  const t0 = performance.now();
  const measured = await measurePairs(pairs, {
    ...PAIRED_DEFAULTS,
    tracker,
    work: WORK,
    dataDir: DATA_DIR,
    clis: { A: cli, B: cli },
    flags: { A: BASELINE_FLAGS, B: BASELINE_FLAGS },
    upstreamPort,
    upstreamOrigin,
    redis,
    vaultKey,
    bigPolicies,
    sutCpu: cfg.sutCpu,
    loadCpu: cfg.loadCpu,
    log: (line) => log(`paired: ${line}`),
  });
  const table = pairedTargets(pairs, Object.fromEntries(measured.map((p) => [p.name, p.estimate])));
  return { why, seconds: Math.round((performance.now() - t0) / 1000), ...PAIRED_DEFAULTS, node_flags: BASELINE_FLAGS.join(' '), pairs: measured, table };
}

let micro = [];
if (!opt['no-micro']) {
  log('microbenchmarks');
  const r = spawnSync('taskset', ['-c', cfg.sutCpu, process.execPath, join(BENCH, 'micro.mjs'), '--json', '--dist', cfg.dist, ...(quick ? ['--quick'] : [])], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status === 0) micro = JSON.parse(r.stdout);
  else log(`micro.mjs failed: ${r.stderr.slice(0, 1000)}`);
}

await Promise.allSettled([upstream.stop(), redis?.proc.stop(), openfga?.proc.stop()]);
if (baseline) {
  baseline.remove();
  log(`baseline: removed ${baseline.dir}`);
}
// Logs of failed rounds stay for inspection.
const anyFailed = [...samples.values()].some((list) => list.some((x) => x.error)) || Boolean(paired?.pairs.some((p) => p.error));
if (anyFailed) log(`some rounds failed; logs kept in ${join(WORK, 'logs')}`);
else if (!process.env.WARDEN_BENCH_KEEP_WORK) rmSync(WORK, { recursive: true, force: true });

const ver = (cmd, args, re) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const m = re.exec((r.stdout ?? '') + (r.stderr ?? ''));
  return m ? m[0] : cmd;
};
const result = {
  meta: {
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    cpus: cpuCount(),
    node: process.version,
    nginx: ver('nginx', ['-v'], /nginx\/[\d.]+/),
    wrk: ver('wrk', ['--version'], /wrk [^\s]+/),
    rounds: cfg.rounds,
    stopped_after_round: stoppedAfterRound,
    duration_s: cfg.duration,
    slices: cfg.slices,
    latency_duration_s: cfg.latencyDuration,
    warmup_s: cfg.warmup,
    warmup_max_s: cfg.warmupMax,
    connections: cfg.connections,
    latency_connections: cfg.latencyConnections,
    latency_tool: cfg.latencyTool,
    rate,
    rate_from: rateFrom,
    rate_rule: rateRule ? { utilisation: UTILISATION, calibration_rate: cfg.calibrationRate, ...rateRule } : null,
    baseline: cfg.baseline ? { ref: cfg.baseline, sha: baseline?.sha ?? null, build_s: baseline?.seconds ?? null } : null,
    trace_gc: cfg.traceGc,
    sut_cpu: cfg.sutCpu,
    load_cpu: cfg.loadCpu,
    warden_node_flags: cfg.nodeFlags.length ? cfg.nodeFlags.join(' ') : `${WARDEN_NODE_FLAGS} (the bin's shebang)`,
    upstream_body_bytes: 1024,
  },
  variants: summaries,
  host_check: host,
  targets: targets(byId, micro),
  before_redesign: beforeRedesign(byId),
  baseline_ratios: cfg.baseline ? baselineRatios(byId) : null,
  ratios: ratios(byId),
  paired,
  micro,
  samples: Object.fromEntries(samples),
};
mkdirSync(cfg.outDir, { recursive: true });
writeFileSync(join(cfg.outDir, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
const md = markdown(result);
writeFileSync(join(cfg.outDir, 'latest.md'), md);
process.stdout.write(md);
log(`wrote ${join(cfg.outDir, 'latest.json')} and latest.md in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
if (host.pairs.length && !host.steady)
  log(
    `host check failed: ${host.out_of_order} of ${host.pairs.length} pairs of rows out of order (see "Host check"); this run's ratios measure the host as much as Warden; ` +
      (paired
        ? 'read the targets from "Targets, paired" (each target\'s two rows measured at the same time)'
        : '`node bench/side-by-side.mjs --targets` measures each target\'s two rows at the same time (docs/performance.md, "Paired targets on a busy host")'),
  );
process.exit(0);
