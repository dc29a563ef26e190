#!/usr/bin/env node
/**
 * How long `warden replay` takes for a large decision log (issue #15: 100k
 * records in under 30 s with the embedded engine). Generates N decision
 * records over the demo gateway.yaml's routes — REST reads, writes, deletes
 * (holds), MCP tool calls, 404s; many users and documents so the decision
 * cache does not answer everything — then times the built CLI replaying them
 * under a copy of gateway.yaml with its decision cache off. A benchmark, not
 * a test: it prints the time and exits 0 unless replay itself fails.
 *
 *   node bench/replay.mjs [--records 100000] [--keep]
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { records: { type: 'string', default: '100000' }, keep: { type: 'boolean', default: false } } });
const N = Number(opt.records);
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-replay-'));

// The demo config with absolute policy paths and the decision cache off (every check is evaluated).
const config = readFileSync(join(REPO, 'gateway.yaml'), 'utf8')
  .replace('policies/model.fga', join(REPO, 'policies/model.fga'))
  .replace('policies/tuples.yaml', join(REPO, 'policies/tuples.yaml'))
  .replace('cache_ttl: 5s', 'cache_ttl: 0s');
writeFileSync(join(dir, 'gateway.yaml'), config);

const users = ['alice', 'bob', ...Array.from({ length: 198 }, (_, i) => `user${i}`)];
const agents = ['demo-agent', 'demo-agent', 'demo-agent', 'rogue-agent'];
const files = ['readme.txt', 'notes.txt', 'secret.txt', ...Array.from({ length: 50 }, (_, i) => `f${i}.txt`)];
let seed = 42;
const rnd = (n) => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};
const pick = (list) => list[rnd(list.length)];

function record(i) {
  const user = pick(users);
  const agent = pick(agents);
  const base = {
    t: 'decision',
    instance: 'bench',
    seq: i,
    time: new Date(Date.UTC(2026, 10, 29) + i * 10).toISOString(),
    id: `bench-${i}`,
    agent,
    user,
    issuer: 'http://127.0.0.1:8080/.warden/dev',
    status: 200,
    latency_ms: 1,
  };
  const kind = rnd(10);
  if (kind < 4) return { ...base, route: 'notes-read', decision: 'allow', method: 'GET', path: `/notes/docs/${1 + rnd(300)}` };
  if (kind < 5) return { ...base, route: 'notes-write', decision: 'deny', code: 'forbidden', status: 403, method: 'PUT', path: `/notes/docs/${1 + rnd(300)}` };
  if (kind < 6)
    return { ...base, route: 'notes-delete', decision: 'pending', code: 'approval_pending', status: 202, method: 'DELETE', path: `/notes/docs/${1 + rnd(3)}` };
  if (kind < 9) {
    const tool = pick(['read_file', 'read_file', 'write_file', 'delete_file']);
    return {
      ...base,
      route: 'files-mcp',
      decision: 'allow',
      method: 'POST',
      path: '/mcp/files',
      mcp_method: 'tools/call',
      tool,
      input: { 'args.path': pick(files) },
    };
  }
  return { ...base, route: '-', decision: 'deny', code: 'not_found', status: 404, method: 'GET', path: `/nowhere/${i}`, agent: undefined, user: undefined };
}

const log = join(dir, 'decisions.jsonl');
const lines = [];
for (let i = 0; i < N; i++) lines.push(JSON.stringify(record(i)));
writeFileSync(log, lines.join('\n') + '\n');

const cli = join(REPO, 'dist/src/cli.js');
const started = process.hrtime.bigint();
const run = spawnSync(process.execPath, [cli, 'replay', '--json', '-c', join(dir, 'gateway.yaml'), log], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
if (run.status !== 0 && run.status !== 1) {
  process.stderr.write(run.stderr);
  process.exit(1);
}
const report = JSON.parse(run.stdout);
process.stdout.write(
  `warden replay: ${report.records} records (${report.evaluated} decided again, ${report.not_evaluated} not, ${report.changed} changed) in ${seconds.toFixed(1)} s ` +
    `(${Math.round(report.records / seconds)} records/s, process start and config load included; load average ${loadavg()[0].toFixed(1)}); target < 30 s for 100k\n`,
);
if (opt.keep) process.stdout.write(`kept ${dir}\n`);
else rmSync(dir, { recursive: true, force: true });
