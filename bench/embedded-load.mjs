#!/usr/bin/env node
/**
 * Load time and memory of the embedded engine at size: generates N tuples
 * (bench/gen-tuples.mjs), starts Warden as shipped (`node dist/src/cli.js
 * start`) on a gateway with them, and reports the time from spawn to the
 * first healthz answer and the process's peak RSS (VmHWM) at that point.
 *
 *   node bench/embedded-load.mjs --tuples 100000,340000,1000000
 *   node bench/embedded-load.mjs --tuples 340000 --format jsonl
 *   node bench/embedded-load.mjs --tuples 1000000 --node-flags "--cpu-prof --cpu-prof-dir=/tmp/prof"
 *
 * Needs `npm run build` first. Files are kept in bench/.work/embedded-load/
 * (regenerated only when missing).
 */

import { parseArgs } from 'node:util';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTimeUs, createProcessTracker, exitOnSignals, freePort, peakRss, sleep } from './lib/system.mjs';
import { DOCS_MODEL_DSL, writeTuples } from './gen-tuples.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(BENCH, '..');
/** A gateway.yaml with one route checking `user:{user} can_read doc:{path.id}` on the embedded engine. */
export function docsGatewayYaml({ port, upstreamPort, tuplesFile, modelFile }) {
  return `server:
  listen: 127.0.0.1:${port}
  public_url: http://127.0.0.1:${port}
  admin_listen: null
store: { driver: memory }
identity:
  dev_issuer: true
authz:
  engine: embedded
  model: ${JSON.stringify(modelFile)}
  tuples: ${JSON.stringify(tuplesFile)}
routes:
  - name: docs
    match: { path: "/api/docs/:id" }
    upstream: { url: "http://127.0.0.1:${upstreamPort}", strip_prefix: /api }
    authorize: [{ user: "user:{user}", relation: can_read, object: "doc:{path.id}" }]
`;
}

/** Spawns Warden on `yamlFile`; resolves with load time (spawn → healthz 200) and peak RSS. */
export async function measureLoad({ cli, yamlFile, port, nodeFlags = [], timeoutMs = 120_000, env = {} }) {
  const tracker = createProcessTracker();
  const t0 = performance.now();
  const proc = tracker.start('warden', process.execPath, [...nodeFlags, cli, 'start', '-c', yamlFile], {
    env: { ...process.env, WARDEN_LOG_LEVEL: 'warn', WARDEN_DATA_DIR: join(dirname(yamlFile), 'data'), ...env },
    logFile: join(dirname(yamlFile), 'warden.log'),
  });
  let rss = 0;
  for (;;) {
    if (proc.exitInfo) return { ok: false, error: `exited ${JSON.stringify(proc.exitInfo)} (see ${join(dirname(yamlFile), 'warden.log')})`, peak_rss_mb: rss };
    if (performance.now() - t0 > timeoutMs) return { ok: false, error: 'timeout', peak_rss_mb: rss };
    rss = Math.max(rss, peakRss(proc.pid) / 2 ** 20);
    const up = await fetch(`http://127.0.0.1:${port}/.warden/healthz`, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) {
      const loadMs = performance.now() - t0;
      rss = Math.max(rss, peakRss(proc.pid) / 2 ** 20);
      // CPU time of the tree (the bin re-executes node with its flags): robust to a busy machine, unlike wall time.
      const cpuS = cpuTimeUs(proc.pid) / 1e6;
      return {
        ok: true,
        load_s: +(loadMs / 1000).toFixed(2),
        load_cpu_s: +cpuS.toFixed(2),
        peak_rss_mb: Math.round(rss),
        pid: proc.pid,
        stop: () => proc.stop(),
      };
    }
    await sleep(50);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values: opt } = parseArgs({
    options: {
      tuples: { type: 'string', default: '100000' },
      format: { type: 'string', default: 'yaml' },
      'node-flags': { type: 'string', default: '' },
      'timeout-s': { type: 'string', default: '120' },
      dist: { type: 'string', default: join(REPO, 'dist') },
    },
  });

  exitOnSignals();

  const cli = join(resolve(opt.dist), 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: npm run build first`);
  const dir = join(BENCH, '.work', 'embedded-load');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.fga'), DOCS_MODEL_DSL);

  const rows = [];
  for (const n of opt.tuples.split(',').map(Number)) {
    const ext = opt.format === 'jsonl' ? 'jsonl' : 'yaml';
    const tuplesFile = join(dir, `tuples-${n}.${ext}`);
    if (!existsSync(tuplesFile)) {
      process.stderr.write(`generating ${n} tuples → ${tuplesFile}\n`);
      await writeTuples(tuplesFile, n);
    }
    const port = await freePort();
    const yamlFile = join(dir, `gateway-${n}.yaml`);
    writeFileSync(yamlFile, docsGatewayYaml({ port, upstreamPort: 9, tuplesFile, modelFile: join(dir, 'model.fga') }));
    const nodeFlags = opt['node-flags'].split(/\s+/).filter(Boolean);
    const r = await measureLoad({ cli, yamlFile, port, nodeFlags, timeoutMs: Number(opt['timeout-s']) * 1000 });
    if (r.ok) await r.stop();
    const row = {
      tuples: n,
      format: ext,
      ok: r.ok,
      load_s: r.load_s,
      load_cpu_s: r.load_cpu_s,
      peak_rss_mb: Math.round(r.peak_rss_mb),
      ...(r.error ? { error: r.error } : {}),
    };
    rows.push(row);
    process.stdout.write(JSON.stringify(row) + '\n');
  }
}
