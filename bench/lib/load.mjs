/**
 * Load generators, pinned to the load core: `wrk -t1 -c32` for throughput
 * (closed loop, as fast as the system under test answers) and the fixed-rate
 * latency client (latency-client.mjs).
 */

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './stats.mjs';

const LATENCY_CLIENT = fileURLToPath(new URL('./latency-client.mjs', import.meta.url));

function run(argv, { timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    // 'close', not 'exit': 'exit' can come before the last of stdout has been read (wrk's summary, parsed next).
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${argv.join(' ').slice(0, 200)} exited ${code}: ${stderr.slice(0, 2000)}`));
    });
  });
}

const luaString = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** `s` as a Lua expression in which every `{id}` is the Lua variable `id`. */
const luaTemplate = (s) =>
  s
    .split('{id}')
    .map((part) => luaString(part))
    .join(' .. id .. ');

/**
 * A wrk Lua script that sets method, headers and body (no per-response hook: it would slow wrk down).
 * With `request.spread` (a count N), `{id}` in the path or body becomes a random integer in [0, N) per
 * request: a request() hook builds each one (the same Lua cost for every row that spreads).
 */
export function writeWrkScript(dir, name, request) {
  const lines = [`wrk.method = ${luaString(request.method ?? 'GET')}`];
  for (const [k, v] of Object.entries(request.headers ?? {})) lines.push(`wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  if (request.spread) {
    const path = request.path.includes('{id}') ? luaTemplate(request.path) : 'nil';
    const body = request.body?.includes('{id}') ? luaTemplate(request.body) : request.body !== undefined ? luaString(request.body) : 'nil';
    lines.push(`math.randomseed(${Math.floor(Math.random() * 2 ** 31)})`);
    lines.push('request = function()', `  local id = math.random(0, ${request.spread - 1})`, `  return wrk.format(nil, ${path}, nil, ${body})`, 'end');
  } else if (request.body !== undefined) lines.push(`wrk.body = ${luaString(request.body)}`);
  const file = join(dir, `${name}.lua`);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

function toMs(value, unit) {
  const v = Number(value);
  return unit === 'us' ? v / 1000 : unit === 's' ? v * 1000 : unit === 'm' ? v * 60_000 : v;
}

/** Parse wrk's text report (with --latency). */
export function parseWrk(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : 0;
  };
  const pct = {};
  for (const m of text.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$/gm)) pct[`p${m[1]}`] = toMs(m[2], m[3]);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socket_errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    latency_ms: pct,
  };
}

/**
 * Whether a row being warmed up has reached its steady rate, from the req/s of
 * its warm-up's one-second wrk runs so far: after at least `min` of them, the
 * best of the last `patience` is no more than `gain` above the best before
 * them (the rate stopped rising; a dip alone never ends the warm-up, and a
 * slow climb of a few percent a second does not look steady). A Node process
 * reaches its steady rate only once V8 has optimized its hot code, and a
 * gateway's chain is a lot of code: on a slow host G4 took 5 s of load after
 * the old fixed 2 s warm-up to get there, inside the measured window.
 */
export function warmedUp(rates, { min, patience = 3, gain = 0.05 }) {
  const n = rates.length;
  if (n < Math.max(min, patience + 1)) return false;
  const before = Math.max(...rates.slice(0, n - patience));
  return Math.max(...rates.slice(n - patience)) <= before * (1 + gain);
}

/**
 * Warm one or more started systems up with wrk, one second at a time and all
 * at once (`targets`: { url, script } each): at least `min` seconds, then
 * until every rate stops rising (warmedUp), at most `max`. `min` 0: no
 * warm-up. `max` no more than `min`: a fixed warm-up, no judgement (`steady`
 * null). Returns { seconds, steady, rates } with one array of rates per
 * target (run.mjs warms one row; side-by-side.mjs the two sides it measures
 * together, so neither sits idle while the other warms).
 */
export async function warmUp(targets, { min, max, connections, cpus }) {
  const rates = targets.map(() => []);
  if (min <= 0) return { seconds: 0, steady: null, rates };
  while (rates[0].length < Math.max(min, max)) {
    const runs = await Promise.all(targets.map((t) => runWrk({ url: t.url, script: t.script, durationSec: 1, connections, cpus })));
    runs.forEach((wrk, i) => rates[i].push(Math.round(wrk.rps)));
    if (rates.every((r) => warmedUp(r, { min }))) return { seconds: rates[0].length, steady: true, rates };
  }
  return { seconds: rates[0].length, steady: max <= min ? null : false, rates };
}

/**
 * One row's wrk runs of a round taken in slices (`--slices`) as one
 * measurement: requests and errors summed, throughput the requests over the
 * time the slices ran (each slice's requests / its req/s), and each latency
 * percentile the median of the slices' (wrk's own percentiles cannot be
 * merged exactly; the fixed-rate latency run is the latency measurement).
 */
export function mergeWrk(runs) {
  if (runs.length === 1) return runs[0];
  let requests = 0;
  let seconds = 0;
  let non2xx = 0;
  let socketErrors = 0;
  for (const r of runs) {
    requests += r.requests;
    if (r.rps > 0) seconds += r.requests / r.rps;
    non2xx += r.non2xx;
    socketErrors += r.socket_errors;
  }
  const latency = {};
  for (const k of ['p50', 'p75', 'p90', 'p99']) {
    const v = median(runs.map((r) => r.latency_ms[k]));
    if (v !== null) latency[k] = v;
  }
  return {
    rps: seconds > 0 ? requests / seconds : 0,
    requests,
    non2xx,
    socket_errors: socketErrors,
    latency_ms: latency,
    slices: runs.map((r) => Math.round(r.rps)),
  };
}

/** Closed-loop throughput with wrk. */
export async function runWrk({ url, script, durationSec, connections = 32, threads = 1, cpus }) {
  const args = ['wrk', `-t${threads}`, `-c${connections}`, `-d${durationSec}s`, '--latency', ...(script ? ['-s', script] : []), url];
  const argv = cpus === null || cpus === undefined ? args : ['taskset', '-c', String(cpus), ...args];
  const text = await run(argv, { timeoutMs: (durationSec + 30) * 1000 });
  // wrk always ends with its summary: without it the run measured nothing, and 0 req/s would pass for a result.
  if (!/\d+ requests in/.test(text)) throw new Error(`wrk printed no summary for ${url}: ${JSON.stringify(text.slice(0, 500))}`);
  return parseWrk(text);
}

/** Fixed-rate latency (see latency-client.mjs). */
export async function runLatency({ url, request, rate, durationSec, connections, cpus, tool, warmupSec, samplesFile }) {
  const options = {
    url,
    method: request.method,
    headers: request.headers,
    body: request.body,
    spread: request.spread,
    rate,
    durationSec,
    connections,
    tool,
    ...(warmupSec !== undefined ? { warmupSec } : {}),
    ...(samplesFile ? { samplesFile } : {}),
  };
  const args = [process.execPath, LATENCY_CLIENT, JSON.stringify(options)];
  const argv = cpus === null || cpus === undefined ? args : ['taskset', '-c', String(cpus), ...args];
  const out = await run(argv, { timeoutMs: (durationSec + 60) * 1000 });
  return JSON.parse(out.trim().split('\n').pop());
}
