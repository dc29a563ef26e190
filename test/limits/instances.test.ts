/**
 * Limits are exact across instances: two `warden start` processes on one real
 * Redis. 200 concurrent requests against a limit of 50 → exactly 50 pass;
 * 50 concurrent spends of 20 against max 500 → exactly 25 forwarded; a Warden
 * killed (SIGKILL) between reserve and commit does not hold the reservation
 * past its lease; a restarted Warden keeps the windows. `warden explain` shows
 * the limit and budget outcome without consuming anything.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/identity/dev-issuer.js';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml, REDIS_STORE_YAML } from '../support/config.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const gatewayYaml = (publicUrl: string) => `
server:
  listen: 127.0.0.1:8080
  admin_listen: null
  public_url: ${publicUrl}
${REDIS_STORE_YAML}
${devPolicyYaml(join(REPO_ROOT, 'test/approvals/fixtures'))}
approvals:
  hold: 200ms
  notify: [{ log: true }]
routes:
  - name: limited
    match: { path: "/limited/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /limited }
    authorize: []
    rate_limit: { requests: 50, per: 1h }
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    budget: { key: "{user}", amount: "{body.amount}", max: 500, per: 24h, over: deny }
  - name: pay-approve
    match: { path: "/pay-approve/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay-approve }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    budget: { key: "{user}", amount: "{body.amount}", max: 500, per: 24h, over: approve }
  - name: slow
    match: { path: "/slow/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /slow, timeout: 60s }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    budget: { key: "{user}", amount: "{body.amount}", max: 100, per: 24h, lease: 5s }
`;

interface Instance {
  url: string;
  child: ChildProcess;
  output: () => string;
}

describe('limits across two Warden processes on one Redis', () => {
  let redis: TestRedis;
  let upstream: Upstream;
  let dir: string;
  let configFile: string;
  let publicUrl: string;
  let env: NodeJS.ProcessEnv;
  const running = new Set<ChildProcess>();
  let a: Instance;
  let b: Instance;
  let token: (agent: string, user: string) => Promise<string>;

  async function launch(port: number): Promise<Instance> {
    let out = '';
    const child = spawn(process.execPath, [CLI, 'start', '-c', configFile], {
      cwd: dir,
      env: { ...env, WARDEN_LISTEN: `127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    child.on('exit', () => running.delete(child));
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`warden exited early:\n${out}`);
      const ok = await fetch(`${url}/.warden/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`warden did not start:\n${out}`);
      await sleep(100);
    }
    return { url, child, output: () => out };
  }

  async function stop(i: Instance, signal: NodeJS.Signals): Promise<void> {
    if (i.child.exitCode !== null || i.child.signalCode !== null) return;
    const exited = new Promise((r) => i.child.once('exit', r));
    i.child.kill(signal);
    await exited;
  }

  beforeAll(async () => {
    requireBuiltCli();
    redis = await startRedis();
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-limits-'));
    const [pa, pb] = [await freePort(), await freePort()];
    publicUrl = `http://127.0.0.1:${pa}`;
    configFile = join(dir, 'gateway.yaml');
    writeFileSync(configFile, gatewayYaml(publicUrl));
    env = {
      ...process.env,
      NODE_ENV: 'test',
      WARDEN_DATA_DIR: join(dir, 'data'),
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.keyPrefix,
      UPSTREAM_URL: upstream.url,
      WARDEN_LOG_LEVEL: 'warn',
    };
    // The dev issuer key is made once, before two processes could race to create it.
    const issuer = await loadDevIssuer({ dataDir: join(dir, 'data'), publicUrl });
    token = (agent, user) => issuer.issue({ agent, user, scopes: [], ttlSeconds: 3600 });
    [a, b] = await Promise.all([launch(pa), launch(pb)]);
  });

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await upstream?.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const pay = (i: Instance, path: string, t: string, amount: number, extra: Record<string, unknown> = {}) =>
    fetch(`${i.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount, ...extra }),
    });
  const budgetOf = async (i: Instance, t: string, route: string) => {
    const res = await fetch(`${i.url}/.warden/budgets`, { headers: { authorization: `Bearer ${t}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { budgets: Array<Record<string, unknown>> }).budgets.find((x) => x.route === route);
  };
  const forwarded = (prefix: string) => upstream.requests.filter((r) => r.url.startsWith(prefix)).length;

  it('200 concurrent requests against a limit of 50 on two instances: exactly 50 pass', async () => {
    const t = await token('bot', 'alice');
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${(i % 2 ? b : a).url}/limited/ping-${i}`, { headers: { authorization: `Bearer ${t}` } }).then((r) => ({
          status: r.status,
          policy: r.headers.get('ratelimit-policy'),
          limit: r.headers.get('ratelimit'),
        })),
      ),
    );
    const statuses = answers.map((x) => x.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(statuses.filter((s) => s === 429)).toHaveLength(150);
    expect(forwarded('/ping-')).toBe(50);
    // Each answer let through says how many remain; Redis decided one by one, so across both instances that is 49 … 0, once each.
    const passed = answers.filter((x) => x.status === 200);
    expect(new Set(passed.map((x) => x.policy))).toEqual(new Set(['"limited";q=50;w=3600']));
    const remaining = passed.map((x) => Number(/;r=(\d+);t=\d+$/.exec(x.limit ?? '')?.[1])).sort((p, q) => p - q);
    expect(remaining).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('50 concurrent spends of 20 against max 500 on two instances: exactly 25 forwarded, the rest denied', async () => {
    const t = await token('bot', 'alice');
    const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => pay(i % 2 ? b : a, '/pay/acme/charges', t, 20, { ref: i }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(25);
    expect(statuses.filter((s) => s === 403)).toHaveLength(25);
    expect(forwarded('/acme/charges')).toBe(25);
    await expect.poll(() => budgetOf(a, t, 'pay')).toMatchObject({ spent: 500, held: 0, remaining: 0 });
  });

  it('with over: approve the rest are held for a person (or refused when too many wait), never forwarded', async () => {
    const t = await token('bot', 'alice');
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        pay(i % 2 ? b : a, '/pay-approve/acme/transfers', t, 20, { ref: i }).then(async (r) => ({
          status: r.status,
          code: ((await r.json()) as { code?: string }).code,
        })),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(25);
    const rest = results.filter((r) => r.status !== 200);
    expect(rest.every((r) => r.code === 'approval_pending' || r.code === 'rate_limited')).toBe(true);
    expect(rest.some((r) => r.code === 'approval_pending')).toBe(true);
    expect(forwarded('/acme/transfers')).toBe(25);
  });

  it('a Warden killed between reserve and commit does not hold the reservation past its lease', async () => {
    const t = await token('bot', 'bob');
    upstream.setHandler((req, res, body) => {
      if (req.url?.startsWith('/bobco/hang')) return; // never answers: the reservation stays uncommitted
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, body: body.toString('utf8') }));
    });
    const inflight = pay(a, '/slow/bobco/hang', t, 100).catch(() => null);
    await expect.poll(() => forwarded('/bobco/hang'), { timeout: 10_000 }).toBe(1);
    await stop(a, 'SIGKILL');
    await inflight;
    // Within the lease the reservation still counts on the other instance...
    expect(await budgetOf(b, t, 'slow')).toMatchObject({ spent: 0, held: 100, remaining: 0 });
    expect((await pay(b, '/slow/bobco/next', t, 1)).status).toBe(403);
    // ...and not after it: the full budget is there again.
    await expect.poll(async () => (await budgetOf(b, t, 'slow'))?.held, { timeout: 8_000, interval: 250 }).toBe(0);
    expect(await budgetOf(b, t, 'slow')).toMatchObject({ spent: 0, held: 0, remaining: 100 });
    expect((await pay(b, '/slow/bobco/next', t, 100)).status).toBe(200);
  });

  it('a restarted Warden keeps the windows (they live in Redis)', async () => {
    const t = await token('bot', 'alice');
    await stop(b, 'SIGTERM');
    const c = await launch(await freePort());
    try {
      expect(await budgetOf(c, t, 'pay')).toMatchObject({ spent: 500, remaining: 0 });
      const res = await pay(c, '/pay/acme/charges', t, 1);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'budget_exceeded', spent: 500, remaining: 0 });
      expect((await fetch(`${c.url}/limited/again`, { headers: { authorization: `Bearer ${t}` } })).status).toBe(429);
    } finally {
      await stop(c, 'SIGTERM');
    }
  });

  it('warden explain shows the limit and budget outcome and consumes nothing', async () => {
    const alice = await token('bot', 'alice');
    const carol = await token('bot', 'carol');
    const explain = (t: string, ...args: string[]) => runCli(['explain', '-c', configFile, '--token', t, ...args], { cwd: dir, env });
    const limited = await explain(alice, '/limited/x');
    expect(limited.stdout).toMatch(/rate limit\s+limited key="bot:alice": LIMITED/);
    expect(limited.stdout).toContain('rate_limited');
    const over = await explain(alice, '-X', 'POST', '/pay/acme/charges', '--data', '{"amount":20}');
    expect(over.stdout).toMatch(/budget\s+pay key="alice": OVER_DENY \(amount=20 max=500 per=24h spent=500 held=0 remaining=0\)/);
    expect(over.stdout).toContain('budget_exceeded');
    // Fresh keys (bob's spend on pay, carol's requests) are allowed, again and again: explain consumes nothing.
    const bob = await token('bot', 'bob');
    for (let i = 0; i < 2; i++) {
      const ok = await explain(bob, '-X', 'POST', '/pay/bobco/charges', '--data', '{"amount":500}');
      expect(ok.stdout).toMatch(/budget\s+pay key="bob": RESERVED \(amount=500 max=500 per=24h spent=0 held=0 remaining=500\)/);
    }
    expect((await explain(carol, '/limited/y')).stdout).toMatch(/rate limit\s+limited key="bot:carol": ALLOWED \(requests=50 per=1h remaining=49\)/);
  }, 90_000);
});
