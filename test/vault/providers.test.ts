/**
 * Provider calls against the real oidc-provider: OIDC discovery, client
 * authentication, refresh with rotation, and the classification of failures
 * (invalid_grant vs transient vs rejected), with timeouts on every call.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerSchema } from '../../src/config/schema.js';
import { createPkcePair, createProvider, parseScopes, ProviderError } from '../../src/vault/providers.js';
import { startVaultProvider, type VaultProvider } from './support.js';

describe('vault providers (real oidc-provider)', () => {
  let vp: VaultProvider;
  let silent: Server;
  let silentUrl = '';

  const config = (overrides: Record<string, unknown>) =>
    providerSchema.parse({ client_id: vp.clientId, client_secret: vp.clientSecret, scopes: ['github'], timeout: '2s', ...overrides });

  beforeAll(async () => {
    vp = await startVaultProvider({ redirectUris: ['http://127.0.0.1:9/.warden/callback/acme'] });
    // A server that accepts connections and never answers (timeouts).
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    silent?.closeAllConnections();
    await new Promise((r) => silent?.close(r));
    await vp?.close();
  });

  it('discovers endpoints from the issuer and refreshes with rotation', async () => {
    const provider = createProvider('acme', config({ issuer: vp.op.issuer }));
    const endpoints = await provider.endpoints();
    expect(endpoints.authorizationUrl).toBe(`${vp.op.issuer}/auth`);
    expect(endpoints.tokenUrl).toBe(`${vp.op.issuer}/token`);
    const url = new URL(await provider.authorizationUrl({ redirectUri: 'http://127.0.0.1:9/cb', state: 's', codeChallenge: 'c', scopes: ['github'] }));
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code',
      client_id: vp.clientId,
      scope: 'github',
      state: 's',
      code_challenge: 'c',
      code_challenge_method: 'S256',
    });

    const linked = await vp.op.userAccessToken({ accountId: 'alice-gh', clientId: vp.clientId, scope: 'github' });
    const refreshed = await provider.refresh(linked.refresh_token!, ['github']);
    expect(refreshed.accessToken).toBeTruthy();
    expect(refreshed.refreshToken).toBeTruthy();
    expect(refreshed.refreshToken).not.toBe(linked.refresh_token);
    expect(refreshed.expiresAt).toBeGreaterThan(Date.now());
    expect(refreshed.scopes).toContain('github');
    // Reusing the rotated refresh token is invalid_grant (re-link needed).
    const reused = await provider.refresh(linked.refresh_token!, ['github']).catch((e: unknown) => e);
    expect(reused).toBeInstanceOf(ProviderError);
    expect(reused).toMatchObject({ kind: 'invalid_grant', oauthError: 'invalid_grant' });
  });

  it('refuses a discovery document for another issuer (mix-up)', async () => {
    const provider = createProvider('acme', config({ issuer: `${vp.op.issuer}/other` }));
    await expect(provider.endpoints()).rejects.toMatchObject({ kind: 'rejected' });
  });

  it('wrong client authentication is rejected, not invalid_grant', async () => {
    const linked = await vp.op.userAccessToken({ accountId: 'bob-gh', clientId: vp.clientId, scope: 'github' });
    const wrongSecret = createProvider('acme', config({ issuer: vp.op.issuer, client_secret: 'not-the-secret-at-all' }));
    await expect(wrongSecret.refresh(linked.refresh_token!, [])).rejects.toMatchObject({ kind: 'rejected', oauthError: 'invalid_client' });
    const postWrong = createProvider('acme', config({ issuer: vp.op.issuer, client_auth: 'client_secret_post', client_secret: 'not-the-secret-at-all' }));
    await expect(postWrong.refresh(linked.refresh_token!, [])).rejects.toMatchObject({ kind: 'rejected', oauthError: 'invalid_client' });
    // The refresh token was not spent by the refused attempts.
    const right = createProvider('acme', config({ issuer: vp.op.issuer }));
    expect((await right.refresh(linked.refresh_token!, [])).accessToken).toBeTruthy();
  });

  it('classifies 5xx as transient with Retry-After, and times out a silent provider', async () => {
    vp.relay.fault({ grant: 'refresh_token', mode: 'error', headers: { 'retry-after': '7' } });
    const viaRelay = createProvider('acme', config({ authorization_url: `${vp.op.issuer}/auth`, token_url: vp.relay.tokenUrl }));
    await expect(viaRelay.refresh('whatever', [])).rejects.toMatchObject({ kind: 'transient', httpStatus: 503, retryAfter: 7 });

    const hanging = createProvider('acme', config({ authorization_url: `${silentUrl}/auth`, token_url: `${silentUrl}/token`, timeout: '300ms' }));
    const err = await hanging.refresh('whatever', []).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'transient' });
    expect((err as Error).message).toContain('no answer within 300ms');

    const down = createProvider('acme', config({ issuer: 'http://127.0.0.1:9' }));
    await expect(down.endpoints()).rejects.toMatchObject({ kind: 'transient' });
  });

  it('PKCE pairs are S256 and scopes parse both separators', () => {
    const { verifier, challenge } = createPkcePair();
    expect(verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(challenge).not.toBe(verifier);
    expect(parseScopes('repo,user  read:org')).toEqual(['repo', 'user', 'read:org']);
    expect(parseScopes(undefined)).toBeUndefined();
  });

  it('a config without endpoints or issuer is refused at build time', () => {
    expect(() => createProvider('acme', config({}))).toThrow(/authorization_url and token_url, or issuer/);
  });
});

describe('vault provider answers are read with a bound', () => {
  const chunk = Buffer.alloc(16 * 1024, 'a');
  const total = 64 * 1024 * 1024;
  let server: Server;
  let url = '';
  /** Bytes the server got into the socket before the client stopped reading, and whether it wrote them all. */
  let written = 0;
  let finished = false;
  let closed: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      if (req.url?.startsWith('/small')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ access_token: 'small-token', token_type: 'Bearer', expires_in: 60 }));
        return;
      }
      if (req.url?.startsWith('/expiry/')) {
        // The answer's expires_in is the JSON after `/expiry/` (URL-encoded).
        res.setHeader('content-type', 'application/json');
        const expiresIn: unknown = JSON.parse(decodeURIComponent(req.url.slice('/expiry/'.length).replace(/\/token$/, '')));
        res.end(JSON.stringify({ access_token: 'expiry-token', token_type: 'Bearer', expires_in: expiresIn, refresh_token: 'r' }));
        return;
      }
      if (req.url?.startsWith('/dpop')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ access_token: 'bound-token', token_type: 'DPoP', expires_in: 60, refresh_token: 'r' }));
        return;
      }
      // Chunked (no Content-Length), far past the limit, honouring backpressure.
      written = 0;
      finished = false;
      closed = new Promise((resolve) => res.on('close', resolve));
      res.writeHead(200, { 'content-type': 'application/json' });
      const pump = () => {
        while (written < total && !res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end(() => (finished = true));
      };
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
  });

  const config = (overrides: Record<string, unknown>) =>
    providerSchema.parse({ client_id: 'warden', client_secret: 'secret', scopes: [], timeout: '10s', ...overrides });

  it('stops reading a chunked answer soon after 256 KiB (token endpoint and discovery), and small answers work', async () => {
    const token = createProvider('big', config({ authorization_url: `${url}/auth`, token_url: `${url}/token` }));
    await expect(token.refresh('whatever', [])).rejects.toMatchObject({ kind: 'rejected', message: 'provider response too large' });
    await closed;
    expect(finished).toBe(false);
    // 256 KiB plus what the loopback socket buffers held (about 4 MB here); the whole answer is 64 MiB.
    expect(written).toBeLessThan(16 * 1024 * 1024);

    const discovery = createProvider('big', config({ issuer: `${url}/issuer` }));
    await expect(discovery.endpoints()).rejects.toMatchObject({ kind: 'rejected', message: 'provider response too large' });
    await closed;
    expect(finished).toBe(false);
    expect(written).toBeLessThan(16 * 1024 * 1024);

    const small = createProvider('small', config({ authorization_url: `${url}/small/auth`, token_url: `${url}/small/token` }));
    expect(await small.refresh('whatever', [])).toMatchObject({ accessToken: 'small-token', tokenType: 'Bearer' });
  });

  it('an expires_in that is no date (past what a Date holds, empty, not a decimal number) is no expiry; 0 and "3600" are dated', async () => {
    const expiryOf = async (expiresIn: unknown) => {
      const base = `${url}/expiry/${encodeURIComponent(JSON.stringify(expiresIn))}`;
      const provider = createProvider('expiry', config({ authorization_url: `${base}/auth`, token_url: `${base}/token` }));
      return (await provider.refresh('whatever', [])).expiresAt;
    };
    // 1e13 s would be stored as an epoch past 8.64e15 ms: every listing of it (`new Date(…).toISOString()`) would throw.
    for (const odd of [1e13, 1e306, '', ' ', '0x10', '1e3', -5, '-5', true]) expect(await expiryOf(odd), JSON.stringify(odd)).toBeUndefined();
    const now = Date.now();
    const hour = await expiryOf('3600');
    expect(hour).toBeGreaterThanOrEqual(now + 3_600_000 - 5_000);
    expect(hour).toBeLessThanOrEqual(now + 3_600_000 + 5_000);
    const gone = await expiryOf(0);
    expect(gone).toBeGreaterThanOrEqual(now - 5_000);
    expect(gone).toBeLessThanOrEqual(now + 5_000);
    const year = await expiryOf(31_536_000);
    expect(new Date(year!).toISOString()).toMatch(/^\d{4}-/);
  });

  it('refuses a token that is not a Bearer token (DPoP): Warden would send it as one', async () => {
    const dpop = createProvider('dpop', config({ authorization_url: `${url}/dpop/auth`, token_url: `${url}/dpop/token` }));
    await expect(dpop.refresh('whatever', [])).rejects.toMatchObject({ kind: 'rejected', message: expect.stringContaining('token_type DPoP') });
  });
});
