/**
 * The vault end to end, with real components only: three Warden instances
 * behind a round-robin balancer sharing a real Redis, oidc-provider as the
 * upstream OAuth provider (code + PKCE, rotating refresh tokens), a recording
 * upstream API, and headless Chromium driving the linking flow.
 */

import { connectAs, devSignInIfAsked } from '../support/login.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { runRekey } from '../../src/vault/rekey.js';
import { connectionKey, createConnectionRepository, type ConnectionRepository } from '../../src/vault/records.js';
import { launchBrowser, type Browser } from '../support/browser.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { metricValue, scrape } from '../support/metrics.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startBalancer, startVaultProvider, type Balancer, type VaultProvider } from './support.js';
import { devPolicyYaml, REDIS_STORE_YAML } from '../support/config.js';

const K1 = generateVaultKey();
/** Secret of the clients registered for the exchange endpoint (vault.exchange_clients). */
const EXCHANGE_SECRET = 'vault-e2e-exchange-client-secret-0123456789';
const K2 = generateVaultKey();

function gatewayYaml(keys: string): string {
  return `
server:
  public_url: \${PUBLIC_URL}
${REDIS_STORE_YAML}
${devPolicyYaml('test/vault/fixtures', { cache_ttl: 0 })}
vault:
  keys: ${keys}
  connect_ttl: 2m
  refresh_lease: 2s
  exchange_clients:
    - { client_id: mail-bot, client_secret: "\${EXCHANGE_SECRET}" }
    - { client_id: other-bot, client_secret: "\${EXCHANGE_SECRET}" }
    - { client_id: dave-bot, client_secret: "\${EXCHANGE_SECRET}" }
  providers:
    github:
      authorization_url: \${OP_URL}/auth
      token_url: \${RELAY_URL}
      client_id: warden-vault
      client_secret: \${VAULT_CLIENT_SECRET}
      scopes: [github]
      timeout: 2s
routes:
  - name: github
    match: { path: "/github/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /github }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:github" }]
    credentials: { vault: github }
  - name: exchanged
    match: { path: "/exchanged/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /exchanged }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:github" }]
    credentials:
      token_exchange: { token_url: "\${PUBLIC_URL}/.warden/oauth/token", audience: github, client_id: mail-bot, client_secret: "\${EXCHANGE_SECRET}" }
`;
}
const KEYS_K1 = `[{ id: k1, key: "\${VAULT_KEY_1}" }]`;
const KEYS_K2_K1 = `[{ id: k2, key: "\${VAULT_KEY_2}" }, { id: k1, key: "\${VAULT_KEY_1}" }]`;
const KEYS_K2 = `[{ id: k2, key: "\${VAULT_KEY_2}" }]`;

describe('vault end to end (3 instances, Redis, oidc-provider, Chromium)', () => {
  let redis: TestRedis;
  let lb: Balancer;
  let vp: VaultProvider;
  let upstream: Upstream;
  let browser: Browser;
  let dataDir: string;
  let store: Store;
  const wardens: WardenHandle[] = [];
  /** Every token/secret these tests saw, for the log check at the end. */
  const secrets = new Set<string>();
  let repo: ConnectionRepository;

  const get = async (path: string, token: string, headers: Record<string, string> = {}) =>
    fetch(`${lb.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });

  async function agentToken(agent: string, user: string | null): Promise<string> {
    const t = await wardens[0].token(agent, user);
    secrets.add(t);
    return t;
  }

  /** Seed `user`'s github connection with real provider tokens (linked via code + PKCE). */
  async function seed(user: string, account: string, expiresAt: number) {
    const tokens = await vp.op.userAccessToken({ accountId: account, clientId: vp.clientId, scope: 'github' });
    secrets.add(tokens.access_token).add(tokens.refresh_token!);
    return repo.put({
      user,
      provider: 'github',
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      tokenType: 'Bearer',
      scopes: (tokens.scope ?? '').split(' '),
      expiresAt,
    });
  }

  /** Repository with the current key set (the test's own view of the vault). */
  function useKeys(keys: Array<{ id: string; key: string }>) {
    repo = createConnectionRepository(store, createVaultCipher(keys));
  }

  beforeAll(async () => {
    redis = await startRedis({ local: true });
    lb = await startBalancer();
    vp = await startVaultProvider({ redirectUris: [`${lb.url}/.warden/callback/github`], defaultAccountId: 'gh-alice' });
    secrets.add(vp.clientSecret).add(K1).add(K2);
    upstream = await startUpstream();
    dataDir = mkdtempSync(join(tmpdir(), 'warden-vault-e2e-'));
    const env = {
      PUBLIC_URL: lb.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: redis.keyPrefix,
      OP_URL: vp.op.issuer,
      RELAY_URL: vp.relay.tokenUrl,
      VAULT_CLIENT_SECRET: vp.clientSecret,
      EXCHANGE_SECRET,
      UPSTREAM_URL: upstream.url,
      VAULT_KEY_1: K1,
      VAULT_KEY_2: K2,
    };
    for (let i = 0; i < 3; i++) {
      wardens.push(await startWarden({ config: gatewayYaml(KEYS_K1), env, dataDir }));
    }
    lb.setTargets(wardens.map((w) => w.url));
    store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 2000, logger: createLogger({ level: 'silent' }) });
    useKeys([{ id: 'k1', key: K1 }]);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    for (const w of wardens) await w.close();
    await store?.close();
    await upstream?.close();
    await vp?.close();
    await lb?.close();
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('links an account in the browser, then the upstream gets the user’s token and never the agent’s', async () => {
    const token = await agentToken('mail-bot', 'alice');
    const before = upstream.requests.length;
    const denied = await get('/github/user', token);
    expect(denied.status).toBe(403);
    const problem = (await denied.json()) as { code: string; connect_url: string; provider: string };
    expect(problem.code).toBe('connection_required');
    expect(problem.provider).toBe('github');
    expect(problem.connect_url.startsWith(`${lb.url}/.warden/connect/github?ticket=`)).toBe(true);
    expect(upstream.requests.length).toBe(before);

    const context = await browser.newContext();
    const page = await context.newPage();
    // alice signs in (dev login), confirms, and the provider sends her back.
    await connectAs(page, problem.connect_url, 'alice');
    await page.waitForURL(/\/\.warden\/callback\/github/);
    expect(await page.locator('#title').textContent()).toBe('Account connected');
    // The connect link was single-use.
    await page.goto(problem.connect_url);
    expect(await page.locator('#title').textContent()).toBe('Link expired');
    await context.close();

    const conn = await repo.get('alice', 'github');
    expect(conn).toMatchObject({ status: 'active', scopes: ['github'] });
    secrets.add(conn!.accessToken).add(conn!.refreshToken!);

    const ok = await get('/github/user', token);
    expect(ok.status).toBe(200);
    const seen = upstream.requests.at(-1)!;
    expect(seen.url).toBe('/user');
    expect(seen.headers.authorization).toBe(`Bearer ${conn!.accessToken}`);
    expect(JSON.stringify(seen.rawHeaders)).not.toContain(token);
  });

  it('a callback opened in another browser fails; the browser that started it finishes', async () => {
    const token = await agentToken('mail-bot', 'carol');
    const problem = (await (await get('/github/repos', token)).json()) as { connect_url: string };
    const a = await browser.newContext();
    const b = await browser.newContext();
    try {
      const pageA = await a.newPage();
      const captured = lb.captureNext('/.warden/callback/');
      // The 204 ends the navigation without a page (ERR_ABORTED); the URL is what matters.
      await connectAs(pageA, problem.connect_url, 'carol').catch(() => undefined);
      const callback = await captured;
      expect(callback).toContain('code=');

      // Even signed in as carol, browser B did not start this flow.
      const pageB = await b.newPage();
      await pageB.goto(`${lb.url}/.warden/login`);
      await devSignInIfAsked(pageB, 'carol');
      const refused = await pageB.goto(callback);
      expect(refused?.status()).toBe(400);
      expect(await pageB.locator('#message').textContent()).toContain('not started in this browser');
      expect(await repo.get('carol', 'github')).toBeNull();

      const finished = await pageA.goto(callback);
      expect(finished?.status()).toBe(200);
      expect(await repo.get('carol', 'github')).toMatchObject({ status: 'active' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('50 concurrent requests on an expired token over 3 instances: one refresh at the provider, all succeed', async () => {
    const token = await agentToken('mail-bot', 'bob');
    const seeded = await seed('bob', 'gh-bob', Date.now() - 1_000);
    vp.relay.reset();
    const before = upstream.requests.length;
    const answers = await Promise.all(Array.from({ length: 50 }, () => get('/github/user', token)));
    expect(answers.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(vp.relay.counts().refresh_token).toBe(1);
    expect(vp.relay.successfulRefreshes()).toBe(1);
    const refreshed = await repo.get('bob', 'github');
    secrets.add(refreshed!.accessToken).add(refreshed!.refreshToken!);
    expect(refreshed!.accessToken).not.toBe(seeded.accessToken);
    expect(refreshed!.refreshToken).not.toBe(seeded.refreshToken);
    const forwarded = upstream.requests.slice(before);
    expect(forwarded).toHaveLength(50);
    expect(new Set(forwarded.map((r) => r.headers.authorization))).toEqual(new Set([`Bearer ${refreshed!.accessToken}`]));
    // /metrics of the three instances: one successful refresh between them, timed.
    const scrapes = await Promise.all(wardens.map((w) => scrape(w.adminUrl)));
    const sum = (name: string, labels: Record<string, string>) => scrapes.reduce((n, t) => n + (metricValue(t, name, labels) ?? 0), 0);
    expect(sum('warden_vault_refresh_total', { provider: 'github', result: 'ok' })).toBe(1);
    expect(sum('warden_vault_refresh_seconds_count', { provider: 'github' })).toBe(1);
  });

  it('user A’s agent never gets user B’s token: not by header, path or body', async () => {
    const bob = await repo.get('bob', 'github');
    const dave = await agentToken('mail-bot', 'dave'); // dave has linked nothing
    const bobToken = await agentToken('mail-bot', 'bob');
    const before = upstream.requests.length;
    const tricks: Array<Record<string, string>> = [
      { 'x-warden-user': 'bob' },
      { 'x-user': 'bob', 'x-forwarded-user': 'bob', 'x-auth-request-user': 'bob' },
      { 'x-forwarded-for': '127.0.0.1', 'x-original-url': '/github/user?user=bob' },
    ];
    for (const headers of tricks) {
      const res = await get('/github/user?user=bob', dave, headers);
      expect(res.status).toBe(403);
      const body = (await res.json()) as { code: string; connect_url: string };
      expect(body.code).toBe('connection_required');
    }
    // A second Authorization header (bob's) is ambiguous and refused, never merged.
    const dup = await fetch(`${lb.url}/github/user`, {
      headers: [
        ['authorization', `Bearer ${dave}`],
        ['authorization', `Bearer ${bobToken}`],
      ],
    });
    expect([400, 401]).toContain(dup.status);
    expect(upstream.requests.length).toBe(before);

    // Connections API: only the caller's own, whatever the path says.
    const list = (await (await get('/.warden/connections', dave)).json()) as { connections: unknown[] };
    expect(list.connections).toEqual([]);
    expect((await get('/.warden/connections/bob', dave)).status).toBe(404);
    const del = await fetch(`${lb.url}/.warden/connections/github`, { method: 'DELETE', headers: { authorization: `Bearer ${dave}`, 'x-warden-user': 'bob' } });
    expect(del.status).toBe(404);
    expect(await repo.get('bob', 'github')).toMatchObject({ version: bob!.version });

    // Token exchange: the user comes from the subject token only (the client, mail-bot, authenticates).
    const exchange = (form: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${lb.url}/.warden/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: new URLSearchParams({ client_id: 'mail-bot', client_secret: EXCHANGE_SECRET, ...form }),
      });
    const base = {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: dave,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    };
    for (const [form, headers, error] of [
      [{ ...base, audience: 'github', user: 'bob', sub: 'bob' }, {}, 'invalid_target'],
      [{ ...base, audience: 'github' }, { 'x-warden-user': 'bob' }, 'invalid_target'],
      // bob's token in Authorization is no client authentication (and no subject).
      [{ ...base, audience: 'github' }, { authorization: `Bearer ${bobToken}` }, 'invalid_request'],
      [{ ...base, resource: `${lb.url}/.warden/connections/github`, actor: 'bob' }, {}, 'invalid_target'],
    ] as Array<[Record<string, string>, Record<string, string>, string]>) {
      const res = await exchange(form, headers);
      const body = (await res.json()) as Record<string, unknown>;
      expect(res.status).toBe(400);
      expect(body.error).toBe(error);
      expect(JSON.stringify(body)).not.toContain(bob!.accessToken);
    }
    for (const resource of ['bob', 'bob/github', 'github:bob', `${lb.url}/.warden/connections/bob`]) {
      const body = (await (await exchange({ ...base, resource })).json()) as Record<string, unknown>;
      expect(body.error).toBe('invalid_target');
    }
    // A forged subject token (bob, signed by someone else) is refused.
    const forged = `${bobToken.split('.').slice(0, 2).join('.')}.${Buffer.from('x'.repeat(64)).toString('base64url')}`;
    const forgedAnswer = await exchange({ ...base, subject_token: forged, audience: 'github' });
    expect(((await forgedAnswer.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('token exchange endpoint: policy, scopes, RFC 8693 answers', async () => {
    const bob = await agentToken('mail-bot', 'bob');
    const otherBot = await agentToken('other-bot', 'bob');
    const form = (subject: string, extra: Record<string, string>, client = 'mail-bot') =>
      fetch(`${lb.url}/.warden/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: subject,
          subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          client_id: client,
          client_secret: EXCHANGE_SECRET,
          ...extra,
        }),
      });
    const ok = await form(bob, { resource: `${lb.url}/.warden/connections/github`, scope: 'github' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    const issued = (await ok.json()) as Record<string, unknown>;
    const conn = await repo.get('bob', 'github');
    expect(issued).toMatchObject({
      access_token: conn!.accessToken,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      scope: 'github',
    });
    expect(issued.expires_in).toBeGreaterThan(0);

    const denied = await form(otherBot, { audience: 'github' }, 'other-bot');
    expect(denied.status).toBe(400);
    expect(((await denied.json()) as { error: string }).error).toBe('invalid_target');

    const escalate = await form(bob, { audience: 'github', scope: 'github admin' });
    expect(((await escalate.json()) as { error: string }).error).toBe('invalid_scope');

    expect(((await (await form(bob, { audience: 'gitlab' })).json()) as { error: string }).error).toBe('invalid_target');
    expect(((await (await form(bob, {})).json()) as { error: string }).error).toBe('invalid_target');
    const wrongType = await form(bob, { audience: 'github', subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' });
    expect(((await wrongType.json()) as { error: string }).error).toBe('invalid_request');
    const wrongGrant = await fetch(`${lb.url}/.warden/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=client_credentials&client_id=mail-bot&client_secret=${EXCHANGE_SECRET}`,
    });
    expect(((await wrongGrant.json()) as { error: string }).error).toBe('unsupported_grant_type');

    const unlinked = await form(await agentToken('mail-bot', 'nobody'), { audience: 'github' });
    const unlinkedBody = (await unlinked.json()) as { error: string; connect_url: string };
    expect(unlinkedBody.error).toBe('invalid_target');
    expect(unlinkedBody.connect_url).toContain('/.warden/connect/github?ticket=');
  });

  it('token_exchange credentials: Warden as RFC 8693 client sends the exchanged token upstream', async () => {
    const token = await agentToken('mail-bot', 'bob');
    const before = upstream.requests.length;
    const res = await get('/exchanged/things', token);
    expect(res.status).toBe(200);
    const conn = await repo.get('bob', 'github');
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${conn!.accessToken}`);
    expect(upstream.requests.length).toBe(before + 1);
  });

  it('lists connections without tokens, and revokes them', async () => {
    const carol = await agentToken('mail-bot', 'carol');
    const res = await get('/.warden/connections', carol);
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text) as { connections: Array<Record<string, unknown>> };
    expect(body.connections).toEqual([expect.objectContaining({ provider: 'github', scopes: ['github'], status: 'active' })]);
    const conn = await repo.get('carol', 'github');
    expect(text).not.toContain(conn!.accessToken);
    expect(text).not.toContain(conn!.refreshToken!);
    secrets.add(conn!.accessToken).add(conn!.refreshToken!);
    const unauth = await get('/.warden/connections', 'not-a-token');
    expect(unauth.status).toBe(401);
    expect(unauth.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await unauth.json()) as { code: string }).code).toBe('unauthenticated');

    const del = await fetch(`${lb.url}/.warden/connections/github`, { method: 'DELETE', headers: { authorization: `Bearer ${carol}` } });
    expect(del.status).toBe(204);
    expect(await repo.get('carol', 'github')).toBeNull();
    expect(((await (await get('/github/x', carol)).json()) as { code: string }).code).toBe('connection_required');
  });

  it('invalid_grant at refresh → connection_required (re-link), listed as relink_required', async () => {
    const token = await agentToken('mail-bot', 'erin');
    const seeded = await seed('erin', 'gh-erin', Date.now() - 1_000);
    await vp.op.refresh(vp.clientId, seeded.refreshToken!); // spend it: rotation makes ours invalid
    const before = upstream.requests.length;
    const res = await get('/github/user', token);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { code: string; connect_url: string };
    expect(body.code).toBe('connection_required');
    expect(body.connect_url).toContain('ticket=');
    expect(upstream.requests.length).toBe(before);
    const list = (await (await get('/.warden/connections', token)).json()) as { connections: Array<{ status: string }> };
    expect(list.connections[0].status).toBe('relink_required');
  });

  it('provider 5xx or timeout → 503 with Retry-After; the connection is kept', async () => {
    const token = await agentToken('mail-bot', 'frank');
    const seeded = await seed('frank', 'gh-frank', Date.now() - 1_000);
    vp.relay.reset();
    vp.relay.fault({ grant: 'refresh_token', mode: 'error' });
    const before = upstream.requests.length;
    const res = await get('/github/user', token);
    expect(res.status).toBe(503);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as { code: string }).code).toBe('upstream_unavailable');
    expect(await repo.get('frank', 'github')).toMatchObject({ status: 'active', version: seeded.version });

    await new Promise((r) => setTimeout(r, 2_100)); // the failure window (Retry-After) passes
    vp.relay.fault({ grant: 'refresh_token', mode: 'hang' });
    const hung = await get('/github/user', token);
    expect(hung.status).toBe(503);
    expect(hung.headers.get('retry-after')).toBeTruthy();
    expect(await repo.get('frank', 'github')).toMatchObject({ status: 'active', version: seeded.version });
    expect(upstream.requests.length).toBe(before);
  });

  it('a tampered record fails closed (nothing forwarded)', async () => {
    const token = await agentToken('mail-bot', 'gina');
    await seed('gina', 'gh-gina', Date.now() + 3_600_000);
    const key = connectionKey('gina', 'github');
    const raw = (await store.get(key))!;
    const parts = raw.split(':');
    const body = Buffer.from(parts[3], 'base64url');
    body[0] ^= 0x01;
    parts[3] = body.toString('base64url');
    await store.set(key, parts.join(':'));
    const before = upstream.requests.length;
    const res = await get('/github/user', token);
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(upstream.requests.length).toBe(before);
    await store.del(key);
  });

  it('key rotation: old records stay readable, rekey moves them, the old key can then go', async () => {
    const token = await agentToken('mail-bot', 'bob');
    const key = connectionKey('bob', 'github');
    expect((await store.get(key))!.startsWith('wv1:k1:')).toBe(true);
    for (const w of wardens) expect(await w.reload(gatewayYaml(KEYS_K2_K1))).toBe(true);
    useKeys([
      { id: 'k2', key: K2 },
      { id: 'k1', key: K1 },
    ]);
    expect((await get('/github/user', token)).status).toBe(200);

    const out: string[] = [];
    const summary = await runRekey(wardens[0].gateway.runtime(), { write: (s: string) => out.push(s) });
    expect(summary.failed).toBe(0);
    expect(summary.rekeyed).toBeGreaterThanOrEqual(1);
    expect((await store.get(key))!.startsWith('wv1:k2:')).toBe(true);
    // Idempotent: a second run has nothing left to do.
    expect((await runRekey(wardens[1].gateway.runtime(), { write: () => {} })).rekeyed).toBe(0);
    expect(out.join('')).not.toContain(K1);

    for (const w of wardens) expect(await w.reload(gatewayYaml(KEYS_K2))).toBe(true);
    useKeys([{ id: 'k2', key: K2 }]);
    const res = await get('/github/user', token);
    expect(res.status).toBe(200);
    const conn = await repo.get('bob', 'github');
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${conn!.accessToken}`);
  });

  it('store outage → 503 store_unavailable with Retry-After, nothing forwarded', async () => {
    const token = await agentToken('mail-bot', 'hank');
    await seed('hank', 'gh-hank', Date.now() + 3_600_000);
    const before = upstream.requests.length;
    redis.pause();
    try {
      const res = await get('/github/user', token);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect(((await res.json()) as { code: string }).code).toBe('store_unavailable');
    } finally {
      redis.resume();
    }
    expect(upstream.requests.length).toBe(before);
    expect((await get('/github/user', token)).status).toBe(200);
  });

  it('captured logs of every instance contain no token, refresh token, key or client secret', async () => {
    // Collect whatever is in the vault now, too.
    for await (const key of store.keys('vault:conn:')) {
      const [user, provider] = key.slice('vault:conn:'.length).split(':').map(decodeURIComponent);
      const conn = await repo.get(user, provider).catch(() => null);
      if (conn) {
        secrets.add(conn.accessToken);
        if (conn.refreshToken) secrets.add(conn.refreshToken);
      }
    }
    const logs = wardens.map((w) => w.logs()).join('');
    expect(logs).toContain('vault connection linked');
    expect(logs).toContain('vault token refreshed');
    expect(secrets.size).toBeGreaterThan(15);
    for (const secret of secrets) expect(logs).not.toContain(secret);
  });
});
