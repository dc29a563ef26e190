/**
 * The embedded shape (one instance, `store.driver: memory`) with a provider
 * configured by OIDC discovery (`issuer`): linking in Chromium, use, refresh
 * and revocation all work without Redis.
 */

import { connectAs } from '../support/login.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createConnectionRepository } from '../../src/vault/records.js';
import { launchBrowser, type Browser } from '../support/browser.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startBalancer, startVaultProvider, type Balancer, type VaultProvider } from './support.js';

const KEY = generateVaultKey();

describe('vault on the memory store with a discovered provider', () => {
  let lb: Balancer;
  let vp: VaultProvider;
  let upstream: Upstream;
  let warden: WardenHandle;
  let browser: Browser;

  beforeAll(async () => {
    lb = await startBalancer();
    vp = await startVaultProvider({ redirectUris: [`${lb.url}/.warden/callback/acme`], defaultAccountId: 'acme-user-1' });
    upstream = await startUpstream();
    warden = await startWarden({
      env: { PUBLIC_URL: lb.url, OP: vp.op.issuer, SECRET: vp.clientSecret, UP: upstream.url, KEY },
      config: `
server: { public_url: "\${PUBLIC_URL}" }
identity: { dev_issuer: true }
authz: { engine: embedded, model: test/vault/fixtures/model.fga, tuples: test/vault/fixtures/tuples.yaml }
vault:
  keys: [{ id: main, key: "\${KEY}" }]
  # This test rewrites records behind the gateway's back (no invalidation is
  # published), so the request path must read the store every time.
  cache_ttl: 0s
  providers:
    acme: { issuer: "\${OP}", client_id: warden-vault, client_secret: "\${SECRET}", scopes: [github], refresh_before: 30s }
routes:
  - name: acme
    match: { path: "/acme/**" }
    upstream: { url: "\${UP}", strip_prefix: /acme }
    authorize: []
    credentials: { vault: acme }
`,
    });
    lb.setTargets([warden.url]);
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await warden?.close();
    await upstream?.close();
    await vp?.close();
    await lb?.close();
  });

  it('links, forwards the user’s token, refreshes it once expired, and revokes', async () => {
    const token = await warden.token('mail-bot', 'zoe');
    const first = await fetch(`${lb.url}/acme/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(first.status).toBe(403);
    const { connect_url } = (await first.json()) as { connect_url: string };

    const context = await browser.newContext();
    const page = await context.newPage();
    // Linking needs zoe signed in (dev login) and her POST on the confirmation page.
    await connectAs(page, connect_url, 'zoe');
    await page.waitForURL(/\/\.warden\/callback\/acme/);
    expect(await page.locator('#title').textContent()).toBe('Account connected');
    await context.close();

    const rt = warden.gateway.runtime();
    expect(rt.store.driver).toBe('memory');
    const repo = createConnectionRepository(rt.store, createVaultCipher([{ id: 'main', key: KEY }]));
    const linked = (await repo.get('zoe', 'acme'))!;
    expect(linked.refreshToken).toBeTruthy();
    const ok = await fetch(`${lb.url}/acme/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${linked.accessToken}`);

    // Make it expire: the next request refreshes at the discovered token endpoint.
    await repo.replace({ ...linked, expiresAt: Date.now() - 1_000 }, linked.version);
    const tokenCalls = vp.op.requestCount('/token');
    const again = await fetch(`${lb.url}/acme/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(200);
    expect(vp.op.requestCount('/token')).toBe(tokenCalls + 1);
    const refreshed = (await repo.get('zoe', 'acme'))!;
    expect(refreshed.accessToken).not.toBe(linked.accessToken);
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${refreshed.accessToken}`);

    const del = await fetch(`${lb.url}/.warden/connections/acme`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(del.status).toBe(204);
    // Revoked at the provider too (RFC 7009 endpoint from discovery).
    expect(vp.op.requestCount('/token/revocation')).toBe(1);
    const after = await fetch(`${lb.url}/acme/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await after.json()) as { code: string }).code).toBe('connection_required');

    const logs = warden.logs();
    for (const secret of [linked.accessToken, linked.refreshToken!, refreshed.accessToken, refreshed.refreshToken!, KEY, vp.clientSecret, token]) {
      expect(logs).not.toContain(secret);
    }
  });
});
