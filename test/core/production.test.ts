/**
 * The production shape: OpenFGA server (populated with `warden fga push`) and
 * Redis as the store, and what happens when either one fails — the request is
 * refused (503), never forwarded.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, startWarden, type WardenHandle } from '../support/gateway.js';
import { CLI } from '../support/cli.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startOpenFga, type OpenFgaServer } from '../support/openfga.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { stopProcess } from '../support/net.js';

const run = promisify(execFile);
let fga: OpenFgaServer;
let redis: TestRedis;
let upstream: Upstream;
let warden: WardenHandle;
let dir: string;
let storeId: string;
let modelId: string;

const config = (fgaUrl: string) => `
store: { driver: redis, url: "${redis.url}", key_prefix: "${redis.keyPrefix}", timeout: 500ms }
identity: { dev_issuer: true }
authz:
  engine: openfga
  model: policies/model.fga
  cache_ttl: 0s
  openfga: { api_url: "${fgaUrl}", store_id: "${storeId}", model_id: "${modelId}", timeout: 500ms, retries: 0 }
routes:
  - name: notes
    match: { path: /notes/docs/:doc }
    upstream: { url: "${upstream.url}", strip_prefix: /notes }
    authorize:
      - { user: "agent:{agent}", relation: can_call, object: "api:notes" }
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
`;

beforeAll(async () => {
  [fga, redis, upstream] = await Promise.all([startOpenFga({ private: true }), startRedis({ local: true }), startUpstream()]);
  dir = mkdtempSync(join(tmpdir(), 'warden-prod-'));
  // `warden fga push` as an operator runs it, against the real server.
  const pushConfig = join(dir, 'push.yaml');
  writeFileSync(
    pushConfig,
    `identity: { dev_issuer: true }
authz:
  engine: embedded
  model: ${join(REPO_ROOT, 'policies/model.fga')}
  tuples: ${join(REPO_ROOT, 'policies/tuples.yaml')}
  openfga: { api_url: "${fga.apiUrl}" }
`,
  );
  const { stdout } = await run(process.execPath, [CLI, 'fga', 'push', '-c', pushConfig], { cwd: dir });
  storeId = /FGA_STORE_ID=(\S+)/.exec(stdout)![1];
  modelId = /FGA_MODEL_ID=(\S+)/.exec(stdout)![1];
  // Pushing again is idempotent and reuses the store.
  const again = await run(process.execPath, [CLI, 'fga', 'push', '-c', pushConfig], { cwd: dir });
  expect(/FGA_STORE_ID=(\S+)/.exec(again.stdout)![1]).toBe(storeId);
  warden = await startWarden({ config: config(fga.apiUrl) });
});

afterAll(async () => {
  await warden?.close();
  await Promise.all([fga?.stop(), redis?.stop(), upstream?.close()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  upstream.requests.length = 0;
});

describe('Warden on OpenFGA and Redis', () => {
  it('answers from the OpenFGA server the policies were pushed to', async () => {
    const alice = await warden.token('demo-agent', 'alice');
    const bad = await warden.token('rogue-agent', 'alice');
    const get = (p: string, t: string) => fetch(`${warden.url}${p}`, { headers: { authorization: `Bearer ${t}` } });
    expect((await get('/notes/docs/1', alice)).status).toBe(200);
    expect((await get('/notes/docs/2', alice)).status).toBe(403);
    expect((await get('/notes/docs/1', bad)).status).toBe(403);
    expect((await get('/notes/docs/3', alice)).status).toBe(200); // via group and folder
    expect(upstream.requests.map((r) => r.url)).toEqual(['/docs/1', '/docs/3']);
    const ready = await fetch(`${warden.url}/.warden/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { store: 'ok', authz: 'ok' } });
  });

  it('fails closed with 503 authz_unavailable when OpenFGA hangs, then recovers', async () => {
    const alice = await warden.token('demo-agent', 'alice');
    await stopProcess(fga.pid!);
    try {
      const res = await fetch(`${warden.url}/notes/docs/1`, { headers: { authorization: `Bearer ${alice}` } });
      const body = (await res.json()) as { code: string };
      expect(res.status, JSON.stringify(body)).toBe(503);
      expect(body.code).toBe('authz_unavailable');
      expect(upstream.requests).toHaveLength(0);
      const ready = await fetch(`${warden.url}/.warden/readyz`);
      expect(ready.status).toBe(503);
    } finally {
      process.kill(fga.pid!, 'SIGCONT');
    }
    const res = await fetch(`${warden.url}/notes/docs/1`, { headers: { authorization: `Bearer ${alice}` } });
    expect(res.status).toBe(200);
  });

  it('reports the store unready when Redis is down, and ready again after it returns', async () => {
    await redis.stop();
    try {
      const ready = await fetch(`${warden.url}/.warden/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: Record<string, string> }).checks.store).toBe('unavailable');
    } finally {
      await redis.restart();
    }
    for (let i = 0; i < 50; i++) {
      const r = await fetch(`${warden.url}/.warden/readyz`);
      if (r.status === 200) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('store never became ready again');
  });
});
