/**
 * An agent that disconnects while its request waits on a limit decision (here:
 * a briefly frozen Redis) must not leave the exchange hanging: nothing is sent
 * upstream, the budget reservation is released, and Warden still shuts down.
 * (Before the fix, the forward started on a response whose 'close' had already
 * passed: the upstream got the request, the exchange never settled, the
 * upstream connection stayed paused and shutdown waited forever.)
 */

import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const config = `
server:
  listen: 127.0.0.1:0
store:
  driver: redis
  url: \${REDIS_URL}
  key_prefix: \${REDIS_PREFIX}
  timeout: 5s
identity:
  dev_issuer: true
authz:
  engine: embedded
  model: test/approvals/fixtures/model.fga
  tuples: test/approvals/fixtures/tuples.yaml
routes:
  - name: pay
    match: { path: "/pay/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: []
    rate_limit: { requests: 100, per: 1h }
    budget: { key: "{user}", amount: 10, max: 1000, per: 24h }
`;

describe('an agent that leaves while its limits are decided', () => {
  let redis: TestRedis;
  let upstream: Upstream;
  let w: WardenHandle | undefined;

  beforeAll(async () => {
    redis = await startRedis({ local: true });
    upstream = await startUpstream();
    w = await startWarden({
      config,
      env: { REDIS_URL: redis.url, REDIS_PREFIX: redis.keyPrefix, UPSTREAM_URL: upstream.url },
      logLevel: 'info',
    });
  });

  afterAll(async () => {
    redis?.resume();
    await w?.close();
    await upstream?.close();
    await redis?.stop();
  });

  it('is not forwarded, releases its reservation, and does not hold up shutdown', async () => {
    const gw = w as WardenHandle;
    const token = await gw.token('agent-1', 'alice');
    // Warm up: one request through, so the budget holds a commit of 10.
    const ok = await fetch(`${gw.url}/pay/charges`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    const before = upstream.requests.length;

    // Freeze Redis, send a request and leave while its limits wait on Redis.
    redis.pause();
    const { hostname, port } = new URL(gw.url);
    const req = request({ host: hostname, port, path: '/pay/charges?gone=1', headers: { authorization: `Bearer ${token}` } });
    req.on('error', () => {});
    req.end();
    await sleep(300);
    req.destroy();
    await sleep(200);
    redis.resume();

    // The decision now arrives; the exchange must settle without reaching the upstream.
    await expect.poll(async () => (await budgetHeld(gw, token)) === 0, { timeout: 10_000 }).toBe(true);
    await sleep(300);
    expect(upstream.requests.slice(before).some((r) => r.url.includes('gone=1'))).toBe(false);
    // Released, not committed: only the warm-up's 10 is spent (test/limits/agent-cut.test.ts: a cut after forwarding spends).
    expect(await budgetSpent(gw, token)).toBe(10);

    // Shutdown completes (it waited forever for the stuck exchange before the fix).
    const closed = await Promise.race([gw.close().then(() => 'closed'), sleep(20_000).then(() => 'hung')]);
    w = undefined;
    expect(closed).toBe('closed');
  }, 40_000);
});

async function budgetHeld(w: WardenHandle, token: string): Promise<number> {
  const res = await fetch(`${w.url}/.warden/budgets`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { budgets: Array<{ held?: number }> };
  return body.budgets[0]?.held ?? -1;
}

async function budgetSpent(w: WardenHandle, token: string): Promise<number> {
  const res = await fetch(`${w.url}/.warden/budgets`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { budgets: Array<{ spent?: number }> };
  return body.budgets[0]?.spent ?? -1;
}
