/**
 * #17: once loaded, `warden start` sets V8's old-generation growing factor to
 * 1.3 and collects its start-up garbage with one full GC (src/cli/serving-heap.ts),
 * so the limit in force under load is live × 1.3 (at least live + 16 MiB), not
 * the 4× V8 chose at start-up. Seen in V8's own GC trace of the serving process.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, requireBuiltCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { WARDEN_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { SERVING_HEAP_GROWING_PERCENT, settleHeapForServing } from '../../src/cli/serving-heap.js';

let dir: string;
let upstream: Upstream;

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-heap-'));
  upstream = await startUpstream();
});
afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Start Warden with V8's verbose GC trace until it listens; its output (trace included) and a stop. */
async function traced(env: Record<string, string> = {}): Promise<string> {
  const port = await freePort();
  const file = join(dir, `gw-${port}.yaml`);
  writeFileSync(
    file,
    `server: { listen: "127.0.0.1:${port}", admin_listen: null }\n` +
      `authz: { model: ${join(REPO_ROOT, 'test/core/fixtures/model.fga')}, tuples: ${join(REPO_ROOT, 'test/core/fixtures/tuples.yaml')} }\nroutes:\n  - name: api\n    match: { path: /api/:id }\n    upstream: { url: "${upstream.url}" }\n    public: true\n`,
  );
  const child = spawn(process.execPath, [...WARDEN_NODE_FLAGS, '--trace-gc', '--trace-gc-verbose', CLI, 'start', '-c', file], {
    cwd: dir,
    env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), ...env },
  });
  let output = '';
  child.stdout.on('data', (c) => (output += c));
  child.stderr.on('data', (c) => (output += c));
  const exited = new Promise((r) => child.once('exit', r));
  try {
    for (let i = 0; i < 300 && !output.includes('warden listening'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(output).toContain('warden listening');
    // The settling GC runs right after the gateway is up: give its trace lines time to arrive.
    await new Promise((r) => setTimeout(r, 300));
    return output;
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** The growing factors of V8's old-generation limits in a --trace-gc-verbose trace. */
const factors = (trace: string) => [...trace.matchAll(/\[HeapController\] Limit: old size: \d+ KB, new limit: \d+ KB \(([\d.]+)\)/g)].map((m) => Number(m[1]));

describe('warden start: the heap settings once loaded (#17)', () => {
  it('sets the growing factor to 1.3 and sets a limit with it by a full GC at once', async () => {
    const output = await traced();
    const seen = factors(output);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.at(-1)).toBe(1 + SERVING_HEAP_GROWING_PERCENT / 100);
    expect(output).toMatch(/Mark-Compact[^\n]*\n(?:[^\n]*\n)*?[^\n]*\(1\.3\)/);
  }, 60_000);

  it('leaves V8 alone when the node flags are opted out (WARDEN_NODE_FLAGS_APPLIED)', async () => {
    const output = await traced({ WARDEN_NODE_FLAGS_APPLIED: 'off' });
    expect(factors(output)).not.toContain(1 + SERVING_HEAP_GROWING_PERCENT / 100);
  }, 60_000);

  it('keeps a growing factor given on node’s command line, and the opt-out', () => {
    expect(settleHeapForServing(['--heap-growing-percent=50'], undefined)).toBe(false);
    expect(settleHeapForServing(['--heap_growing_percent=50'], undefined)).toBe(false);
    expect(settleHeapForServing([], 'off')).toBe(false);
  });
});
