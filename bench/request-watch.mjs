/**
 * What each request costs a Node server, in the server, while it is under
 * load: loaded into it with `--import` (the harness passes NODE_OPTIONS on to
 * every row it starts), it counts the `request` events of every node:http
 * server and, every two seconds of load, appends one line to a file:
 *
 *   <pid> requests <n> alloc-KB/req <kb> scavenge-us/req <us> user-us/req <us> sys-us/req <us>
 *
 * alloc-KB/req is young-generation allocation estimated from the scavenges
 * (each one follows a full semi-space: 8 MB with the bin's flags,
 * REQUEST_WATCH_SEMI_MB otherwise); user and sys are process.cpuUsage().
 * Windows with fewer than 1,000 requests (start-up, idle) are left out.
 *
 *   REQUEST_WATCH_OUT=/tmp/g4.log NODE_OPTIONS="--import ./bench/request-watch.mjs" \
 *     node bench/run.mjs --variants G4 --rounds 1 --duration 10 --no-micro
 *
 * Lines of other processes that served requests (R, F, a probe) land in the
 * same file under their own pid. Not part of any measured row: a diagnostic.
 */

import { PerformanceObserver, constants } from 'node:perf_hooks';
import { appendFileSync } from 'node:fs';
import { onEachRequest } from './lib/count-requests.mjs';

const out = process.env.REQUEST_WATCH_OUT ?? `/tmp/request-watch-${process.pid}.log`;
const semiMb = Number(process.env.REQUEST_WATCH_SEMI_MB ?? 8);

let requests = 0;
let scavenges = 0;
let scavengeMs = 0;

onEachRequest(() => requests++);

new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      scavenges++;
      scavengeMs += entry.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });

let last = { requests: 0, scavenges: 0, scavengeMs: 0, cpu: process.cpuUsage() };
setInterval(() => {
  const cpu = process.cpuUsage();
  const n = requests - last.requests;
  const d = { scavenges: scavenges - last.scavenges, ms: scavengeMs - last.scavengeMs, user: cpu.user - last.cpu.user, sys: cpu.system - last.cpu.system };
  last = { requests, scavenges, scavengeMs, cpu };
  if (n < 1000) return;
  const per = (x, digits = 1) => (x / n).toFixed(digits);
  appendFileSync(
    out,
    `${process.pid} requests ${n} alloc-KB/req ${per(d.scavenges * semiMb * 1024)} scavenge-us/req ${per(d.ms * 1000, 2)} user-us/req ${per(d.user)} sys-us/req ${per(d.sys)}\n`,
  );
}, 2000).unref();
