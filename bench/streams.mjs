#!/usr/bin/env node
/**
 * Held MCP streams: what an open agent stream costs a gateway. Agents on
 * Streamable HTTP keep a GET stream open per session for their servers'
 * messages, mostly silent; a gateway in front of many agents holds one agent
 * connection and one upstream connection per stream. This measures, for
 * Warden as shipped (an MCP route, JWT-authenticated sessions, the default
 * log level and Node flags) and for the Node floor R (bench/servers/node-proxy.mjs
 * on the same flags), with N streams held open:
 *
 *   - resident memory per held stream (RSS with N open minus RSS before, / N);
 *   - CPU while N streams sit idle (% of one core);
 *   - one server message to every stream: how long until the last agent has it,
 *     and the gateway's CPU per delivered event (Warden parses each event and
 *     checks it for a tools list);
 *   - the agents leaving: how long until every upstream stream is closed and
 *     the gateway holds no agent connection (nothing leaks).
 *
 *   node bench/streams.mjs [--streams 1000,4000] [--rows R,W] [--hold 60] [--events 5] [--out DIR]
 *
 * Rows: R, W (Warden as shipped: quiet streams get a keep-alive comment every
 * 25 s, mcp.keepalive), and the extra row W0 (Warden with `keepalive: 0s`:
 * what the keep-alives cost). The default hold, 60 s, holds two keep-alives
 * per stream.
 *
 * Each (row, N) gets a fresh gateway pinned to CPU 0, warmed up with 200
 * streams and three events first; the upstream (bench/servers/sse-upstream.mjs)
 * and the agents (bench/lib/stream-client.mjs) run on CPU 1. Memory is the
 * number to read on a busy host: CPU figures move with the host.
 */

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { benchWorkspace, cpuTimeUs, freePort, rssNow, sleep, toolOptions, waitForHttp } from './lib/system.mjs';
import { ensureBuilt, mintToken, newVaultKey, wardenEnv, wardenYaml, writePolicies } from './lib/warden.mjs';
import { VARIANTS, WARDEN_NODE_FLAGS, proxyServerArgs } from './lib/variants.mjs';
import { median } from './lib/stats.mjs';
import { streamsMarkdown } from './lib/streams-report.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
/** The Node floor the gateway is read against (started as run.mjs starts it). */
const R = VARIANTS.find((v) => v.id === 'R');
const REPO = resolve(BENCH, '..');
/** The rows: their names in the report, and for Warden the route's mcp.keepalive (undefined: the default). */
const ROWS = {
  R: { name: 'R' },
  W: { name: 'Warden', warden: true },
  W0: { name: 'Warden, keepalive 0s (extra)', warden: true, keepalive: '0s' },
};

const { opt, fail } = toolOptions(import.meta.url, 'streams', {
  streams: { type: 'string', default: '1000,4000' },
  rows: { type: 'string', default: 'R,W' },
  hold: { type: 'string', default: '60' },
  events: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '200' },
  'sut-cpu': { type: 'string', default: '0' },
  'load-cpu': { type: 'string', default: '1' },
  out: { type: 'string' },
});
const levels = opt.streams.split(',').map(Number);
if (levels.some((n) => !Number.isInteger(n) || n < 1)) fail('--streams is a list of positive integers, e.g. 1000,4000');
const rowIds = opt.rows.split(',');
for (const id of rowIds) if (!Object.hasOwn(ROWS, id)) fail(`unknown row ${id} (R: the Node floor, W: Warden as shipped, W0: Warden with keepalive: 0s)`);
const hold = Number(opt.hold);
const events = Number(opt.events);
const warmupStreams = Number(opt.warmup);
if (!(hold > 0) || !(events >= 1) || !(warmupStreams >= 0)) fail('--hold, --events and --warmup are positive numbers');
// Each held stream is a descriptor in the agents' process and two in the gateway's.
const limit = Number(readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)?.[1] ?? 1024);
if (Math.max(...levels) * 2 + 200 > limit)
  fail(`${Math.max(...levels)} streams need ${Math.max(...levels) * 2 + 200} file descriptors; the limit here is ${limit} (ulimit -n)`);

const sutCpu = opt['sut-cpu'];
const loadCpu = opt['load-cpu'];
const flags = WARDEN_NODE_FLAGS.split(/\s+/);
const log = (line) => process.stderr.write(`[streams ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const { work: WORK, tracker, cleanup } = benchWorkspace(BENCH, 'streams');

const fdsOf = (pid) => readdirSync(`/proc/${pid}/fd`).length;
/** `ss` lines of the established TCP connections matching `filter`. */
function established(filter, processes = false) {
  const r = spawnSync('ss', [processes ? '-Htnp' : '-Htn', 'state', 'established', filter], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ss failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}
const portOf = (address) => address.slice(address.lastIndexOf(':') + 1);
/**
 * Established connections to the gateway's port from the agents: every one
 * but this process's own (its readiness checks keep an idle keep-alive
 * connection, which R holds for 75 s).
 */
function agentConnections(port) {
  const own = new Set(
    established(`( dport = :${port} )`, true)
      .filter((l) => l.includes(`pid=${process.pid},`))
      .map((l) => portOf(l.trim().split(/\s+/)[2])),
  );
  return established(`( sport = :${port} )`).filter((l) => !own.has(portOf(l.trim().split(/\s+/)[3]))).length;
}

/** The agents: a stream-client process whose report lines are awaited one by one. */
function startAgents(origin, count, token) {
  const child = spawn('taskset', ['-c', loadCpu, process.execPath, join(BENCH, 'lib', 'stream-client.mjs'), origin, String(count), token ?? ''], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = [];
  const waiters = [];
  let ended = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const msg = JSON.parse(line);
    lines.push(msg);
    for (const w of waiters.splice(0)) w();
  });
  child.on('exit', () => {
    ended = true;
    for (const w of waiters.splice(0)) w();
  });
  /** The next report that satisfies `pred` (an error report or the process ending throws). */
  const next = async (pred, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = lines.findIndex((m) => m.error !== undefined || pred(m));
      if (i >= 0) {
        const [m] = lines.splice(i, 1);
        if (m.error !== undefined) throw new Error(`agents: ${m.error}`);
        return m;
      }
      if (ended) throw new Error('the agents process ended');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the agents did not report in ${timeoutMs} ms`);
      await new Promise((r) => {
        waiters.push(r);
        setTimeout(r, Math.min(left, 1_000));
      });
    }
  };
  return {
    next,
    /** Events broadcast to these agents so far (each agent counts its own from 1). */
    events: 0,
    async stop() {
      if (ended) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function upstreamOpen(upstream) {
  const r = await fetch(`${upstream}/__streams`);
  return (await r.json()).open;
}

/** Wait until `check()` holds (polled every 50 ms); the ms it took, or null at the timeout. */
async function until(check, timeoutMs) {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (await check()) return Math.round(performance.now() - t0);
    await sleep(50);
  }
  return null;
}

/** One server message to every stream; resolves with the ms until the last agent had it. */
async function broadcast(upstream, agents, count) {
  const t0 = performance.now();
  const r = await fetch(`${upstream}/__streams/broadcast`, { method: 'POST' });
  const { written } = await r.json();
  if (written !== count) throw new Error(`the upstream holds ${written} streams, not ${count}`);
  const k = ++agents.events;
  await agents.next((m) => m.event === k, 60_000);
  return performance.now() - t0;
}

const started = performance.now();
const results = [];
try {
  const cli = rowIds.some((id) => ROWS[id].warden) ? ensureBuilt(REPO, join(REPO, 'dist'), { log }) : null;
  const upstreamPort = await freePort();
  const upstreamProc = tracker.start('upstream', process.execPath, [join(BENCH, 'servers', 'sse-upstream.mjs'), String(upstreamPort)], {
    cpus: loadCpu,
    logFile: join(WORK, 'logs', 'upstream.log'),
  });
  const upstream = `http://127.0.0.1:${upstreamPort}`;
  await waitForHttp(`${upstream}/__streams`, { proc: upstreamProc });
  if (cli) writePolicies(join(WORK, 'warden', 'policies'));
  const dataDir = join(WORK, 'data');

  for (const id of rowIds) {
    for (const count of levels) {
      const port = await freePort();
      let proc;
      let token = null;
      if (ROWS[id].warden) {
        const file = join(WORK, 'warden', `streams-${port}.yaml`);
        // The G4 gateway: an MCP route with its tool rule; JWT sessions; memory store (held streams touch no store).
        writeFileSync(file, wardenYaml({ port, upstreamPort, level: 1, mcp: true, mcpKeepalive: ROWS[id].keepalive, vaultKey: newVaultKey() }));
        token = mintToken(cli, file, dataDir, 'mcp');
        // As shipped (default log level); node runs cli.js with the bin's flags, so the bin does not re-exec.
        const env = { ...wardenEnv({}, dataDir), WARDEN_NODE_FLAGS_APPLIED: 'off' };
        proc = tracker.start('W', process.execPath, [...flags, cli, 'start', '-c', file], {
          cpus: sutCpu,
          env,
          logFile: join(WORK, 'logs', `${id}-${count}.log`),
        });
        await waitForHttp(`http://127.0.0.1:${port}/.warden/healthz`, { proc });
      } else {
        proc = tracker.start('R', process.execPath, [...flags, ...proxyServerArgs(R, port, upstream)], {
          cpus: sutCpu,
          logFile: join(WORK, 'logs', `R-${count}.log`),
        });
        await waitForHttp(`http://127.0.0.1:${port}/__streams`, { proc });
      }
      const origin = `http://127.0.0.1:${port}`;
      const name = ROWS[id].name;

      // Warm-up: the same paths (initialize, open, events, close) with fewer streams.
      if (warmupStreams > 0) {
        const warm = startAgents(origin, warmupStreams, token);
        await warm.next((m) => m.open !== undefined, 120_000);
        for (let e = 0; e < 3; e++) await broadcast(upstream, warm, warmupStreams);
        await warm.stop();
        if ((await until(async () => (await upstreamOpen(upstream)) === 0, 20_000)) === null) throw new Error(`${name}: warm-up streams still open upstream`);
      }
      await sleep(2_000);
      const rss0 = rssNow(proc.pid);
      const fds0 = fdsOf(proc.pid);

      const agents = startAgents(origin, count, token);
      const opened = await agents.next((m) => m.open !== undefined, 600_000);
      const upstreamHeld = await upstreamOpen(upstream);
      if (upstreamHeld !== count) throw new Error(`${name}: ${count} streams open to the agents, ${upstreamHeld} upstream`);
      await sleep(3_000);
      const rss1 = rssNow(proc.pid);
      const fds1 = fdsOf(proc.pid);
      const cpu0 = cpuTimeUs(proc.pid);
      await sleep(hold * 1_000);
      const idleCpu = (cpuTimeUs(proc.pid) - cpu0) / (hold * 1e6);

      const fanout = [];
      // CPU over all the events (the clock ticks in 10 ms: one event to a thousand streams is a few ticks).
      const cpuEvents0 = cpuTimeUs(proc.pid);
      for (let e = 0; e < events; e++) fanout.push(await broadcast(upstream, agents, count));
      const cpuPerEvent = (cpuTimeUs(proc.pid) - cpuEvents0) / (events * count);
      const rss2 = rssNow(proc.pid);

      await agents.stop();
      // Every stream ended upstream and no agent connection left open at the gateway (idle upstream keep-alive
      // connections may stay: undici keeps them as long as the upstream's Keep-Alive hint says).
      const closedMs = await until(async () => (await upstreamOpen(upstream)) === 0 && agentConnections(port) === 0, 30_000);
      const row = {
        row: name,
        streams: count,
        open_s: +(opened.ms / 1000).toFixed(1),
        rss_before_mb: +(rss0 / 2 ** 20).toFixed(1),
        rss_held_mb: +(rss1 / 2 ** 20).toFixed(1),
        rss_after_events_mb: +(rss2 / 2 ** 20).toFixed(1),
        kb_per_stream: +((rss1 - rss0) / 1024 / count).toFixed(1),
        fds_per_stream: +((fds1 - fds0) / count).toFixed(2),
        idle_cpu_pct: +(100 * idleCpu).toFixed(2),
        fanout_ms: +median(fanout).toFixed(1),
        cpu_us_per_event: +cpuPerEvent.toFixed(1),
        closed_ms: closedMs,
        streams_left: await upstreamOpen(upstream),
        agent_connections_left: agentConnections(port),
      };
      results.push(row);
      log(JSON.stringify(row));
      await proc.stop();
    }
  }
  const seconds = Math.round((performance.now() - started) / 1000);
  const md = streamsMarkdown(results, {
    header: `Held MCP GET streams: each gateway pinned to CPU ${sutCpu}, upstream and agents on CPU ${loadCpu}, Node flags ${flags.join(' ')}, ${hold} s idle hold, ${events} events; ${seconds} s. Node ${process.version}.\n`,
  });
  process.stdout.write(md);
  if (opt.out) {
    mkdirSync(opt.out, { recursive: true });
    writeFileSync(join(opt.out, 'streams.md'), md);
    writeFileSync(
      join(opt.out, 'streams.json'),
      JSON.stringify({ at: new Date().toISOString(), node: process.version, seconds, hold, events, results }, null, 2) + '\n',
    );
    log(`wrote ${join(opt.out, 'streams.md')} and streams.json`);
  }
} finally {
  cleanup();
}
