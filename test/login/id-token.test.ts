/**
 * ID token validation of the sign-in relying party against a hostile IdP: a
 * small HTTP peer that serves real discovery, a real JWKS and a token endpoint
 * answering whatever ID token the test forged (jose-signed). Each forgery must
 * be refused; the genuine token must pass (so the test can fail).
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createLoginClient, LoginError, type LoginClient } from '../../src/identity/login/oidc-client.js';
import { userPrefixOf } from '../../src/identity/claims.js';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

describe('sign-in ID token validation (hostile IdP)', () => {
  let server: Server;
  let issuer: string;
  let key: Key;
  let otherKey: Key;
  let jwk: JWK;
  let nextIdToken = '';
  let hangToken = false;
  let client: LoginClient;
  const CLIENT = 'warden-login';
  const NONCE = 'n-0123456789abcdef';

  beforeAll(async () => {
    ({ privateKey: otherKey } = await generateKeyPair('RS256'));
    const pair = await generateKeyPair('RS256', { extractable: true });
    key = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', issuer).pathname;
      const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (path === '/.well-known/openid-configuration')
        return json({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
      if (path === '/jwks') return json({ keys: [jwk] });
      if (path === '/token') {
        if (hangToken) return; // never answered: the client's timeout must end the call
        return json({ access_token: 'at', token_type: 'Bearer', expires_in: 60, id_token: nextIdToken });
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const cfg = configSchema.parse({ identity: { login: { issuer, client_id: CLIENT, client_secret: 's', session: { secret: 'x'.repeat(40) } } } });
    client = createLoginClient(cfg.identity.login!, { clockToleranceMs: 30_000 });
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** A relying party with other `identity.login` settings against the same IdP. */
  function clientWith(login: Record<string, unknown>): LoginClient {
    const cfg = configSchema.parse({ identity: { login: { issuer, client_id: CLIENT, client_secret: 's', session: { secret: 'x'.repeat(40) }, ...login } } });
    return createLoginClient(cfg.identity.login!, { clockToleranceMs: 30_000 });
  }
  const finishWith = (c: LoginClient) => c.finish({ code: 'c', codeVerifier: 'v', redirectUri: 'http://127.0.0.1:9/cb', nonce: NONCE });

  it('user_claim names the person by another claim, and a token without it is refused', async () => {
    const byEmail = clientWith({ user_claim: 'email' });
    nextIdToken = await sign({ ...base(), email: 'alice@example.test' });
    expect((await finishWith(byEmail)).sub).toBe('alice@example.test');
    nextIdToken = await sign(base());
    await expect(finishWith(byEmail)).rejects.toBeInstanceOf(LoginError);
  });

  it('user_claim email: an address the provider marks unverified signs nobody in', async () => {
    const byEmail = clientWith({ user_claim: 'email' });
    for (const unverified of [false, 'false']) {
      nextIdToken = await sign({ ...base(), email: 'alice@example.test', email_verified: unverified });
      await expect(finishWith(byEmail)).rejects.toMatchObject({ kind: 'rejected', message: expect.stringContaining('not verified') });
    }
    nextIdToken = await sign({ ...base(), email: 'alice@example.test', email_verified: true });
    expect((await finishWith(byEmail)).sub).toBe('alice@example.test');
    // Named by sub, the flag is not the person's name: it does not matter.
    nextIdToken = await sign({ ...base(), email: 'alice@example.test', email_verified: false });
    expect((await finishWith(clientWith({}))).sub).toBe('alice');
  });

  it('a person is named as agent tokens of the same issuer name users: that issuer’s user_prefix comes first', async () => {
    const cfg = configSchema.parse({
      identity: {
        issuers: [{ issuer, audience: 'warden', user_prefix: 'partner/' }],
        login: { issuer, client_id: CLIENT, client_secret: 's', session: { secret: 'x'.repeat(40) } },
      },
    });
    // What the login feature passes: the prefix of the agent-token issuer with the login's identifier.
    const userPrefix = userPrefixOf(cfg.identity.issuers, cfg.identity.login!.issuer);
    expect(userPrefix).toBe('partner/');
    expect(userPrefixOf(cfg.identity.issuers, 'https://other.example.test/')).toBe('');
    nextIdToken = await sign(base());
    expect((await finishWith(createLoginClient(cfg.identity.login!, { clockToleranceMs: 30_000, userPrefix }))).sub).toBe('partner/alice');
  });

  it('algorithms is an allow-list: an RS256 token is refused when only ES256 is allowed', async () => {
    nextIdToken = await sign(base());
    await expect(finishWith(clientWith({ algorithms: ['ES256'] }))).rejects.toMatchObject({ kind: 'rejected' });
    expect((await finishWith(clientWith({ algorithms: ['RS256'] }))).sub).toBe('alice');
  });

  it('timeout bounds the call to a token endpoint that never answers (transient, not a hang)', async () => {
    hangToken = true;
    try {
      const started = Date.now();
      const err = await finishWith(clientWith({ timeout: '300ms' })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LoginError);
      expect((err as LoginError).kind).toBe('transient');
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      hangToken = false;
    }
  });

  const now = () => Math.floor(Date.now() / 1000);
  async function sign(claims: Record<string, unknown>, header: Record<string, unknown> = {}, signingKey: Key = key): Promise<string> {
    return new SignJWT({ nonce: NONCE, ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header } as { alg: string }).sign(signingKey);
  }
  const base = () => ({ iss: issuer, aud: CLIENT, sub: 'alice', iat: now(), exp: now() + 300 });
  async function finish(idToken: string) {
    nextIdToken = idToken;
    return client.finish({ code: 'c', codeVerifier: 'v', redirectUri: 'http://127.0.0.1:9/cb', nonce: NONCE });
  }

  it('accepts the genuine token and names the person', async () => {
    const out = await finish(await sign(base()));
    expect(out.sub).toBe('alice');
    const withAzp = await finish(await sign({ ...base(), aud: [CLIENT, 'other'], azp: CLIENT }));
    expect(withAzp.sub).toBe('alice');
  });

  const unsecured = (claims: Record<string, unknown>) =>
    `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;

  it.each<[string, () => Promise<string>]>([
    ['another nonce', () => sign({ ...base(), nonce: 'n-other' })],
    ['no nonce', () => sign({ ...base(), nonce: undefined })],
    ['another audience', () => sign({ ...base(), aud: 'someone-else' })],
    ['several audiences without azp', () => sign({ ...base(), aud: [CLIENT, 'other'] })],
    ['azp of another client', () => sign({ ...base(), azp: 'other' })],
    ['another issuer', () => sign({ ...base(), iss: 'https://evil.example' })],
    ['expired', () => sign({ ...base(), iat: now() - 3600, exp: now() - 600 })],
    ['an access token (typ at+jwt)', () => sign(base(), { typ: 'at+jwt' })],
    ['signed by a key the IdP does not publish', () => sign(base(), {}, otherKey)],
    ['unsigned (alg none)', async () => unsecured({ ...base(), nonce: NONCE })],
    ['no sub', () => sign({ ...base(), sub: undefined })],
  ])('refuses %s', async (_name, forge) => {
    const err = await finish(await forge()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LoginError);
    expect((err as LoginError).kind).toBe('rejected');
  });
});
