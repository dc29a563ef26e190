/**
 * The production topology of deploy/, as real processes: PostgreSQL, OpenFGA
 * migrated onto it (populated with `warden fga push`), Redis, two Warden
 * processes on deploy/gateway.yaml (NODE_ENV=production, external IdP, webhook
 * approvals, vault) and nginx round robin on deploy/nginx.conf in front. One
 * scenario goes through nginx: an MCP tool call, linking an account in the
 * browser and the vault swap, an approval held on one instance and decided on
 * the other; then the instance holding an approval is killed mid-hold, and
 * everything completes on the survivor with nothing lost and nothing run twice.
 */

import { LOGIN_AS_COOKIE } from '../support/oidc.js';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { launchBrowser, type Browser } from '../support/browser.js';
import { startVaultProvider, type VaultProvider } from '../vault/support.js';
import { startWebhookSink, type WebhookSink } from '../approvals/webhook-sink.js';
import { decide } from '../approvals/review-client.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startWardenProcess, type Service } from '../support/processes.js';
import { fgaPush, startNginx, startOpenFgaOnPostgres, startPostgres, type OpenFgaOnPostgres, type Postgres } from './processes.js';

const CONFIG = join(REPO_ROOT, 'deploy/gateway.yaml');
const FGA_KEY = 'topology-fga-preshared-key-0123456789';

let pg: Postgres;
let fga: OpenFgaOnPostgres;
let redis: TestRedis;
let vp: VaultProvider;
let notes: Upstream;
let githubApi: Upstream;
let mcp: ExampleMcpServer;
let hook: WebhookSink;
let nginx: Service;
let browser: Browser;
let lbUrl: string;
const wardens: Array<{ name: string; url: string; service: Service }> = [];
let env: Record<string, string>;
let agentToken: (user: string, resource?: string) => Promise<string>;

/** deploy/nginx.conf with its listen port and the two replicas pointed at loopback ports. */
function nginxConf(lbPort: number, replicaPorts: number[]): string {
  let replica = 0;
  const conf = readFileSync(join(REPO_ROOT, 'deploy/nginx.conf'), 'utf8')
    .replace(/^(\s*listen\s+)[^;]+;/m, `$1127.0.0.1:${lbPort};`)
    .replace(/^(\s*server\s+)warden-\d+:\d+/gm, (_m, lead: string) => `${lead}127.0.0.1:${replicaPorts[replica++]}`);
  if (replica !== replicaPorts.length) throw new Error(`deploy/nginx.conf: expected ${replicaPorts.length} replica lines, found ${replica}`);
  return conf;
}

beforeAll(async () => {
  const [lbPort, w1, w2, a1, a2] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  lbUrl = `http://127.0.0.1:${lbPort}`;
  pg = await startPostgres();
  [fga, redis, notes, githubApi, mcp, hook] = await Promise.all([
    startOpenFgaOnPostgres(pg, FGA_KEY),
    startRedis({ password: 'topology-redis-password' }),
    startUpstream(),
    startUpstream(),
    startExampleMcpServer(),
    startWebhookSink(),
  ]);
  // One OpenID provider plays both parts: the IdP that issues agents' tokens
  // (client demo-agent, audience = the public URL) and the upstream OAuth
  // provider of the vault's `github` connection (client warden-vault).
  vp = await startVaultProvider({
    redirectUris: [`${lbUrl}/.warden/callback/github`],
    defaultAccountId: 'gh-alice',
    audience: lbUrl,
    resourceScopes: ['repo', 'notes', 'files'],
    clients: [
      { client_id: 'demo-agent', client_secret: 'demo-agent-secret-0123456789abcdef', redirect_uris: ['http://127.0.0.1/unused'] },
      // Warden's sign-in for people (identity.login in deploy/gateway.yaml).
      { client_id: 'warden-login', client_secret: 'warden-login-secret-0123456789abcdef', redirect_uris: [`${lbUrl}/.warden/login/callback`] },
    ],
  });
  agentToken = async (user, resource = lbUrl) =>
    (await vp.op.userAccessToken({ accountId: user, clientId: 'demo-agent', scope: 'notes files', resource })).access_token;

  env = {
    NODE_ENV: 'production',
    WARDEN_PUBLIC_URL: lbUrl,
    WARDEN_TRUSTED_PROXY: '127.0.0.1/32',
    REDIS_URL: redis.url,
    OIDC_ISSUER: vp.op.issuer,
    OIDC_AUDIENCE: lbUrl,
    OIDC_LOGIN_CLIENT_ID: 'warden-login',
    OIDC_LOGIN_CLIENT_SECRET: 'warden-login-secret-0123456789abcdef',
    WARDEN_SESSION_SECRET: 'topology-session-secret-0123456789abcdef',
    FGA_API_URL: fga.apiUrl,
    FGA_API_TOKEN: FGA_KEY,
    FGA_STORE_ID: '',
    FGA_MODEL_ID: '',
    WARDEN_VAULT_KEY: Buffer.alloc(32, 7).toString('base64'),
    VAULT_GITHUB_AUTHORIZATION_URL: `${vp.op.issuer}/auth`,
    VAULT_GITHUB_TOKEN_URL: vp.relay.tokenUrl,
    VAULT_GITHUB_CLIENT_ID: vp.clientId,
    VAULT_GITHUB_CLIENT_SECRET: vp.clientSecret,
    VAULT_GITHUB_API_URL: githubApi.url,
    APPROVAL_WEBHOOK_URL: hook.url,
    APPROVAL_WEBHOOK_SECRET: 'topology-webhook-secret-0123456789',
    NOTES_UPSTREAM_URL: notes.url,
    MCP_UPSTREAM_URL: mcp.url,
    LOG_LEVEL: 'info',
  };
  // The documented order (docs/operations.md): push the policies (the store is created), then start.
  const pushed = await fgaPush(CONFIG, env);
  env.FGA_STORE_ID = pushed.storeId;
  env.FGA_MODEL_ID = pushed.modelId;

  const replicas = [
    { name: 'warden-1', port: w1, admin: a1 },
    { name: 'warden-2', port: w2, admin: a2 },
  ];
  await Promise.all(
    replicas.map(async (r) => {
      const url = `http://127.0.0.1:${r.port}`;
      const service = await startWardenProcess(
        r.name,
        CONFIG,
        { ...env, WARDEN_LISTEN: `127.0.0.1:${r.port}`, WARDEN_ADMIN_LISTEN: `127.0.0.1:${r.admin}` },
        url,
      );
      wardens.push({ name: r.name, url, service });
    }),
  );
  nginx = await startNginx(
    nginxConf(
      lbPort,
      replicas.map((r) => r.port),
    ),
    lbPort,
  );
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await nginx?.stop();
  for (const w of wardens) await w.service.stop();
  await Promise.all([fga?.stop(), redis?.stop(), notes?.close(), githubApi?.close(), mcp?.close(), hook?.close(), vp?.close()]);
  await pg?.stop();
}, 60_000);

const get = (path: string, token: string) => fetch(`${lbUrl}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(60_000) });
const del = (path: string, token: string) =>
  fetch(`${lbUrl}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(60_000) });

/** Which replica's log mentions `approvalId` (the one holding that request). */
/** A replica's output once it matches `pattern` (or as it is after 5 s, for the assertion to show). */
async function loggedEventually(w: (typeof wardens)[number], pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 5_000;
  while (!pattern.test(w.service.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return w.service.output();
}

async function holderOf(approvalId: string): Promise<(typeof wardens)[number]> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const found = wardens.filter((w) => w.service.output().includes(approvalId));
    if (found.length === 1) return found[0];
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no single replica logged approval ${approvalId}`);
}

describe('production topology as processes (PostgreSQL, OpenFGA, Redis, 2 × Warden, nginx)', () => {
  it('spreads requests over both replicas, authorizing against OpenFGA on PostgreSQL', async () => {
    const alice = await agentToken('alice');
    const answers = await Promise.all(Array.from({ length: 6 }, () => get('/notes/docs/1', alice)));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect((await get('/notes/docs/2', alice)).status).toBe(403);
    // Both replicas answered some of them (round robin). Audit lines reach stdout in batches (every 50 ms), so wait for them.
    for (const w of wardens) expect(await loggedEventually(w, /"route":"notes-read"/)).toMatch(/"route":"notes-read"/);
    // The agent's token never reached the upstream.
    expect(notes.requests.every((r) => !JSON.stringify(r.rawHeaders).includes(alice))).toBe(true);
  });

  it('an MCP client calls a tool through nginx', async () => {
    // MCP tokens are bound to the MCP resource (RFC 8707): aud is the route's URL.
    const token = await agentToken('alice', `${lbUrl}/mcp/files`);
    const transport = new StreamableHTTPClientTransport(new URL(`${lbUrl}/mcp/files`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'topology', version: '1.0.0' });
    await client.connect(transport);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('read_file');
      const result = (await client.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } })) as { content: Array<{ text: string }> };
      expect(result.content[0].text).toBe('shopping list: coffee');
      expect(mcp.executions.filter((e) => e.tool === 'read_file')).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('links an account in the browser, then the upstream receives the user’s vaulted token, never the agent’s', async () => {
    const alice = await agentToken('alice');
    const denied = await get('/github/user', alice);
    expect(denied.status).toBe(403);
    const problem = (await denied.json()) as { code: string; connect_url: string };
    expect(problem.code).toBe('connection_required');
    expect(problem.connect_url.startsWith(`${lbUrl}/.warden/connect/github?ticket=`)).toBe(true);

    // alice's browser: the IdP signs her in to Warden (identity.login), she confirms, and links.
    const context = await browser.newContext();
    await context.addCookies([{ name: LOGIN_AS_COOKIE, value: 'alice', url: vp.op.issuer }]);
    const page = await context.newPage();
    await page.goto(problem.connect_url);
    await page.waitForURL((u) => u.pathname === '/.warden/connect/github');
    await page.click('#confirm button');
    await page.waitForURL(/\/\.warden\/callback\/github/);
    expect(await page.locator('#title').textContent()).toBe('Account connected');
    await context.close();

    // Every replica injects the same vaulted token (both read it from Redis).
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const ok = await get('/github/user', alice);
      expect(ok.status).toBe(200);
      const auth = githubApi.requests.at(-1)!.headers.authorization as string;
      expect(auth).not.toContain(alice);
      seen.add(auth);
    }
    expect(seen.size).toBe(1);
    const [auth] = [...seen];
    // The provider issued it to Warden's vault client for the account linked in the browser.
    const value = auth.replace(/^Bearer /, '');
    const issued =
      value.split('.').length === 3
        ? (JSON.parse(Buffer.from(value.split('.')[1], 'base64url').toString('utf8')) as { sub: string; client_id: string })
        : undefined;
    // alice signed in at this same provider before linking, so the linked account is hers there.
    expect(issued).toMatchObject({ sub: 'alice', client_id: vp.clientId });
  });

  /**
   * A fetch that carries `user`'s Warden session: deploy/gateway.yaml has identity.login, so
   * review links need a signed-in approver (review_auth link+login). The session comes from a
   * real sign-in at the IdP in Chromium; any replica honours it (shared session secret).
   */
  async function signedInFetch(user: string) {
    const context = await browser.newContext();
    try {
      await context.addCookies([{ name: LOGIN_AS_COOKIE, value: user, url: vp.op.issuer }]);
      const page = await context.newPage();
      await page.goto(`${lbUrl}/.warden/login`);
      await page.waitForURL(`${lbUrl}/.warden/session`);
      const session = (await context.cookies(`${lbUrl}/.warden/session`)).find((c) => c.name === 'warden_session')!.value;
      return (url: string, init: RequestInit = {}) => {
        const headers = { ...((init.headers as Record<string, string>) ?? {}) };
        headers.cookie = [headers.cookie, `warden_session=${session}`].filter(Boolean).join('; ');
        return fetch(url, { ...init, headers });
      };
    } finally {
      await context.close();
    }
  }

  it('holds an approval on one replica and releases it by a decision on the other, exactly once', async () => {
    const alice = await agentToken('alice');
    const held = del('/notes/docs/1', alice);
    const notice = (await hook.next((d) => d.notice.url.includes('/notes/docs/1'), 20_000)).notice;
    const holder = await holderOf(notice.id);
    const other = wardens.find((w) => w !== holder)!;
    const review = notice.review_url.replace(lbUrl, other.url);
    expect((await decide(await signedInFetch('alice'), review, 'approve')).status).toBe(200);
    const res = await held;
    expect(res.status).toBe(200);
    expect(notes.requests.filter((r) => r.method === 'DELETE' && r.url === '/docs/1')).toHaveLength(1);
  });

  it('kills the replica holding an approval mid-hold: the survivor holds it again, nothing lost or run twice', async () => {
    const bob = await agentToken('bob');
    const alice = await agentToken('alice');
    const held = del('/notes/docs/2', bob);
    const notice = (await hook.next((d) => d.notice.url.includes('/notes/docs/2'), 20_000)).notice;
    const victim = await holderOf(notice.id);
    const survivor = wardens.find((w) => w !== victim)!;

    // Traffic keeps flowing while the replica dies.
    let stop = false;
    const statuses: Array<number | string> = [];
    const background = (async () => {
      while (!stop) {
        statuses.push(
          await get('/notes/docs/1', alice).then(
            (r) => (void r.body?.cancel(), r.status),
            (err: Error) => String(err.cause ?? err),
          ),
        );
        // Yield to timers and I/O even if fetch fails at once (a microtask-only loop would starve the test).
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    onTestFinished(() => {
      stop = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    await victim.service.kill();

    // nginx passes the cut request to the survivor (DELETE is idempotent in HTTP); the
    // survivor finds the same pending approval in Redis and holds the request again.
    const deadline = Date.now() + 10_000;
    while (!survivor.service.output().includes(`"approval_id":"${notice.id}"`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(notes.requests.filter((r) => r.method === 'DELETE' && r.url === '/docs/2')).toHaveLength(0);
    // The held DELETE is bob's: bob decides.
    expect((await decide(await signedInFetch('bob'), notice.review_url.replace(lbUrl, survivor.url), 'approve')).status).toBe(200);
    const res = await held;
    expect(res.status).toBe(200);
    stop = true;
    await background;

    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(notes.requests.filter((r) => r.method === 'DELETE' && r.url === '/docs/2')).toHaveLength(1);
    // The approval was used once: presenting it again does not run the request again.
    const replay = await fetch(`${lbUrl}/notes/docs/2`, { method: 'DELETE', headers: { authorization: `Bearer ${bob}`, 'warden-approval': notice.id } });
    expect(replay.status).toBe(403);
    expect(((await replay.json()) as { code: string }).code).toMatch(/^approval_/);
    expect(notes.requests.filter((r) => r.method === 'DELETE' && r.url === '/docs/2')).toHaveLength(1);

    // The vault connection linked earlier is still there: the survivor injects it.
    expect((await get('/github/user', alice)).status).toBe(200);
    // Every request now completes on the survivor.
    const after = await Promise.all(Array.from({ length: 6 }, () => get('/notes/docs/1', alice)));
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
  });
});
