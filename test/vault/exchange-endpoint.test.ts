/**
 * POST /.warden/oauth/token (RFC 8693) as OAuth clients see it: standard
 * client libraries (openid-client, oauth4webapi) discover it through RFC 8414
 * metadata and authenticate with client_secret_basic, client_secret_post and
 * private_key_jwt. A stolen agent token alone, a made-up secret, or another
 * client's subject token never pulls the user's upstream token.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as client from 'openid-client';
import * as oauth from 'oauth4webapi';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { connectionKey, createConnectionRepository } from '../../src/vault/records.js';

const K1 = generateVaultKey();
const MAIL_SECRET = 'mail-bot-exchange-secret-0123456789abcdef';
const OTHER_SECRET = 'other-bot-exchange-secret-0123456789abcdef';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const UPSTREAM_TOKEN = 'gho_bobs-upstream-token-never-for-strangers';

let warden: WardenHandle;
let jwks: Server;
let keyBotKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  keyBotKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'key-bot-1', alg: 'ES256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  }).listen(0, '127.0.0.1');
  await new Promise((r) => jwks.once('listening', r));
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;

  warden = await startWarden({
    config: `
server: { listen: "127.0.0.1:0" }
identity: { dev_issuer: true }
authz: { engine: embedded, model: test/vault/fixtures/model.fga, tuples: test/vault/fixtures/exchange-tuples.yaml, cache_ttl: 0 }
vault:
  keys: [{ id: k1, key: "\${K1}" }]
  providers:
    github:
      authorization_url: http://127.0.0.1:9/auth
      token_url: http://127.0.0.1:9/token
      client_id: warden-vault
      client_secret: vault-client-secret
      scopes: [repo]
  exchange_clients:
    - { client_id: mail-bot, client_secret: "\${MAIL_SECRET}" }
    - { client_id: other-bot, client_secret: "\${OTHER_SECRET}" }
    - { client_id: key-bot, jwks_uri: "${jwksUrl}" }
routes: []
`,
    env: { K1, MAIL_SECRET, OTHER_SECRET },
  });
  const repo = createConnectionRepository(warden.gateway.runtime().store, createVaultCipher([{ id: 'k1', key: K1 }]));
  await repo.put({ user: 'bob', provider: 'github', accessToken: UPSTREAM_TOKEN, scopes: ['repo'], expiresAt: Date.now() + 3600_000 });
});

afterAll(async () => {
  await warden?.close();
  await new Promise((r) => jwks?.close(r));
});

const tokenUrl = () => `${warden.url}/.warden/oauth/token`;
const github = () => `${warden.url}/.warden/connections/github`;

async function post(
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(tokenUrl(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const basic = (id: string, secret: string) => ({
  authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
});

describe('token exchange: client authentication', () => {
  it('refuses a bearer subject token alone, or with a made-up secret (401 invalid_client)', async () => {
    const subject = await warden.token('mail-bot', 'bob');
    const form = { grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, resource: github() };
    const alone = await post(form);
    expect(alone.status).toBe(401);
    expect(alone.body.error).toBe('invalid_client');
    expect(alone.headers.get('www-authenticate')).toMatch(/^Basic /);
    for (const headers of [basic('mail-bot', 'guessed-secret'), basic('mail-bot', `${MAIL_SECRET}x`), basic('nobody', MAIL_SECRET)]) {
      const r = await post(form, headers);
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('invalid_client');
    }
    const postMadeUp = await post({ ...form, client_id: 'mail-bot', client_secret: 'made-up' });
    expect(postMadeUp.status).toBe(401);
    // key-bot has no secret: a secret for it is refused too.
    expect((await post(form, basic('key-bot', MAIL_SECRET))).status).toBe(401);
    for (const r of [alone, postMadeUp]) expect(JSON.stringify(r.body)).not.toContain(UPSTREAM_TOKEN);
  });

  it('refuses a subject token issued to another client, and two authentication methods at once', async () => {
    const bobViaMail = await warden.token('mail-bot', 'bob');
    const r = await post({ grant_type: GRANT, subject_token: bobViaMail, subject_token_type: ACCESS, resource: github() }, basic('other-bot', OTHER_SECRET));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_request');
    expect(JSON.stringify(r.body)).not.toContain(UPSTREAM_TOKEN);
    const both = await post(
      { grant_type: GRANT, subject_token: bobViaMail, subject_token_type: ACCESS, resource: github(), client_id: 'mail-bot', client_secret: MAIL_SECRET },
      basic('mail-bot', MAIL_SECRET),
    );
    expect(both.status).toBe(400);
    expect(both.body.error).toBe('invalid_request');
  });

  it('openid-client discovers the endpoint (RFC 8414) and exchanges with client_secret_basic and client_secret_post', async () => {
    const subject = await warden.token('mail-bot', 'bob');
    for (const auth of [client.ClientSecretBasic(MAIL_SECRET), client.ClientSecretPost(MAIL_SECRET)]) {
      const config = await client.discovery(new URL(warden.url), 'mail-bot', undefined, auth, { execute: [client.allowInsecureRequests], algorithm: 'oauth2' });
      expect(config.serverMetadata().token_endpoint).toBe(tokenUrl());
      const tokens = await client.genericGrantRequest(config, GRANT, { subject_token: subject, subject_token_type: ACCESS, resource: github() });
      expect(tokens.access_token).toBe(UPSTREAM_TOKEN);
      expect(tokens.issued_token_type).toBe(ACCESS);
    }
  });

  it('oauth4webapi exchanges with private_key_jwt; a replayed or foreign-signed assertion is refused', async () => {
    const issuer = new URL(warden.url);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    const keyBot: oauth.Client = { client_id: 'key-bot' };
    const subject = await warden.token('key-bot', 'bob');
    const params = () => new URLSearchParams({ subject_token: subject, subject_token_type: ACCESS, resource: github() });
    const res = await oauth.genericTokenEndpointRequest(as, keyBot, oauth.PrivateKeyJwt({ key: keyBotKey, kid: 'key-bot-1' }), GRANT, params(), {
      [oauth.allowInsecureRequests]: true,
    });
    const result = await oauth.processGenericTokenEndpointResponse(as, keyBot, res);
    expect(result.access_token).toBe(UPSTREAM_TOKEN);

    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'key-bot-1' })
      .setIssuer('key-bot')
      .setSubject('key-bot')
      .setAudience(warden.url)
      .setJti('one-time')
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(keyBotKey);
    const form = {
      grant_type: GRANT,
      subject_token: subject,
      subject_token_type: ACCESS,
      resource: github(),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    };
    expect((await post(form)).status).toBe(200);
    const replay = await post(form);
    expect(replay.status).toBe(401);
    expect(replay.body.error).toBe('invalid_client');

    const stranger = (await generateKeyPair('ES256')).privateKey;
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'key-bot-1' })
      .setIssuer('key-bot')
      .setSubject('key-bot')
      .setAudience(warden.url)
      .setJti('forged')
      .setExpirationTime('1m')
      .sign(stranger);
    expect((await post({ ...form, client_assertion: forged })).status).toBe(401);
    const wrongAud = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'key-bot-1' })
      .setIssuer('key-bot')
      .setSubject('key-bot')
      .setAudience('https://elsewhere.example')
      .setJti('aud')
      .setExpirationTime('1m')
      .sign(keyBotKey);
    expect((await post({ ...form, client_assertion: wrongAud })).status).toBe(401);
  });
});

describe('token exchange: protocol details', () => {
  it('answers other methods with 405 and Allow: POST', async () => {
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const res = await fetch(tokenUrl(), { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });

  it('requires resource to be an absolute URI (a bare provider name is refused; audience may name it)', async () => {
    const subject = await warden.token('mail-bot', 'bob');
    const base = { grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS };
    const bare = await post({ ...base, resource: 'github' }, basic('mail-bot', MAIL_SECRET));
    expect(bare.status).toBe(400);
    expect(bare.body.error).toBe('invalid_target');
    expect((await post({ ...base, audience: 'github' }, basic('mail-bot', MAIL_SECRET))).status).toBe(200);
  });

  it('a policy refusal is invalid_target (RFC 8693 §2.2.2)', async () => {
    const subject = await warden.token('other-bot', 'bob');
    const r = await post({ grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, resource: github() }, basic('other-bot', OTHER_SECRET));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_target');
  });

  it('an unexpected failure is RFC 6749 JSON (server_error), never problem+json', async () => {
    const store = warden.gateway.runtime().store;
    await store.set(connectionKey('carol', 'github'), 'not a sealed record');
    const subject = await warden.token('mail-bot', 'carol');
    const res = await fetch(tokenUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic('mail-bot', MAIL_SECRET) },
      body: new URLSearchParams({ grant_type: GRANT, subject_token: subject, subject_token_type: ACCESS, resource: github() }),
    });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({ error: 'server_error' });
  });
});
