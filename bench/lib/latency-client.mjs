/**
 * Fixed-rate latency client (run pinned on the load core by the harness).
 *
 * Default tool `paced`: an open-loop client on one undici Pool. It sends each
 * request when it is due at `rate`, evenly spaced to a fraction of a
 * millisecond (so load arrives evenly, not in bursts), and measures each from the moment it was issued
 * (queueing in the client included) to the end of the response body.
 *
 * Tool `autocannon`: autocannon with `overallRate`. Kept for comparison only:
 * autocannon rate-limits per connection per *second* (lib/httpClient.js: a
 * 1000 ms interval resets `reqsMadeThisSecond`), so each second starts with a
 * closed-loop burst at full concurrency and the latencies are those of a
 * saturated server, not of the requested rate.
 *
 * Both first run a warm-up at the same rate (`warmupSec`, default 2 s) whose
 * samples are discarded: without it the percentiles above p99 are those of a
 * cold client (JIT, 64 connections being opened), the same for every variant.
 *
 * The paced client also reports what it needs to tell a slow server from a
 * slow client: its own CPU time (it runs on the load core), the send lag (how
 * late each request left against its slot in the plan: the client waiting
 * for its core) and the latency measured from that slot instead (wrk2's
 * coordinated-omission-corrected latency: client lag included).
 *
 * Usage: node latency-client.mjs '<json options>'  → prints one JSON line.
 * Options: url, method, headers, body, rate, durationSec, connections, tool, warmupSec,
 * spread (N: `{id}` in the path or body is a random integer in [0, N) per request; paced only),
 * samplesFile (paced only: one line per measured request, `epoch ms at issue, latency ms, send lag ms`).
 */

import { writeFileSync } from 'node:fs';
import { Pool } from 'undici';

const opts = JSON.parse(process.argv[2]);
const { url, method = 'GET', headers = {}, body, rate, durationSec, connections = 64, tool = 'paced', warmupSec = 2, spread = 0, samplesFile } = opts;
const pick = (s) => (spread && s?.includes('{id}') ? s.replaceAll('{id}', String(Math.floor(Math.random() * spread))) : s);

function percentiles(samples, count) {
  const arr = samples.subarray(0, count).sort();
  const at = (q) => (count === 0 ? null : arr[Math.min(count - 1, Math.floor(q * count))]);
  let sum = 0;
  for (let i = 0; i < count; i++) sum += arr[i];
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: count ? arr[count - 1] : null, mean: count ? sum / count : null };
}

async function paced() {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  if (warmupSec > 0) await pacedRun(pool, u, warmupSec);
  const result = await pacedRun(pool, u, durationSec, true);
  await pool.close();
  return result;
}

async function pacedRun(pool, u, durationSec, keep = false) {
  const path = decodeURI(u.pathname) + u.search;
  const total = Math.round(rate * durationSec);
  const samples = new Float64Array(total);
  // Latency from the request's slot in the plan (send lag included), and the send lag alone.
  const fromPlan = new Float64Array(total);
  const lags = new Float64Array(total);
  const issuedAt = keep ? new Float64Array(total) : null;
  const sampleLag = keep ? new Float64Array(total) : null;
  let lagged = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  let done = 0;
  let skipped = 0;
  const statuses = {};
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const CATCH_UP_MS = 20;
  await new Promise((resolve) => {
    const finishOne = () => {
      done++;
      if (done === total) resolve();
    };
    const fire = (slot) => {
      const t0 = performance.now();
      // Request `slot` (0-based) is due when (slot + 1) requests are due: at start + (slot + 1) / rate.
      const planned = start + (slot + 1) * gapMs;
      const lag = Math.max(0, t0 - planned);
      lags[lagged++] = lag;
      pool
        .request({ method, path: pick(path), headers, body: pick(body) })
        .then(async (res) => {
          // Read the whole body: latency ends at the last byte.
          for await (const _ of res.body);
          const ms = performance.now() - t0;
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (res.statusCode >= 200 && res.statusCode < 300) {
            if (keep) {
              issuedAt[ok] = performance.timeOrigin + t0;
              sampleLag[ok] = lag;
            }
            fromPlan[ok] = ms + lag;
            samples[ok++] = ms;
          } else non2xx++;
        })
        .catch(() => {
          errors++;
        })
        .finally(finishOne);
    };
    // Sub-millisecond pacing: Node's timers have 1 ms resolution, so a timer
    // tick would send rate/1000 requests at once (13 at 13k req/s) and measure
    // the server's queue for that burst. Between sends the client sleeps in
    // Atomics.wait (fractional ms, no spinning) and yields to the event loop
    // with setImmediate so responses are read between sends.
    const gapMs = 1000 / rate;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      // When this client was descheduled (a shared machine), do not fire the whole
      // backlog at once: requests more than CATCH_UP_MS late are skipped and counted.
      const oldest = due - Math.ceil((CATCH_UP_MS / 1000) * rate);
      if (sent < oldest) {
        const n = oldest - sent;
        skipped += n;
        sent += n;
        done += n;
        if (done === total) return resolve();
      }
      while (sent < due) fire(sent++);
      if (sent >= total) return;
      const wait = start + (sent + 1) * gapMs - performance.now();
      if (wait >= 2) setTimeout(tick, Math.floor(wait) - 1);
      else {
        if (wait > 0.02) Atomics.wait(pause, 0, 0, Math.min(wait, 0.5));
        setImmediate(tick);
      }
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (keep && samplesFile) {
    let text = '';
    for (let i = 0; i < ok; i++) text += `${issuedAt[i].toFixed(3)},${samples[i].toFixed(4)},${sampleLag[i].toFixed(4)}\n`;
    writeFileSync(samplesFile, text);
  }
  return {
    tool: 'paced',
    requested_rate: rate,
    achieved_rate: (done - skipped) / elapsed,
    requests: done - skipped,
    skipped,
    ok,
    non2xx,
    errors,
    statuses,
    latency_ms: percentiles(samples, ok),
    latency_from_plan_ms: percentiles(fromPlan, ok),
    send_lag_ms: percentiles(lags, lagged),
    client_cpu_us: cpu.user + cpu.system,
  };
}

async function viaAutocannon() {
  const { default: autocannon } = await import('autocannon');
  if (warmupSec > 0) await autocannon({ url, method, headers, body, overallRate: rate, connections, duration: warmupSec });
  const samples = new Float64Array(Math.round(rate * durationSec * 1.2) + 1000);
  let ok = 0;
  const instance = autocannon({ url, method, headers, body, overallRate: rate, connections, duration: durationSec });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300 && ok < samples.length) samples[ok++] = responseTime;
  });
  const result = await instance;
  return {
    tool: 'autocannon',
    requested_rate: rate,
    achieved_rate: result.requests.average,
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    latency_ms: percentiles(samples, ok),
  };
}

const out = tool === 'autocannon' ? await viaAutocannon() : await paced();
process.stdout.write(JSON.stringify(out) + '\n');
