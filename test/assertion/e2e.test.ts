/**
 * Identity assertions end to end: a real Warden (dev issuer and a real OpenID
 * provider, embedded OpenFGA engine, approvals with a real webhook receiver)
 * in front of the example upstream, which verifies every assertion with jose
 * against Warden's JWKS and refuses everything else.
 */

import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignJWT, decodeJwt, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { startWebhookSink, type WebhookSink } from '../approvals/webhook-sink.js';
import { decide } from '../approvals/review-client.js';
import { startIdentityUpstream, verifyAssertion, type IdentityUpstream } from '../../examples/identity-upstream.js';

const HOOK_SECRET = 'assertion-webhook-secret-0123456789';

let idp: OidcTestProvider;
let hook: WebhookSink;
let recorder: Upstream;
let verified: IdentityUpstream;
let bearerVerified: IdentityUpstream;
let warden: WardenHandle;
let wardenUrl: string;

beforeAll(async () => {
  const [verifiedPort, bearerPort] = [await freePort(), await freePort()];
  const verifiedUrl = `http://127.0.0.1:${verifiedPort}`;
  const bearerUrl = `http://127.0.0.1:${bearerPort}`;
  idp = await startOidcProvider({
    audience: 'https://warden.test',
    clients: [
      {
        client_id: 'billing-bot',
        client_secret: 'billing-bot-secret-0123456789abcdef',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['http://127.0.0.1/cb'],
      },
    ],
    // A token that already went through two delegations: planner, acting for orchestrator.
    extraTokenClaims: ({ accountId }) => (accountId ? { act: { sub: 'planner', client_id: 'planner-app', act: { sub: 'orchestrator' } } } : undefined),
  });
  [hook, recorder] = await Promise.all([startWebhookSink(), startUpstream()]);
  warden = await startWarden({
    env: { HOOK_URL: hook.url, HOOK_SECRET },
    config: `
server:
  listen: 127.0.0.1:0
identity:
  dev_issuer: true
  issuers:
    - issuer: "${idp.issuer}"
      audience: https://warden.test
      algorithms: [RS256]
authz:
  model: test/assertion/fixtures/model.fga
  tuples: test/assertion/fixtures/tuples.yaml
  cache_ttl: 0
approvals:
  hold: 20s
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "\${HOOK_SECRET}" }
routes:
  - name: notes
    match: { path: "/notes/**" }
    upstream: { url: "${verifiedUrl}", strip_prefix: /notes }
    authorize:
      - { user: "agent:{agent}", relation: can_call, object: "api:notes" }
    approval: { when: 'request.method == "DELETE"', message: "Delete {request.path}" }
    assertion: true
  - name: notes-authz
    match: { path: "/read/:note" }
    upstream: { url: "${verifiedUrl}" }
    authorize:
      - { user: "agent:{agent}", relation: can_call, object: "api:notes" }
      - { user: "user:{user}", relation: reader, object: "note:{path.note}" }
    assertion: { authz: true, claims: { mail: email } }
  - name: bearer
    match: { path: "/bearer/**" }
    upstream: { url: "${bearerUrl}", strip_prefix: /bearer }
    authorize: []
    assertion: { header: Authorization }
  - name: keyed
    match: { path: "/keyed/**" }
    upstream: { url: "${recorder.url}" }
    authorize: []
    credentials: { header: { name: X-Api-Key, value: upstream-api-key } }
    assertion: { header: X-Identity, audience: "https://keyed.internal" }
  - name: recorded
    match: { path: "/recorded/**" }
    upstream: { url: "${recorder.url}" }
    authorize: []
    assertion: { audience: "${verifiedUrl}" }
  - name: plain
    match: { path: "/plain/**" }
    upstream: { url: "${recorder.url}" }
    authorize: []
`,
  });
  wardenUrl = warden.url;
  const jwks = new URL(`${wardenUrl}/.warden/jwks.json`);
  [verified, bearerVerified] = await Promise.all([
    startIdentityUpstream({ jwks, issuer: wardenUrl, port: verifiedPort, clockToleranceSeconds: 0 }),
    startIdentityUpstream({ jwks, issuer: wardenUrl, port: bearerPort, header: 'Authorization', clockToleranceSeconds: 0 }),
  ]);
});

afterAll(async () => {
  await warden?.close();
  await Promise.allSettled([idp?.stop(), hook?.close(), recorder?.close(), verified?.close(), bearerVerified?.close()]);
});

beforeEach(() => {
  recorder.requests.length = 0;
  recorder.setHandler((req, res, body) => {
    const payload = JSON.stringify({ ok: true, url: req.url, body: body.toString('utf8') });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(payload);
  });
});

const call = (path: string, token: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
  fetch(`${warden.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });

/** The assertion values that reached the recording upstream in `name` (lower case), one per request. */
const received = (name: string): string[][] =>
  recorder.requests.map((r) => r.rawHeaders.filter((_, i) => i % 2 === 1 && r.rawHeaders[i - 1].toLowerCase() === name));

describe('identity assertions reach the upstream', () => {
  it('publishes the signing key and the upstream verifies the assertion with jose: user, agent, scope, route, audience', async () => {
    const keys = (await (await fetch(`${warden.url}/.warden/jwks.json`)).json()) as { keys: JWK[] };
    expect(keys.keys.some((k) => k.use === 'sig' && k.alg === 'ES256' && !('d' in k))).toBe(true);

    const token = await warden.token('bot', 'alice', ['notes:read']);
    const res = await call('/notes/docs/1', token);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { user: string; agents: string[]; scope: string[]; approval: unknown };
    expect(body).toMatchObject({ user: 'alice', agents: ['bot'], scope: ['notes:read'], approval: null });
    const claims = verified.accepted.at(-1)!.claims;
    expect(claims).toMatchObject({ iss: wardenUrl, aud: verified.url, sub: 'alice', act: { sub: 'bot', client_id: 'bot' }, route: 'notes' });
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(60);
    expect(typeof claims.jti).toBe('string');
    expect(claims.approval).toBeUndefined();
    expect(claims.authz).toBeUndefined();
    // The agent's own token never travels with it.
    expect(res.headers.get('warden-identity')).toBeNull();
  });

  it('a machine token (no user) asserts the agent as the subject', async () => {
    const token = await warden.token('bot', null);
    const res = await call('/notes/status', token);
    expect(res.status).toBe(200);
    expect(verified.accepted.at(-1)!.claims).toMatchObject({ sub: 'bot', act: { sub: 'bot' } });
  });

  it('a token carrying a two-level act chain (oidc-provider) arrives with a three-level chain', async () => {
    const { access_token } = await idp.userAccessToken({ accountId: 'alice', clientId: 'billing-bot', scope: 'openid read' });
    const res = await call('/notes/docs/1', access_token);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { agents: string[] }).agents).toEqual(['billing-bot', 'planner', 'orchestrator']);
    expect(verified.accepted.at(-1)!.claims).toMatchObject({
      sub: 'alice',
      act: { sub: 'billing-bot', client_id: 'billing-bot', act: { sub: 'planner', client_id: 'planner-app', act: { sub: 'orchestrator' } } },
    });
  });

  it('only a request released by an approval carries the approval claim', async () => {
    const token = await warden.token('bot', 'alice');
    const plain = await call('/notes/docs/7', token);
    expect(plain.status).toBe(200);
    expect(verified.accepted.at(-1)!.approval).toBeUndefined();

    // Without an approval the upstream refuses a DELETE on its own: the held one is released by a person.
    const held = call('/notes/docs/7', token, { method: 'DELETE' });
    const delivery = await hook.next((d) => d.notice.url === '/notes/docs/7');
    expect((await decide(fetch, delivery.notice.review_url, 'approve')).status).toBe(200);
    const res = await held;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { approval: { id: string; approved_by: string; decided_at: number; digest: string } };
    expect(body.approval).toMatchObject({ id: delivery.notice.id, approved_by: 'alice' });
    expect(body.approval.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(Math.abs(body.approval.decided_at - Date.now() / 1000)).toBeLessThan(30);

    // The same agent and user right after: no approval claim (the cached assertion is not the approved one).
    expect((await call('/notes/docs/8', token)).status).toBe(200);
    expect(verified.accepted.at(-1)!.approval).toBeUndefined();
  });

  it('authz: true lists the checks that allowed the request; mapped claims come from the allow-list only', async () => {
    const token = await warden.token('bot', 'alice', [], { email: 'alice@example.test', secret_claim: 'nope' });
    expect((await call('/read/1', token)).status).toBe(200);
    const claims = verified.accepted.at(-1)!.claims;
    expect(claims.authz).toEqual([
      { user: 'agent:bot', relation: 'can_call', object: 'api:notes' },
      { user: 'user:alice', relation: 'reader', object: 'note:1' },
    ]);
    expect(claims.mail).toBe('alice@example.test');
    expect(claims.secret_claim).toBeUndefined();
    expect(claims.email).toBeUndefined();
    expect((await call('/read/2', token)).status).toBe(403);
  });

  it('replaces Authorization on a route with no other credentials', async () => {
    const token = await warden.token('bot', 'alice');
    const res = await call('/bearer/x', token);
    expect(res.status).toBe(200);
    expect(bearerVerified.accepted.at(-1)!.claims).toMatchObject({ sub: 'alice', route: 'bearer', aud: bearerVerified.url });
  });

  it('travels beside a header credential, in its own header and with its own audience', async () => {
    const token = await warden.token('bot', 'alice');
    expect((await call('/keyed/x', token)).status).toBe(200);
    const r = recorder.requests[0];
    expect(r.headers['x-api-key']).toBe('upstream-api-key');
    expect(r.headers.authorization).toBeUndefined();
    const assertion = String(r.headers['x-identity']);
    expect(decodeProtectedHeader(assertion)).toMatchObject({ typ: 'warden-identity+jwt', alg: 'ES256' });
    expect(decodeJwt(assertion)).toMatchObject({ aud: 'https://keyed.internal', sub: 'alice', route: 'keyed' });
    expect(r.headers['warden-identity']).toBeUndefined();
  });

  it('reuses one signed assertion for the same principal and route, and signs anew for another route', async () => {
    const token = await warden.token('bot', 'alice');
    await call('/recorded/a', token);
    await call('/recorded/b', token);
    await call('/keyed/c', token);
    const [a, b] = received('warden-identity');
    expect(a).toHaveLength(1);
    expect(a[0]).toBe(b[0]);
    expect(decodeJwt(String(recorder.requests[2].headers['x-identity'])).jti).not.toBe(decodeJwt(a[0]).jti);
  });
});

describe('the agent cannot shadow or read the assertion', () => {
  it("the agent's own Warden-Identity header never reaches the upstream (stripped before Warden sets its own)", async () => {
    const token = await warden.token('bot', 'mallory');
    const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.';
    await call('/recorded/x', token, { headers: { 'warden-identity': forged, 'x-identity': forged } });
    const values = received('warden-identity')[0];
    expect(values).toHaveLength(1);
    expect(values[0]).not.toBe(forged);
    expect(decodeJwt(values[0]).sub).toBe('mallory');
    // On a route with its own header name, that one is Warden's alone too.
    await call('/keyed/x', token, { headers: { 'warden-identity': forged, 'x-identity': forged } });
    const keyed = recorder.requests[1];
    expect(received('x-identity')[1]).toHaveLength(1);
    expect(keyed.headers['x-identity']).not.toBe(forged);
    expect(keyed.headers['warden-identity']).toBeUndefined();
    // And on a route without assertions, the agent's header is dropped as well.
    await call('/plain/x', token, { headers: { 'warden-identity': forged } });
    expect(recorder.requests[2].headers['warden-identity']).toBeUndefined();
  });

  it('an upstream that reflects the assertion in its response headers is not heard', async () => {
    recorder.setHandler((req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'warden-identity': String(req.headers['warden-identity']),
        'x-identity': String(req.headers['x-identity'] ?? ''),
      });
      res.end('ok');
    });
    const token = await warden.token('bot', 'alice');
    const a = await call('/recorded/reflect', token);
    expect(a.status).toBe(200);
    expect(a.headers.get('warden-identity')).toBeNull();
    const b = await call('/keyed/reflect', token);
    expect(b.status).toBe(200);
    expect(b.headers.get('x-identity')).toBeNull();
    for (const r of [a, b]) for (const [, v] of r.headers) expect(v).not.toMatch(/^eyJ/);
  });

  it('no Warden answer (errors, pending approvals, endpoints) carries an assertion', async () => {
    const token = await warden.token('bot', 'alice');
    const denied = await call('/read/2', token);
    const pendingCall = call('/notes/docs/9', token, { method: 'DELETE' });
    const delivery = await hook.next((d) => d.notice.url === '/notes/docs/9');
    await decide(fetch, delivery.notice.review_url, 'deny');
    const refused = await pendingCall;
    expect(refused.status).toBe(403);
    for (const r of [denied, refused]) {
      expect(r.headers.get('warden-identity')).toBeNull();
      expect(await r.text()).not.toMatch(/eyJ[\w-]+\.eyJ/);
    }
    expect(warden.logs()).not.toMatch(/warden-identity\+jwt|"eyJ[\w-]*\.eyJ[\w-]*\.[\w-]{20,}"/);
  });
});

describe('the example upstream refuses what did not pass through Warden', () => {
  it('no assertion, an agent token, a forged signature, or a wrong audience are all refused', async () => {
    const direct = (headers: Record<string, string>) => fetch(`${verified.url}/docs/1`, { headers });
    expect((await direct({})).status).toBe(401);
    // The dev issuer's access token is signed by a key in the same JWKS: its typ and issuer still refuse it.
    const agentToken = await warden.token('bot', 'alice');
    expect((await direct({ 'warden-identity': agentToken })).status).toBe(401);

    // A forged assertion: right kid, right claims, another key.
    await call('/recorded/ok', agentToken);
    const genuine = received('warden-identity').at(-1)![0];
    const kid = decodeProtectedHeader(genuine).kid;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forger = await importJWK(privateKey.export({ format: 'jwk' }) as JWK, 'ES256');
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ sub: 'alice', act: { sub: 'bot' }, route: 'notes' })
      .setProtectedHeader({ alg: 'ES256', typ: 'warden-identity+jwt', kid })
      .setIssuer(wardenUrl)
      .setAudience(verified.url)
      .setIssuedAt(now)
      .setExpirationTime(now + 30)
      .setJti('forged')
      .sign(forger);
    const before = verified.refused.length;
    expect((await direct({ 'warden-identity': forged })).status).toBe(401);
    expect(verified.refused.at(-1)!.reason).toContain('ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
    expect(verified.refused.length).toBe(before + 1);

    // A genuine assertion minted for another audience.
    const token = await warden.token('bot', 'alice');
    await call('/keyed/x', token);
    const other = String(recorder.requests.at(-1)!.headers['x-identity']);
    expect((await direct({ 'warden-identity': other })).status).toBe(401);
    expect(verified.refused.at(-1)!.reason).toContain('ERR_JWT_CLAIM_VALIDATION_FAILED');

    // A genuine assertion for this audience is accepted (it was minted by Warden for this upstream).
    expect((await direct({ 'warden-identity': genuine })).status).toBe(200);
  });

  it('a DELETE without an approval claim is refused by the upstream itself', async () => {
    const token = await warden.token('bot', 'alice');
    await call('/recorded/x', token);
    const genuine = received('warden-identity').at(-1)![0];
    const res = await fetch(`${verified.url}/docs/1`, { method: 'DELETE', headers: { 'warden-identity': genuine } });
    expect(res.status).toBe(403);
  });
});

describe('a replayed assertion fails once it has expired', () => {
  let short: WardenHandle;
  let shortUpstream: Upstream;
  beforeAll(async () => {
    shortUpstream = await startUpstream();
    short = await startWarden({
      config: `
server:
  listen: 127.0.0.1:0
identity:
  dev_issuer: true
  assertion: { ttl: 2s, jti: per_request }
authz:
  model: test/assertion/fixtures/model.fga
routes:
  - name: r
    match: { path: "/**" }
    upstream: { url: "${shortUpstream.url}" }
    authorize: []
    assertion: true
`,
    });
  });
  afterAll(async () => {
    await short?.close();
    await shortUpstream?.close();
  });

  it('accepted while fresh, refused after exp; per_request signs a new jti each time', async () => {
    const token = await short.token('bot', 'alice');
    const h = { authorization: `Bearer ${token}` };
    await fetch(`${short.url}/a`, { headers: h });
    await fetch(`${short.url}/b`, { headers: h });
    const [first, second] = shortUpstream.requests.map((r) => String(r.headers['warden-identity']));
    expect(first).not.toBe(second);
    const c1 = decodeJwt(first);
    expect(c1.jti).not.toBe(decodeJwt(second).jti);
    expect((c1.exp as number) - (c1.iat as number)).toBe(2);
    // jti is the request id Warden forwarded.
    expect(c1.jti).toBe(shortUpstream.requests[0].headers['x-request-id']);

    const policy = { jwks: new URL(`${short.url}/.warden/jwks.json`), issuer: short.url, audience: shortUpstream.url, clockToleranceSeconds: 0 };
    await expect(verifyAssertion(first, policy)).resolves.toMatchObject({ user: 'alice', agents: ['bot'] });
    await new Promise((r) => setTimeout(r, 3_100));
    await expect(verifyAssertion(first, policy)).rejects.toMatchObject({ status: 401, message: expect.stringContaining('ERR_JWT_EXPIRED') });
  });

  it('an agent-chosen request id never becomes the jti', async () => {
    const token = await short.token('bot', 'alice');
    await fetch(`${short.url}/c`, { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'agent-chosen-id' } });
    const r = shortUpstream.requests.at(-1)!;
    expect(r.headers['x-request-id']).toBe('agent-chosen-id');
    expect(decodeJwt(String(r.headers['warden-identity'])).jti).not.toBe('agent-chosen-id');
  });
});
