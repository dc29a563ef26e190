/**
 * Signed-in people, end to end with real components only: oidc-provider as
 * the user IdP (and as the vault's upstream OAuth provider), a real Warden
 * behind a loopback relay (so its public URL is known before the IdP
 * registers the redirect URIs), a webhook receiver for review links, and
 * headless Chromium with one browser context per person.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateVaultKey } from '../../src/vault/crypto.js';
import { launchBrowser, type Browser, type BrowserContext, type Page } from '../support/browser.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { LOGIN_AS_COOKIE, startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startBalancer, type Balancer } from '../vault/support.js';
import { startWebhookSink, type WebhookSink } from '../approvals/webhook-sink.js';

const SESSION_SECRET = 'login-e2e-session-secret-0123456789abcdef';
const LOGIN_SECRET = 'login-e2e-client-secret-0123456789';
const VAULT_SECRET = 'login-e2e-vault-secret-0123456789';
const HOOK_SECRET = 'login-e2e-webhook-secret-012345';

const CONFIG = `
server:
  public_url: \${PUBLIC_URL}
identity:
  dev_issuer: true
  login:
    issuer: \${OP_URL}
    client_id: warden-login
    client_secret: \${LOGIN_SECRET}
    scopes: [openid, email]
    session: { secret: "\${SESSION_SECRET}", ttl: 1h }
authz:
  engine: embedded
  model: test/login/fixtures/model.fga
  tuples: test/login/fixtures/tuples.yaml
  cache_ttl: 0
vault:
  keys: [{ id: k1, key: "\${VAULT_KEY}" }]
  connect_ttl: 5m
  providers:
    github:
      issuer: \${OP_URL}
      client_id: warden-vault
      client_secret: \${VAULT_SECRET}
      scopes: [github]
approvals:
  ttl: 5m
  hold: 200ms
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "\${HOOK_SECRET}" }
routes:
  - name: github
    match: { path: "/github/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /github }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:github" }]
    credentials: { vault: github }
  - name: notes
    match: { path: "/notes/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /notes }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:notes" }]
    approval: { when: 'request.method == "DELETE"', message: "Delete note {request.path}" }
  - name: payments
    match: { path: "/pay/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:notes" }]
    approval: { message: "Payment {request.path}", approvers: { relation: approver, object: "team:finance" } }
`;

describe('signed-in people: identity.login with oidc-provider and Chromium', () => {
  let op: OidcTestProvider;
  let lb: Balancer;
  let warden: WardenHandle;
  let upstream: Upstream;
  let hook: WebhookSink;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    lb = await startBalancer();
    op = await startOidcProvider({
      audience: lb.url,
      refreshTokens: true,
      clients: [
        { client_id: 'warden-login', client_secret: LOGIN_SECRET, redirect_uris: [`${lb.url}/.warden/login/callback`] },
        { client_id: 'warden-vault', client_secret: VAULT_SECRET, redirect_uris: [`${lb.url}/.warden/callback/github`] },
      ],
    });
    [upstream, hook, browser] = await Promise.all([startUpstream(), startWebhookSink(), launchBrowser()]);
    warden = await startWarden({
      config: CONFIG,
      env: {
        PUBLIC_URL: lb.url,
        OP_URL: op.issuer,
        LOGIN_SECRET,
        SESSION_SECRET,
        VAULT_SECRET,
        VAULT_KEY: generateVaultKey(),
        HOOK_URL: hook.url,
        HOOK_SECRET,
        UPSTREAM_URL: upstream.url,
      },
    });
    lb.setTargets([warden.url]);
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await warden?.close();
    await Promise.allSettled([upstream?.close(), hook?.close(), op?.stop(), lb?.close()]);
  });

  /** A browser context that the IdP will sign in as `who` (nothing signed in yet). */
  async function personBrowser(who: string): Promise<BrowserContext> {
    const context = await browser.newContext();
    contexts.push(context);
    await context.addCookies([{ name: LOGIN_AS_COOKIE, value: who, url: op.issuer }]);
    return context;
  }

  /** Sign `context` in through /.warden/login and return the page left on /.warden/session. */
  async function signIn(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${lb.url}/.warden/login`);
    await page.waitForURL(`${lb.url}/.warden/session`);
    return page;
  }

  const sessionCookie = async (context: BrowserContext) => (await context.cookies(`${lb.url}/.warden/session`)).find((c) => c.name === 'warden_session');

  async function agent(user: string) {
    const token = await warden.token('bot', user);
    return (path: string, init: RequestInit = {}) =>
      fetch(`${lb.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });
  }

  async function connectUrlFor(user: string): Promise<string> {
    const call = await agent(user);
    const res = await call('/github/user');
    expect(res.status).toBe(403);
    const problem = (await res.json()) as { code: string; connect_url: string };
    expect(problem.code).toBe('connection_required');
    return problem.connect_url;
  }

  async function heldApproval(user: string, method: string, path: string): Promise<{ id: string; reviewUrl: string; retry: () => Promise<Response> }> {
    const call = await agent(user);
    const first = await call(path, { method });
    expect(first.status).toBe(202);
    const { approval_id: id } = (await first.json()) as { approval_id: string };
    const delivery = await hook.next((d) => d.notice.id === id);
    return { id, reviewUrl: delivery.notice.review_url, retry: () => call(path, { method }) };
  }

  it('a link preview uses nothing up; bob is refused on alice’s connect link; alice signs in and connects with the POST button', async () => {
    const connectUrl = await connectUrlFor('alice');
    // A chat client's link preview fetches the link: it gets a sign-in redirect and uses nothing up.
    for (let i = 0; i < 3; i++) {
      const preview = await fetch(connectUrl, { redirect: 'manual', headers: { 'user-agent': 'Slackbot-LinkExpanding 1.0' } });
      expect(preview.status).toBe(303);
      expect(preview.headers.get('location')).toMatch(/^\/\.warden\/login\?return_to=/);
    }

    // Bob, signed in at the IdP as bob, opens alice's link: refused, told who is who.
    const bob = await personBrowser('bob');
    const bobPage = await bob.newPage();
    const answer = await bobPage.goto(connectUrl);
    expect(new URL(bobPage.url()).pathname).toBe('/.warden/connect/github');
    expect(answer?.status()).toBe(403);
    expect(await bobPage.locator('#title').textContent()).toBe('This link is for someone else');
    expect(await bobPage.locator('#signed-in-as').textContent()).toBe('bob');
    expect(await bobPage.locator('#link-for').textContent()).toBe('alice');
    expect(await bobPage.locator('#confirm').count()).toBe(0);
    expect(await bobPage.locator('#logout button').textContent()).toBe('Sign out');

    // Bob crafts the POST himself: his own session and a valid CSRF token from his own
    // confirmation page, with alice's ticket. Refused on the person, not on the token.
    const ticket = new URL(connectUrl).searchParams.get('ticket')!;
    const own = await bob.newPage();
    await own.goto(await connectUrlFor('bob'));
    const csrf = await own.locator('#confirm input[name=csrf]').getAttribute('value');
    expect(csrf).toBeTruthy();
    const bobCookie = (await sessionCookie(bob))!.value;
    const forged = await fetch(`${lb.url}/.warden/connect/github`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `warden_session=${bobCookie}`, origin: lb.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ticket, csrf: csrf! }),
    });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain('this link is for alice');

    // Alice: connect → sign-in → IdP → callback → back on the confirmation page, signed in.
    const alice = await personBrowser('alice');
    const page = await alice.newPage();
    await page.goto(connectUrl);
    await page.waitForURL((u) => u.pathname === '/.warden/connect/github');
    expect(await page.locator('#title').textContent()).toBe('Connect your github account?');
    expect(await page.locator('#agent').textContent()).toBe('bot');
    expect(await page.locator('#provider').textContent()).toBe('github');
    expect(await page.locator('#scopes').textContent()).toBe('github');
    // Reloading the confirmation page (another GET) still does not use the ticket up.
    await page.reload();
    expect(await page.locator('#title').textContent()).toBe('Connect your github account?');

    await page.click('#confirm button');
    await page.waitForURL((u) => u.pathname === '/.warden/callback/github');
    expect(await page.locator('#title').textContent()).toBe('Account connected');

    const call = await agent('alice');
    const ok = await call('/github/user');
    expect(ok.status).toBe(200);
    // The ticket was used by that one POST.
    await page.goto(connectUrl);
    expect(await page.locator('#title').textContent()).toBe('Link expired');
  });

  it('bob opens alice’s review link and is refused; alice signs in, approves, and the request runs once', async () => {
    const held = await heldApproval('alice', 'DELETE', '/notes/n1');
    const forwardedBefore = upstream.requests.filter((r) => r.url === '/n1').length;

    const bob = await personBrowser('bob');
    const bobPage = await bob.newPage();
    const refused = await bobPage.goto(held.reviewUrl);
    expect(new URL(bobPage.url()).pathname).toBe(`/.warden/approvals/${held.id}/review`);
    expect(refused?.status()).toBe(403);
    expect(await bobPage.textContent('body')).toContain('You are signed in as bob. This request must be decided by alice.');
    expect(await bobPage.locator('button.approve').count()).toBe(0);

    const alice = await personBrowser('alice');
    const page = await alice.newPage();
    await page.goto(held.reviewUrl);
    await page.waitForURL((u) => u.pathname.endsWith('/review'));
    expect(await page.textContent('body')).toContain('Delete note /notes/n1');
    await page.click('button.approve');
    await page.waitForSelector('h1:has-text("Approved")');

    const released = await held.retry();
    expect(released.status).toBe(200);
    expect(upstream.requests.filter((r) => r.url === '/n1').length).toBe(forwardedBefore + 1);
    expect(warden.logs()).toMatch(/"approver":"alice"/);
    // The admin list says who decided.
    const listed = (await (await fetch(`${warden.adminUrl}/approvals`)).json()) as {
      approvals: Array<{ approval_id: string; decided_by_user: string | null }>;
    };
    expect(listed.approvals.find((a) => a.approval_id === held.id)?.decided_by_user).toBe('alice');
  });

  it('a rule with approvers: the signed-in person must hold the relation (carol), not the requester (alice)', async () => {
    const held = await heldApproval('alice', 'POST', '/pay/p1');
    const alice = await personBrowser('alice');
    const alicePage = await alice.newPage();
    await alicePage.goto(held.reviewUrl);
    await alicePage.waitForURL((u) => u.pathname.endsWith('/review'));
    expect(await alicePage.textContent('body')).toContain('You are signed in as alice. This request must be decided by someone with approver on team:finance.');

    const carol = await personBrowser('carol');
    const page = await carol.newPage();
    await page.goto(held.reviewUrl);
    await page.waitForURL((u) => u.pathname.endsWith('/review'));
    await page.click('button.deny');
    await page.waitForSelector('h1:has-text("Denied")');
    expect((await held.retry()).status).toBe(403);
  });

  it('a tampered or swapped session cookie is not a session', async () => {
    const alice = await personBrowser('alice');
    const page = await signIn(alice);
    expect(await page.locator('#message').textContent()).toBe('You are signed in to Warden as alice.');
    const cookie = (await sessionCookie(alice))!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax' });

    const flip = (v: string, at: number) => v.slice(0, at) + (v[at] === 'A' ? 'B' : 'A') + v.slice(at + 1);
    const variants = [flip(cookie.value, 10), flip(cookie.value, cookie.value.length - 3), cookie.value.slice(0, -8), `v1.${'A'.repeat(80)}`, 'alice'];
    for (const value of variants) {
      const res = await fetch(`${lb.url}/.warden/session`, { headers: { cookie: `warden_session=${value}` } });
      expect(await res.text()).toContain('Nobody is signed in');
    }
    // The untouched cookie works (the variants were refused for what they are, not for being sent by fetch).
    const genuine = await fetch(`${lb.url}/.warden/session`, { headers: { cookie: `warden_session=${cookie.value}` } });
    expect(await genuine.text()).toContain('signed in to Warden as alice');
    // A sealed sign-in transaction cookie is not accepted as a session (the purpose is bound).
    const start = await fetch(`${lb.url}/.warden/login`, { redirect: 'manual' });
    const tx = /warden_signin=([^;]+)/.exec(start.headers.get('set-cookie') ?? '')?.[1];
    expect(tx).toBeTruthy();
    const swapped = await fetch(`${lb.url}/.warden/session`, { headers: { cookie: `warden_session=${tx}` } });
    expect(await swapped.text()).toContain('Nobody is signed in');
  });

  it('logout (POST with CSRF) ends the session, and a copy of the old cookie is dead too', async () => {
    const alice = await personBrowser('alice');
    const page = await signIn(alice);
    const copy = (await sessionCookie(alice))!.value;

    // Without the form token, or from another site, logout is refused and the session stays.
    const noToken = await fetch(`${lb.url}/.warden/logout`, {
      method: 'POST',
      headers: { cookie: `warden_session=${copy}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(noToken.status).toBe(403);
    const crossSite = await fetch(`${lb.url}/.warden/logout`, {
      method: 'POST',
      headers: { cookie: `warden_session=${copy}`, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'csrf=x',
    });
    expect(crossSite.status).toBe(403);
    expect(await (await fetch(`${lb.url}/.warden/session`, { headers: { cookie: `warden_session=${copy}` } })).text()).toContain('as alice');

    await page.click('#logout button');
    await page.waitForSelector('h1:has-text("Signed out")');
    expect(await sessionCookie(alice)).toBeUndefined();
    await page.goto(`${lb.url}/.warden/session`);
    expect(await page.locator('#title').textContent()).toBe('Not signed in');
    const replay = await fetch(`${lb.url}/.warden/session`, { headers: { cookie: `warden_session=${copy}` } });
    expect(await replay.text()).toContain('Nobody is signed in');
    // Nothing secret of the sign-in reached the logs.
    const logs = warden.logs();
    for (const secret of [SESSION_SECRET, LOGIN_SECRET, copy]) expect(logs).not.toContain(secret);
  });

  it('return_to only goes back to Warden’s own pages: open-redirect attempts are refused', async () => {
    const attempts = [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      '/%2F%2Fevil.example',
      '/.warden/../../evil',
      '/.warden/%2e%2e/x',
      'javascript:alert(1)',
      '/.warden/session#@evil.example',
      '/other/path',
      '/.warden//evil.example',
      ' /.warden/session',
      '/.warden/session\r\nSet-Cookie: x=y',
    ];
    for (const returnTo of attempts) {
      const res = await fetch(`${lb.url}/.warden/login?return_to=${encodeURIComponent(returnTo)}`, { redirect: 'manual' });
      expect([returnTo, res.status]).toEqual([returnTo, 400]);
      expect(res.headers.get('location')).toBeNull();
    }
    // A good one survives the whole round trip.
    const alice = await personBrowser('alice');
    const page = await alice.newPage();
    await page.goto(`${lb.url}/.warden/login?return_to=${encodeURIComponent('/.warden/logout')}`);
    await page.waitForURL(`${lb.url}/.warden/logout`);
    expect(await page.locator('#title').textContent()).toBe('Sign out');
  });

  it('a callback from another browser (no sign-in transaction) or with a wrong state signs nobody in', async () => {
    const start = await fetch(`${lb.url}/.warden/login`, { redirect: 'manual' });
    const auth = new URL(start.headers.get('location')!);
    expect(auth.origin).toBe(new URL(op.issuer).origin);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const tx = /warden_signin=([^;]+)/.exec(start.headers.get('set-cookie') ?? '')![1];
    const noTx = await fetch(`${lb.url}/.warden/login/callback?code=abc&state=${auth.searchParams.get('state')}`, { redirect: 'manual' });
    expect(noTx.status).toBe(400);
    const wrongState = await fetch(`${lb.url}/.warden/login/callback?code=abc&state=${'A'.repeat(43)}`, {
      redirect: 'manual',
      headers: { cookie: `warden_signin=${tx}` },
    });
    expect(wrongState.status).toBe(400);
    expect(wrongState.headers.get('set-cookie') ?? '').not.toContain('warden_session=v1');
  });
});
