/**
 * Agent tokens from a real OpenID provider (oidc-provider: RFC 9068 JWT access
 * tokens, client credentials and authorization code) through the gateway.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { metricValue, scrape } from '../support/metrics.js';

let idp: OidcTestProvider;
let upstream: Upstream;
let warden: WardenHandle;

beforeAll(async () => {
  idp = await startOidcProvider({
    audience: 'https://warden.test',
    clients: [
      {
        client_id: 'billing-bot',
        client_secret: 'billing-bot-secret-0123456789abcdef',
        grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
        redirect_uris: ['http://127.0.0.1/cb'],
      },
    ],
  });
  upstream = await startUpstream();
  warden = await startWarden({
    config: `
identity:
  issuers:
    - issuer: "${idp.issuer}"
      audience: https://warden.test
      algorithms: [RS256]
authz:
  model: test/core/fixtures/model.fga
  tuples: test/core/fixtures/tuples.yaml
routes:
  - name: docs
    match: { path: /docs/:doc }
    upstream: { url: "${upstream.url}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
  - name: machine
    match: { path: /machine/** }
    upstream: { url: "${upstream.url}" }
    authorize: []
`,
  });
});
afterAll(async () => {
  await warden?.close();
  await upstream?.close();
  await idp?.stop();
});
beforeEach(() => {
  upstream.requests.length = 0;
});

const call = (path: string, token: string) => fetch(`${warden.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

describe('tokens from a real OpenID provider', () => {
  it('a user access token (authorization code) acts for the user', async () => {
    const { access_token } = await idp.userAccessToken({ accountId: 'alice', clientId: 'billing-bot', scope: 'openid read' });
    expect((await call('/docs/1', access_token)).status).toBe(200);
    expect((await call('/docs/2', access_token)).status).toBe(403);
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0].headers.authorization).toBeUndefined();
    const audit = warden.audits().at(-2)!;
    expect(audit).toMatchObject({ agent: 'billing-bot', user: 'alice', decision: 'allow' });
  });

  it('a client-credentials token is the agent acting as itself (no user)', async () => {
    const token = await idp.clientCredentialsToken('billing-bot', 'read');
    expect((await call('/machine/x', token)).status).toBe(200);
    expect((await call('/docs/1', token)).status).toBe(403);
    const audit = warden.audits().at(-2)!;
    expect(audit.agent).toBe('billing-bot');
    expect(audit.user).toBeUndefined();
  });

  it('an ID token is refused as an access token', async () => {
    const res = await idp.userAccessToken({ accountId: 'alice', clientId: 'billing-bot', scope: 'openid read' });
    expect(res.id_token).toBeTruthy();
    const r = await call('/machine/x', res.id_token!);
    expect(r.status).toBe(401);
    expect(upstream.requests).toHaveLength(0);
  });

  it('fails closed (401, nothing forwarded) when the JWKS cannot be fetched and keys are unknown', async () => {
    await idp.rotateKeys();
    idp.setOutage({ paths: [idp.jwksPath], mode: 'error' });
    try {
      const token = await idp.clientCredentialsToken('billing-bot', 'read');
      const r = await call('/machine/x', token);
      expect(r.status).toBe(401);
      expect(upstream.requests).toHaveLength(0);
    } finally {
      idp.setOutage(null);
    }
  });

  it('counts JWKS fetches by issuer and outcome on /metrics', async () => {
    const text = await scrape(warden.adminUrl);
    expect(text).toMatch(/^# HELP warden_jwks_fetches_total /m);
    expect(metricValue(text, 'warden_jwks_fetches_total', { issuer: idp.issuer, outcome: 'ok' })).toBeGreaterThanOrEqual(1);
  });
});
