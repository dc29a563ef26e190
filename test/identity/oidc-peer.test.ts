/**
 * The shared oidc-provider test peer (test/support/oidc.ts) does what other
 * engineers rely on: RFC 9068 tokens, scripted login, refresh rotation with
 * reuse detection, CIBA approve/deny, key rotation, outage simulation.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcTokenError, startOidcProvider, type BackchannelRequestInfo, type OidcTestProvider } from '../support/oidc.js';

function part(token: string, i: 0 | 1) {
  return JSON.parse(Buffer.from(token.split('.')[i], 'base64url').toString());
}

let op: OidcTestProvider;
const announced: BackchannelRequestInfo[] = [];

beforeAll(async () => {
  op = await startOidcProvider({
    audience: 'http://127.0.0.1:8080',
    refreshTokens: true,
    accessTokenTtl: 120,
    ciba: { onBackchannelRequest: (r) => void announced.push(r) },
    clients: [
      {
        client_id: 'upstream-app',
        client_secret: 'upstream-secret-upstream-secret',
        redirect_uris: ['http://127.0.0.1:9/.warden/callback/upstream'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    extraTokenClaims: ({ accountId }) => (accountId ? { email: `${accountId}@example.test` } : undefined),
  });
});
afterAll(async () => {
  await op?.stop();
});

async function cibaRequest(loginHint: string, extra: Record<string, string> = {}) {
  const c = op.clients.ciba;
  const res = await fetch(`${op.issuer}/backchannel`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ scope: 'openid read', login_hint: loginHint, ...extra }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { auth_req_id: string; expires_in: number };
}

const poll = (authReqId: string) => op.tokenRequest(op.clients.ciba.client_id, { grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: authReqId });

describe('oidc test peer', () => {
  it('issues RFC 9068 machine tokens (typ at+jwt, aud, client_id, sub = client)', async () => {
    const token = await op.clientCredentialsToken('machine-agent', 'read write');
    expect(part(token, 0)).toMatchObject({ typ: 'at+jwt', alg: 'RS256', kid: op.signingKey().kid });
    expect(part(token, 1)).toMatchObject({ iss: op.issuer, aud: op.audience, client_id: 'machine-agent', sub: 'machine-agent', scope: 'read write' });
    expect(part(token, 1).exp - part(token, 1).iat).toBe(120);
  });

  it('issues user tokens via code + PKCE with a scripted login, plus ID and refresh tokens', async () => {
    const t = await op.userAccessToken({ clientId: 'upstream-app', accountId: 'dana', scope: 'github' });
    expect(part(t.access_token, 1)).toMatchObject({ sub: 'dana', client_id: 'upstream-app', scope: 'github', email: 'dana@example.test' });
    expect(part(t.id_token!, 1)).toMatchObject({ sub: 'dana', aud: 'upstream-app' });
    expect(t.refresh_token).toBeTruthy();
  });

  it('runs a plain OAuth 2.0 code flow (no openid scope) too', async () => {
    const t = await op.userAccessToken({ clientId: 'upstream-app', accountId: 'gus', scope: 'github', openid: false });
    expect(t.id_token).toBeUndefined();
    expect(t.refresh_token).toBeTruthy();
    expect(part(t.access_token, 1)).toMatchObject({ sub: 'gus', scope: 'github', aud: op.audience });
  });

  it('rotates refresh tokens and detects reuse', async () => {
    const t = await op.userAccessToken({ clientId: 'upstream-app', accountId: 'erin', scope: 'github' });
    const r1 = await op.refresh('upstream-app', t.refresh_token!);
    expect(r1.refresh_token).toBeTruthy();
    expect(r1.refresh_token).not.toBe(t.refresh_token);
    const reuse = await op.refresh('upstream-app', t.refresh_token!).catch((e) => e);
    expect(reuse).toBeInstanceOf(OidcTokenError);
    expect(reuse.error).toBe('invalid_grant');
    // Reuse revokes the whole grant (RFC 9700): the rotated token is dead too.
    const after = await op.refresh('upstream-app', r1.refresh_token!).catch((e) => e);
    expect(after.error).toBe('invalid_grant');
  });

  it('lets a custom interaction deny consent', async () => {
    const denying = await startOidcProvider({ interaction: () => ({ error: 'access_denied', error_description: 'user said no' }) });
    try {
      const err = await denying.userAccessToken({ accountId: 'x' }).catch((e) => e);
      expect(err).toBeInstanceOf(OidcTokenError);
      expect(err.error).toBe('access_denied');
    } finally {
      await denying.stop();
    }
  });

  it('runs CIBA in poll mode: pending, approved, denied', async () => {
    const a = await cibaRequest('carol', { binding_message: 'Delete /files/report.pdf' });
    expect(announced.at(-1)).toMatchObject({ authReqId: a.auth_req_id, accountId: 'carol', bindingMessage: 'Delete /files/report.pdf' });
    expect(op.backchannelRequests.map((r) => r.authReqId)).toContain(a.auth_req_id);
    expect((await poll(a.auth_req_id).catch((e) => e)).error).toBe('authorization_pending');
    await op.approveBackchannel(a.auth_req_id);
    const tokens = await poll(a.auth_req_id);
    expect(part(tokens.access_token, 1)).toMatchObject({ sub: 'carol', client_id: 'ciba-client' });

    const d = await cibaRequest('dave');
    await op.denyBackchannel(d.auth_req_id);
    expect((await poll(d.auth_req_id).catch((e) => e)).error).toBe('access_denied');
  });

  it('rotates keys: new kid signs, old kid stays published, state survives', async () => {
    const before = await op.userAccessToken({ clientId: 'upstream-app', accountId: 'fay', scope: 'github' });
    const oldKid = op.signingKey().kid;
    const newKid = await op.rotateKeys();
    expect(newKid).not.toBe(oldKid);
    expect(op.publicJwks().keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect(op.publicJwks().keys.every((k) => !('d' in k))).toBe(true);
    const refreshed = await op.refresh('upstream-app', before.refresh_token!);
    expect(part(refreshed.access_token, 0).kid).toBe(newKid);
    const served = (await (await fetch(op.jwksUri)).json()) as { keys: Array<{ kid: string }> };
    expect(served.keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
  });

  it('counts requests and simulates outages', async () => {
    op.resetCounts();
    await fetch(op.jwksUri);
    expect(op.requestCount(op.jwksPath)).toBe(1);
    op.setOutage({ paths: [op.jwksPath] });
    expect((await fetch(op.jwksUri)).status).toBe(503);
    op.setOutage(null);
    expect((await fetch(op.jwksUri)).status).toBe(200);
    const discovery = (await (await fetch(op.discoveryUrl)).json()) as Record<string, unknown>;
    expect(discovery).toMatchObject({ issuer: op.issuer, jwks_uri: op.jwksUri });
    expect(discovery.backchannel_authentication_endpoint).toBe(`${op.issuer}/backchannel`);
  });
});
