#!/usr/bin/env node
/**
 * What the audit step costs per request, against the built `dist/`: the
 * process CPU (user + system, all threads) of recording N requests, in bursts
 * of 32 per event-loop turn as a loaded gateway sees them, for
 *
 *   off      no per-request output (log level warn, no decision log)  ~ G3q
 *   line     the info audit line to /dev/null                         ~ G3
 *   decision the decision log: file sink, hash chain, checkpoints     ~ G3D
 *
 * CPU per request barely moves with other load on a shared machine, unlike
 * req/s, so this is how a change to the decision log is judged before the
 * full bench (`bench/run.mjs --variants G3,G3D,G3q`).
 *
 *   node bench/audit-cost.mjs [--records 200000] [--rounds 5] [--dist DIR] [--json]
 */

import { parseArgs } from 'node:util';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '5' },
    dist: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const dist = resolve(opt.dist ?? process.env.WARDEN_BENCH_DIST ?? join(REPO, 'dist'));
const mod = (p) => import(pathToFileURL(join(dist, 'src', p)).href);
const { createAudit } = await mod('observability/audit.js');
const { createDecisionLog } = await mod('audit/decision-log.js');
const { createLogger } = await mod('observability/logger.js');
const { createMetrics } = await mod('observability/metrics.js');
const { parseConfig } = await mod('config/load.js');
const pino = (await import(pathToFileURL(join(REPO, 'node_modules', 'pino', 'pino.js')).href)).default;

const N = Number(opt.records);
const work = mkdtempSync(join(tmpdir(), 'warden-audit-cost-'));

/** A warm G3 request as the audit step sees it: principal, one cached check, vault credentials, 200. */
const state = (i) => ({
  id: `3f1c2a9e-5b7d-4e21-9c3a-${String(i).padStart(12, '0')}`,
  startedAt: Date.now(),
  method: 'GET',
  path: '/api/items/42',
  segments: ['api', 'items', '42'],
  query: '',
  headers: {},
  clientIp: '127.0.0.1',
  route: { name: 'api' },
  routeIndex: 0,
  params: { id: '42' },
  principal: { agent: 'bench-agent', user: 'bench-user', actors: [], issuer: 'http://127.0.0.1:8080', scopes: [] },
  policy: { authorize: [], approval: [], credentials: { kind: 'vault', vault: 'bench' } },
  upstreamHeaders: [],
  checks: [{ user: 'user:bench-user', relation: 'can_read', object: 'item:42', allowed: true, engine: 'embedded', cached: true }],
  decision: 'allow',
  status: 200,
});

const yaml = (path) => `
server: { listen: 127.0.0.1:0 }
identity: { dev_issuer: true }
audit:
  decisions: { sink: file, path: "${path}" }
routes: []
`;

async function variant(name, round) {
  const metrics = createMetrics();
  const devNull = pino.destination({ fd: openSync('/dev/null', 'w'), sync: true });
  const logger = createLogger({ level: name === 'off' ? 'warn' : 'info', destination: devNull });
  let decisions;
  if (name === 'decision') {
    const { config } = parseConfig(yaml(join(work, `d-${round}.jsonl`)), { env: {} });
    decisions = await createDecisionLog(config, { dataDir: work, logger, metrics });
  }
  const audit = createAudit({ logger, metrics }, decisions);
  const states = Array.from({ length: 32 }, (_, i) => state(i));
  const turn = () => new Promise((r) => setImmediate(r));
  // Warm-up (JIT), then the measured records.
  for (let i = 0; i < 20_000; i += 32) {
    for (const s of states) audit(s);
    await turn();
  }
  const t0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < N; i += 32) {
    for (const s of states) audit(s);
    await turn();
  }
  await decisions?.close();
  const cpu = process.cpuUsage(t0);
  const wall = performance.now() - w0;
  return { name, cpu_us_per_req: (cpu.user + cpu.system) / N, wall_us_per_req: (wall * 1000) / N };
}

const names = ['off', 'line', 'decision'];
const runs = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < Number(opt.rounds); round++) {
  const order = round % 2 ? [...names].reverse() : names;
  for (const n of order) runs[n].push(await variant(n, round));
}
rmSync(work, { recursive: true, force: true });

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const result = Object.fromEntries(names.map((n) => [n, { cpu_us_per_req: median(runs[n].map((r) => r.cpu_us_per_req)) }]));
if (opt.json) process.stdout.write(JSON.stringify({ records: N, rounds: Number(opt.rounds), result }) + '\n');
else {
  process.stdout.write(`audit step, CPU µs per request (median of ${opt.rounds} rounds × ${N} records):\n`);
  for (const n of names) process.stdout.write(`  ${n.padEnd(9)} ${result[n].cpu_us_per_req.toFixed(2)}\n`);
  process.stdout.write(`  decision − off  ${(result.decision.cpu_us_per_req - result.off.cpu_us_per_req).toFixed(2)} µs (what the decision log adds)\n`);
  process.stdout.write(`  line − off      ${(result.line.cpu_us_per_req - result.off.cpu_us_per_req).toFixed(2)} µs (what the info audit line adds)\n`);
}
