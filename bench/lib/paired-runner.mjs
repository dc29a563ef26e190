/**
 * Pairs of rows measured at the same time: both serve on the same pinned core,
 * each under its own wrk with the same connections, in the same seconds, so a
 * busy host slows both alike and the ratio of their CPU per request is what
 * differs between them (bench/lib/paired.mjs turns the slices into targets).
 * Used by bench/side-by-side.mjs, and by bench/run.mjs after rounds that failed
 * their host check.
 *
 * Each pair is started fresh `starts` times, alternating which side goes
 * first, and both sides are warmed up together, in one-second runs until both
 * rates stop rising (as run.mjs judges a warm-up), so neither sits idle while
 * the other warms: with each warmed alone in turn, whichever started first
 * measured 10-17 % ahead in four of six pairs. Every side passes run.mjs's
 * probe first and must answer with the upstream's answer after every slice (an
 * MCP refusal is a 200).
 */

import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { cpuTimeUs, freePort, rssNow, sleep, waitForHttp, waitIdle } from './system.mjs';
import { runWrk, warmUp, warmedUp, writeWrkScript } from './load.mjs';
import { mintToken, variantYaml, wardenEnv } from './warden.mjs';
import { VARIANTS, proxyServerArgs, requestFor } from './variants.mjs';
import { concrete, probe } from './probe.mjs';
import { pairEstimate } from './paired.mjs';
import { median } from './stats.mjs';

/**
 * How a pair is measured unless told otherwise (side-by-side.mjs's options; run.mjs's paired phase): four fresh
 * starts, eight slices of 8 s in all, 16 connections per side, a warm-up of 5 to 40 s.
 */
export const PAIRED_DEFAULTS = { starts: 4, slices: 8, sliceS: 8, warmup: 5, warmupMax: 40, connections: 16, warm: 'together' };

/** Rows a pair can hold: one process per side, no OpenFGA (it runs on the load core and would be shared). */
export const pairable = (v) =>
  Boolean(v) && (v.kind === 'node' || v.kind === 'fastify' || (v.kind === 'warden' && !v.needs?.includes('openfga') && (v.warden.workers ?? 1) === 1));

/** The row `id`, or a thrown error naming what can be paired. */
export function pairableRow(id) {
  const v = VARIANTS.find((x) => x.id === id);
  if (!pairable(v)) throw new Error(`${id} is not a row a pair can hold (R, RP, RPb, F, or a one-process Warden row without OpenFGA)`);
  return v;
}

/**
 * Measures `pairs` ({ a, b, name } row ids, A the reference) one after another and returns, per pair, its
 * slices ({ a, b }: each side's CPU µs per request) and its estimate (pairEstimate), or its `error`. `ctx`:
 *   tracker, work, dataDir                    the caller's process tracker and scratch directories
 *   clis { A, B }                             each side's Warden CLI (dist/src/cli.js of a build)
 *   flags { A, B }                            each side's Node flags (arrays)
 *   upstreamPort, upstreamOrigin, redis, vaultKey, bigPolicies   as for variantYaml()
 *   starts, slices, sliceS, warmup, warmupMax, warm ('together' | 'alone'), connections, sutCpu, loadCpu
 *   idleS                                     seconds both sides sit idle after they start, before the warm-up (0)
 *   log(line)
 * Policies must already be written (writePolicies) under <work>/warden/policies, and the vault seeded.
 */
export async function measurePairs(pairs, ctx) {
  const { tracker, work, dataDir, clis, flags, log } = ctx;
  const { connections, loadCpu } = ctx;

  /** One side: row `v` on `port`; its request checked before it is measured. */
  const side = async (name, v, port) => {
    let proc;
    let token = null;
    if (v.kind === 'warden') {
      const file = join(work, 'warden', `${name}-${v.id}-${port}.yaml`);
      writeFileSync(
        file,
        variantYaml(v, { port, upstreamPort: ctx.upstreamPort, redisUrl: ctx.redis?.url, vaultKey: ctx.vaultKey, workDir: work, bigPolicies: ctx.bigPolicies }),
      );
      token = v.auth ? mintToken(clis[name], file, dataDir, v.mcp ? 'mcp' : undefined) : null;
      // node runs cli.js with the side's flags, so the bin does not re-exec with its own.
      const env = { ...wardenEnv(v, dataDir), WARDEN_NODE_FLAGS_APPLIED: 'off' };
      proc = tracker.start(name, process.execPath, [...flags[name], clis[name], 'start', '-c', file], { cpus: ctx.sutCpu, env, logFile: '/dev/null' });
      await waitForHttp(`http://127.0.0.1:${port}/.warden/healthz`, { proc, timeoutMs: v.warden.tuples ? 180_000 : 30_000 });
    } else {
      proc = tracker.start(name, process.execPath, [...flags[name], ...proxyServerArgs(v, port, ctx.upstreamOrigin)], {
        cpus: ctx.sutCpu,
        logFile: join(work, 'logs', `${name}-${v.id}.log`),
      });
      await waitForHttp(`http://127.0.0.1:${port}/api/items/42`, { proc });
    }
    const request = requestFor(v, token);
    const script = writeWrkScript(work, `${name}-${v.id}-${port}`, request);
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
   * Warm the sides up (load.mjs warmUp): `together` loads both at once, as they are then measured, so neither
   * sits idle while the other warms; `alone` warms each in turn on the whole core. Returns what each side took.
   */
  const warmUpSides = async (sides) => {
    const options = { min: ctx.warmup, max: ctx.warmupMax, connections, cpus: loadCpu };
    // At the cap with a rate still rising: measured anyway, and said so.
    const took = (w, i) => `${w.seconds} s${warmedUp(w.rates[i], { min: options.min }) ? '' : ' (still rising)'}`;
    if (ctx.warm === 'alone') {
      const each = [];
      for (const s of sides) each.push(took(await warmUp([s], options), 0));
      return each;
    }
    const w = await warmUp(sides, options);
    return sides.map((_, i) => took(w, i));
  };

  const load = (sides) =>
    Promise.all(
      sides.map(async (s) => {
        const cpu0 = cpuTimeUs(s.proc.pid);
        const wrk = await runWrk({ url: s.url, script: s.script, durationSec: ctx.sliceS, connections, cpus: loadCpu });
        const cpu = cpuTimeUs(s.proc.pid) - cpu0;
        return {
          name: s.name,
          id: s.id,
          rps: wrk.rps,
          requests: wrk.requests,
          errors: wrk.non2xx + wrk.socket_errors,
          cpuUsPerReq: cpu / Math.max(1, wrk.requests),
          rssMb: rssNow(s.proc.pid) / 2 ** 20,
        };
      }),
    );

  /** One pair: fresh starts of both sides, alternating which goes first, and the slices' CPU per request of each. */
  const measure = async (pair) => {
    const rowsOf = { A: pairableRow(pair.a), B: pairableRow(pair.b) };
    const got = [];
    for (let start = 0; start < ctx.starts; start++) {
      const ports = [await freePort(), await freePort()];
      const order = start % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
      const sides = [];
      try {
        for (const [i, name] of order.entries()) sides.push(await side(name, rowsOf[name], ports[i]));
        for (const s of sides) await waitIdle(s.proc.pid);
        if (ctx.idleS > 0) {
          log(`${pair.name}, start ${start + 1} of ${ctx.starts}: both sides idle for ${ctx.idleS} s`);
          await sleep(ctx.idleS * 1000);
        }
        const took = await warmUpSides(sides);
        const warm = sides.map((s, i) => `${s.name} ${s.id} ${took[i]}`).join(', ');
        log(`${pair.name}, start ${start + 1} of ${ctx.starts}: ${order.join(' then ')} started; warmed up ${ctx.warm} (${warm})`);
        for (let i = 0; i < Math.ceil(ctx.slices / ctx.starts); i++) {
          const by = Object.fromEntries((await load(sides)).map((r) => [r.name, r]));
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
      } finally {
        for (const s of sides) await s.proc.stop();
      }
    }
    return got;
  };

  // A pair that fails (a side that would not start, answered wrongly, or dropped requests) is recorded with its
  // error and the next pair goes on: its target then reads "not measured".
  const measured = [];
  for (const pair of pairs) {
    try {
      const got = await measure(pair);
      const estimate = pairEstimate(got);
      measured.push({ ...pair, slices: got, estimate, cpu_ratio_median: median(got.map((s) => s.b / s.a)) });
      log(`${pair.name}: B/A throughput ${estimate.median.toFixed(3)} (slices ${estimate.low.toFixed(3)}–${estimate.high.toFixed(3)})`);
    } catch (err) {
      measured.push({ ...pair, slices: [], estimate: null, error: err.message.slice(0, 500) });
      log(`${pair.name}: FAILED ${err.message.slice(0, 300)}`);
    }
  }
  return measured;
}
