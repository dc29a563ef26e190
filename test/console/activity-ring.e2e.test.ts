/**
 * The console's activity ring in the store, written in batches by real
 * `warden start` processes on one real Redis: a batch still in memory at
 * SIGTERM reaches the store before the process exits, and two instances'
 * items for one person both appear in that person's console activity.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from '../support/browser.js';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { until } from '../support/eventually.js';
import { REPO_ROOT } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { freePort } from '../support/net.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { spawnService, type Service } from '../support/processes.js';
import { createRedisStore } from '../../src/store/redis.js';
import { createLogger } from '../../src/observability/logger.js';
import type { Store } from '../../src/store/store.js';

const yaml = (port: number, upstream: string, redis: TestRedis, interval: string) => `
server:
  listen: 127.0.0.1:${port}
  admin_listen: null
  shutdown_timeout: 10s
store: { driver: redis, url: "${redis.url}", key_prefix: "${redis.keyPrefix}" }
identity:
  dev_issuer: true
authz:
  engine: embedded
  model: ${REPO_ROOT}/test/approvals/fixtures/model.fga
  tuples: ${REPO_ROOT}/test/approvals/fixtures/tuples.yaml
console:
  activity_interval: ${interval}
routes:
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "${upstream}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
`;

interface Instance {
  warden: Service;
  url: string;
  token: string;
}

describe('activity ring of real processes on one Redis', () => {
  let upstream: Upstream;
  let redis: TestRedis;
  let store: Store;
  let dir: string;
  const started: Service[] = [];

  beforeAll(async () => {
    requireBuiltCli();
    [upstream, redis] = await Promise.all([startUpstream(), startRedis()]);
    store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 2_000, logger: createLogger({ level: 'silent' }) });
    dir = mkdtempSync(join(tmpdir(), 'warden-activity-ring-'));
  });
  afterAll(async () => {
    for (const s of started) await s.kill();
    await store?.close();
    await redis?.stop();
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(name: string, interval: string): Promise<Instance> {
    const port = await freePort();
    const config = join(dir, `${name}.yaml`);
    writeFileSync(config, yaml(port, upstream.url, redis, interval));
    const env = { ...process.env, WARDEN_DATA_DIR: join(dir, `${name}-data`), WARDEN_LOG_LEVEL: 'warn' };
    const url = `http://127.0.0.1:${port}`;
    const warden = await spawnService(name, process.execPath, [CLI, 'start', '-c', config], {
      env,
      ready: async () => (await fetch(`${url}/.warden/healthz`, { signal: AbortSignal.timeout(1_000) })).ok,
    });
    started.push(warden);
    const minted = await runCli(['token', '--agent', 'bot', '--user', 'alice', '-c', config], { cwd: REPO_ROOT, env });
    expect(minted.code, minted.stderr).toBe(0);
    return { warden, url, token: minted.stdout.trim() };
  }

  /** One request for alice; resolves with its request id. */
  async function call(i: Instance, path: string): Promise<string> {
    const res = await fetch(`${i.url}${path}`, { headers: { authorization: `Bearer ${i.token}` }, signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    return res.headers.get('x-request-id')!;
  }

  /** alice's ring as the store holds it, newest first. */
  const ring = async () => (await store.listRange('activity:alice', 200)).map((s) => JSON.parse(s) as { id: string; path: string; user: string });

  it('a batch still in memory at SIGTERM is in the store once the process has exited', async () => {
    // A 10 s interval: nothing is written before the shutdown does it.
    const a = await start('sigterm', '10s');
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push(await call(a, `/pay/acme/sigterm-${n}`));
    expect(await ring(), 'the batch waits in memory for its interval').toEqual([]);
    await a.warden.stop(); // SIGTERM (SIGKILL only after 5 s)
    expect(a.warden.output()).not.toMatch(/activity: could not/);
    const got = await ring();
    expect(got.map((r) => r.id)).toEqual([...ids].reverse());
    expect(got.map((r) => r.path)).toEqual([4, 3, 2, 1, 0].map((n) => `/pay/acme/sigterm-${n}`));
    expect(new Set(got.map((r) => r.user))).toEqual(new Set(['alice']));
  });

  it('two instances write to one ring: alice sees the requests of both in the console of either', async () => {
    const [a, b] = await Promise.all([start('one', '100ms'), start('two', '100ms')]);
    const before = new Set((await ring()).map((r) => r.id));
    const sent: string[] = [];
    for (let n = 0; n < 3; n++) {
      sent.push(await call(a, `/pay/acme/via-one-${n}`));
      sent.push(await call(b, `/pay/acme/via-two-${n}`));
    }
    // Each instance writes its batch within its interval; no shutdown needed.
    await until(
      async () => {
        const now = new Set((await ring()).map((r) => r.id));
        return sent.every((id) => now.has(id));
      },
      { what: 'both instances’ items in the ring' },
    );
    expect((await ring()).filter((r) => !before.has(r.id)).length).toBe(6);

    let browser: Browser | undefined;
    try {
      browser = await launchBrowser();
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${b.url}/.warden/console/activity`);
      await devSignInIfAsked(page, 'alice');
      const shown = await page.locator('#activity .request').allTextContents();
      for (let n = 0; n < 3; n++) {
        expect(shown).toContain(`GET /pay/acme/via-one-${n}`);
        expect(shown).toContain(`GET /pay/acme/via-two-${n}`);
      }
    } finally {
      await browser?.close();
    }
  });
});
