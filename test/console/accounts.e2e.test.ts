/**
 * Connected accounts in the console, in headless Chromium, with the demo's
 * OAuth provider (examples/oauth-provider.ts, the one `npm start` runs):
 * alice connects from the console, her agent's request carries her account's
 * token; she re-links (a new token) and revokes (the agent gets
 * connection_required), then connects again. bob, signed in, sees none of it
 * and cannot revoke or re-link alice's account with his own valid form token.
 */

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoOAuthProvider, type DemoClient, type DemoOAuthProvider } from '../../examples/oauth-provider.js';
import { generateVaultKey } from '../../src/vault/crypto.js';
import { launchBrowser, SCREENSHOTS, type Browser, type BrowserContext, type Page } from '../support/browser.js';
import { devPolicyYaml, NOTES_CLOUD_VAULT_YAML, upstreamRouteYaml } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/login/fixtures')}
${NOTES_CLOUD_VAULT_YAML}
routes:
${upstreamRouteYaml({ name: 'docs', object: 'api:notes' })}
    credentials: { vault: notes-cloud }
`;

describe('console: connected accounts with the demo OAuth provider', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let provider: DemoOAuthProvider;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  // Registered once Warden's port is known (the provider reads the list per request).
  const client: DemoClient = { clientId: 'warden-test', clientSecret: 'test-only-client-secret', redirectUris: [] };

  beforeAll(async () => {
    [upstream, browser, provider] = await Promise.all([
      startUpstream(),
      launchBrowser(),
      startDemoOAuthProvider({ clients: [client], accounts: ['alice', 'bob'] }),
    ]);
    warden = await startWarden({ config: CONFIG, env: { UPSTREAM_URL: upstream.url, OP_URL: provider.url, VAULT_KEY: generateVaultKey() } });
    client.redirectUris.push(`${warden.url}/.warden/callback/notes-cloud`);
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await warden?.close();
    await provider?.close();
    await upstream?.close();
  });

  async function signedIn(user: string, width = 1280, height = 900): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width, height } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(`${warden.url}/.warden/console/accounts`);
    await devSignInIfAsked(page, user);
    expect(new URL(page.url()).pathname).toBe('/.warden/console/accounts');
    return page;
  }

  /** The agent's request for `user`: its status, problem code, and the account whose token reached the upstream. */
  async function agentCall(user: string): Promise<{ status: number; code?: string; account?: string }> {
    const before = upstream.requests.length;
    const res = await fetch(`${warden.url}/docs/d1`, { headers: { authorization: `Bearer ${await warden.token('bot', user)}` } });
    const body = (await res.json()) as { code?: string };
    const seen = upstream.requests.slice(before).at(-1);
    const auth = seen?.headers.authorization;
    const token = typeof auth === 'string' ? auth.replace(/^Bearer /, '') : undefined;
    return { status: res.status, code: body.code, account: token ? provider.accountOf(token) : undefined };
  }

  /** Press a console button that leads to the provider, pick the account there, and land back on Warden. */
  async function throughProvider(page: Page, button: string, account: string): Promise<void> {
    await Promise.all([page.waitForURL((u) => u.origin === new URL(provider.url).origin), page.click(button)]);
    await Promise.all([page.waitForURL((u) => u.pathname === '/.warden/callback/notes-cloud'), page.click(`button[name=account][value=${account}]`)]);
    expect(await page.textContent('#title')).toBe('Account connected');
  }

  let tokenSeen: string | undefined;

  it('alice connects from the console; her agent’s request carries her account’s token', async () => {
    expect(await agentCall('alice')).toMatchObject({ status: 403, code: 'connection_required' });
    const page = await signedIn('alice');
    const row = page.locator('#connection-notes-cloud');
    expect(await row.locator('.status').textContent()).toBe('not connected');
    await throughProvider(page, '#connection-notes-cloud button.link', 'alice');
    expect(await agentCall('alice')).toMatchObject({ status: 200, account: 'alice' });
    tokenSeen = String(upstream.requests.at(-1)!.headers.authorization);

    await page.goto(`${warden.url}/.warden/console/accounts`);
    expect(await row.locator('.status').textContent()).toBe('active');
    expect(await row.textContent()).toContain('notes.read');
    // The request above used the vault's token: the console says when.
    await expect.poll(async () => (await page.reload(), row.locator('.last-used').textContent())).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    await page.screenshot({ path: join(SCREENSHOTS, 'accounts-desktop.png'), fullPage: true });
  });

  it('re-link replaces the token; revoke makes the agent’s next request connection_required; connecting again works', async () => {
    const page = await signedIn('alice', 390, 844);
    await throughProvider(page, '#connection-notes-cloud button.relink', 'alice');
    const relinked = await agentCall('alice');
    expect(relinked).toMatchObject({ status: 200, account: 'alice' });
    expect(String(upstream.requests.at(-1)!.headers.authorization)).not.toBe(tokenSeen);

    await page.goto(`${warden.url}/.warden/console/accounts`);
    await page.screenshot({ path: join(SCREENSHOTS, 'accounts-phone.png'), fullPage: true });
    await Promise.all([page.waitForURL(/done=revoked/), page.click('#connection-notes-cloud button.revoke')]);
    expect(await page.textContent('#notice')).toContain('disconnected');
    expect(await page.locator('#connection-notes-cloud .status').textContent()).toBe('not connected');
    expect(await agentCall('alice')).toMatchObject({ status: 403, code: 'connection_required' });

    await throughProvider(page, '#connection-notes-cloud button.link', 'alice');
    expect(await agentCall('alice')).toMatchObject({ status: 200, account: 'alice' });
  });

  it('bob sees none of alice’s account and cannot revoke it by crafting requests', async () => {
    const bob = await signedIn('bob');
    expect(await bob.locator('#connection-notes-cloud .status').textContent()).toBe('not connected');
    const token = (await bob.locator('meta[name=csrf-token]').getAttribute('content'))!;
    expect(token.length).toBeGreaterThan(20);
    const post = (path: string, form: Record<string, string>) =>
      bob.evaluate(async ([p, f]) => (await fetch(p, { method: 'POST', body: new URLSearchParams(f), redirect: 'manual' })).status, [path, form] as const);
    expect(await post('/.warden/console/accounts/notes-cloud/revoke', { csrf: token })).toBe(404);
    expect(await post('/.warden/console/accounts/notes-cloud/revoke', { csrf: token, user: 'alice' })).toBe(404);
    // An encoded separator is refused before the console sees it.
    expect([400, 404]).toContain(await post('/.warden/console/accounts/..%2Fnotes-cloud/revoke', { csrf: token }));
    // alice's account is untouched.
    expect(await agentCall('alice')).toMatchObject({ status: 200, account: 'alice' });
    expect(await agentCall('bob')).toMatchObject({ status: 403, code: 'connection_required' });
  });
});
