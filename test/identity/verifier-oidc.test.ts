/**
 * The authenticator against a real OpenID provider (oidc-provider): valid user
 * and machine tokens, and one test per JWT attack class of SECURITY.md, with
 * request counts at the provider's JWKS/discovery endpoints to prove what was
 * (not) fetched.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, randomBytes } from 'node:crypto';
import { createAuthenticator, type AuthenticatorOptions } from '../../src/identity/verifier.js';
import { issuerSchema } from '../../src/config/schema.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { accessClaims, attackerKey, b64, nowSec, signCompact } from './forge.js';
import { expectRefused, identityConfig, sleep, startRecordingServer } from './helpers.js';
import { captureLogs } from '../support/logs.js';

const DISCOVERY = '/.well-known/openid-configuration';

let op: OidcTestProvider;

beforeAll(async () => {
  op = await startOidcProvider({ audience: 'http://127.0.0.1:8080', accessTokenTtl: 600 });
});
afterAll(async () => {
  await op?.stop();
});

/** An authenticator trusting `op`, with issuer overrides and options. */
async function authFor(issuer: Record<string, unknown> = {}, opts: Partial<AuthenticatorOptions> = {}, identity: Record<string, unknown> = {}) {
  const cap = captureLogs();
  const auth = await createAuthenticator(identityConfig({ issuers: [{ issuer: op.issuer, audience: op.audience, ...issuer }], ...identity }), {
    logger: cap.logger,
    ...opts,
  });
  return { auth, logs: cap };
}

/** A token signed by the provider's real current key, with any header/claims. */
function realSigned(header: Record<string, unknown>, claims: Record<string, unknown> = {}): string {
  const key = op.signingKey();
  return signCompact({ alg: 'RS256', typ: 'at+jwt', kid: key.kid, ...header }, accessClaims(op.issuer, op.audience, claims), key.privateJwk);
}

describe('valid tokens from the real provider', () => {
  it('accepts a user token (authorization code + PKCE) and maps the principal', async () => {
    const { auth } = await authFor();
    const tokens = await op.userAccessToken({ accountId: 'bob', scope: 'read write' });
    const p = await auth.authenticate(tokens.access_token);
    expect(p.agent).toBe(op.clients.app.client_id);
    expect(p.user).toBe('bob');
    expect(p.scopes).toEqual(['read', 'write']);
    expect(p.issuer).toBe(op.issuer);
    expect(p.actors).toEqual([]);
    expect(p.expiresAt).toBeGreaterThan(nowSec());
  });

  it('accepts a client-credentials machine token with user = null', async () => {
    const { auth } = await authFor();
    const token = await op.clientCredentialsToken(op.clients.machine.client_id, 'read');
    const p = await auth.authenticate(token);
    expect(p.agent).toBe('machine-agent');
    expect(p.user).toBeNull();
    expect(p.claims.sub).toBe('machine-agent');
  });

  it('finds the keys by OIDC discovery once, then never again for valid tokens', async () => {
    op.resetCounts();
    const { auth } = await authFor();
    for (let i = 0; i < 5; i++) {
      await auth.authenticate(await op.clientCredentialsToken(op.clients.machine.client_id, 'read'));
    }
    expect(op.requestCount(DISCOVERY)).toBe(1);
    expect(op.requestCount(op.jwksPath)).toBe(1);
  });

  it('uses a configured jwks_uri without discovery', async () => {
    op.resetCounts();
    const { auth } = await authFor({ jwks_uri: op.jwksUri });
    await auth.authenticate(await op.clientCredentialsToken(op.clients.machine.client_id));
    expect(op.requestCount(DISCOVERY)).toBe(0);
    expect(op.requestCount(op.jwksPath)).toBe(1);
  });

  it('accepts an audience list', async () => {
    const { auth } = await authFor({ audience: ['https://elsewhere.example', op.audience] });
    await expect(auth.authenticate(await op.clientCredentialsToken('machine-agent'))).resolves.toMatchObject({ agent: 'machine-agent' });
  });

  it('reads scp arrays, agent_claim/user_claim and the act chain', async () => {
    const { auth } = await authFor({ agent_claim: 'client_id', user_claim: 'email' });
    const token = realSigned(
      {},
      { scope: undefined, scp: ['read', 'files'], email: 'carol@example.test', sub: 'carol', act: { sub: 'agent-a', act: { sub: 'agent-b' } } },
    );
    const p = await auth.authenticate(token);
    expect(p.agent).toBe('forged-agent');
    expect(p.user).toBe('carol@example.test');
    expect(p.scopes).toEqual(['read', 'files']);
    expect(p.actors).toEqual(['agent-a', 'agent-b']);
  });

  it('user_claim email: an address its issuer marks unverified names nobody (false, or "false" as some write it)', async () => {
    const { auth } = await authFor({ user_claim: 'email' });
    for (const unverified of [false, 'false']) {
      await expectRefused(auth.authenticate(realSigned({}, { email: 'alice@example.test', email_verified: unverified })), 'bad_claim');
    }
    for (const asserted of [true, 'true', undefined]) {
      const p = await auth.authenticate(realSigned({}, { email: 'alice@example.test', email_verified: asserted }));
      expect(p.user).toBe('alice@example.test');
    }
  });

  it('refuses a token that names no agent', async () => {
    const { auth } = await authFor();
    await expectRefused(auth.authenticate(realSigned({}, { client_id: undefined })), 'no_agent');
  });
});

describe('JWT attack classes (RFC 8725)', () => {
  it('alg none (any spelling) is refused without fetching keys', async () => {
    op.resetCounts();
    const { auth } = await authFor();
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const token = `${b64({ alg, typ: 'at+jwt' })}.${b64(accessClaims(op.issuer, op.audience))}.`;
      await expectRefused(auth.authenticate(token), 'alg_none');
    }
    expect(op.requestCount(op.jwksPath) + op.requestCount(DISCOVERY)).toBe(0);
  });

  it('HS256 signed with the RSA public key (key confusion) is refused', async () => {
    const { auth } = await authFor();
    await auth.authenticate(await op.clientCredentialsToken('machine-agent')); // keys are loaded
    const pub = op.signingKey().publicJwk;
    const pem = createPublicKey({ key: pub, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    for (const secret of [pem, JSON.stringify(pub), Buffer.from(pub.n as string, 'base64url')]) {
      const token = signCompact({ alg: 'HS256', typ: 'at+jwt', kid: pub.kid }, accessClaims(op.issuer, op.audience), secret);
      await expectRefused(auth.authenticate(token), 'alg_not_allowed');
    }
  });

  it('HS* can never be configured for an issuer', () => {
    const parsed = issuerSchema.safeParse({ issuer: op.issuer, audience: 'x', algorithms: ['HS256'] });
    expect(parsed.success).toBe(false);
  });

  it('an algorithm outside the allow-list is refused before any fetch', async () => {
    op.resetCounts();
    const { auth } = await authFor({ algorithms: ['ES256'] });
    const token = await op.clientCredentialsToken('machine-agent'); // RS256
    await expectRefused(auth.authenticate(token), 'alg_not_allowed');
    expect(op.requestCount(op.jwksPath) + op.requestCount(DISCOVERY)).toBe(0);
  });

  it('the right key with another allowed-for-the-key algorithm (RS384) is refused when only RS256 is allowed', async () => {
    const { auth } = await authFor({ algorithms: ['RS256'] });
    await expectRefused(auth.authenticate(realSigned({ alg: 'RS384' })), 'alg_not_allowed');
  });

  it('injected kid values never match and never flood the JWKS endpoint', async () => {
    const { auth } = await authFor({}, { jwksCooldownMs: 60_000 });
    await auth.authenticate(await op.clientCredentialsToken('machine-agent'));
    op.resetCounts();
    const evil = attackerKey();
    for (const kid of ['../../etc/passwd', "' OR '1'='1", 'k"; DROP TABLE keys;--', '${jndi:ldap://x}', `${op.signingKey().kid}/../x`]) {
      const token = signCompact({ alg: 'RS256', typ: 'at+jwt', kid }, accessClaims(op.issuer, op.audience), evil.privateJwk);
      await expectRefused(auth.authenticate(token), 'unknown_key');
    }
    for (const kid of ['a'.repeat(300), 'nul\u0000byte', '', 42]) {
      const token = signCompact({ alg: 'RS256', typ: 'at+jwt', kid }, accessClaims(op.issuer, op.audience), evil.privateJwk);
      await expectRefused(auth.authenticate(token), 'malformed');
    }
    expect(op.requestCount(op.jwksPath)).toBe(0);
  });

  it('the real kid with an attacker signature fails the signature check', async () => {
    const { auth } = await authFor();
    const evil = attackerKey();
    const token = signCompact({ alg: 'RS256', typ: 'at+jwt', kid: op.signingKey().kid }, accessClaims(op.issuer, op.audience), evil.privateJwk);
    await expectRefused(auth.authenticate(token), 'bad_signature');
    const real = await op.clientCredentialsToken('machine-agent');
    const [h, , s] = real.split('.');
    const tampered = `${h}.${b64({ ...JSON.parse(Buffer.from(real.split('.')[1], 'base64url').toString()), sub: 'admin' })}.${s}`;
    await expectRefused(auth.authenticate(tampered), 'bad_signature');
  });

  it('jku / x5u / jwk / x5c headers are refused and nothing is fetched', async () => {
    const evil = attackerKey();
    const trap = await startRecordingServer({ keys: [{ ...evil.publicJwk, alg: 'RS256', use: 'sig' }] });
    try {
      op.resetCounts();
      const { auth } = await authFor();
      const headers: Array<Record<string, unknown>> = [
        { jku: `${trap.url}/jwks.json` },
        { x5u: `${trap.url}/cert.pem` },
        { jwk: evil.publicJwk },
        { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
        { jku: `${trap.url}/jwks.json`, jwk: evil.publicJwk },
      ];
      for (const extra of headers) {
        const token = signCompact({ alg: 'RS256', typ: 'at+jwt', kid: evil.kid, ...extra }, accessClaims(op.issuer, op.audience), evil.privateJwk);
        await expectRefused(auth.authenticate(token), 'key_in_header');
      }
      // Even with the real key and kid, a jku header is refused.
      await expectRefused(auth.authenticate(realSigned({ jku: `${trap.url}/jwks.json` })), 'key_in_header');
      expect(trap.hits).toEqual([]);
      expect(op.requestCount(op.jwksPath) + op.requestCount(DISCOVERY)).toBe(0);
    } finally {
      await trap.stop();
    }
  });

  it('an unknown crit header is refused even when correctly signed', async () => {
    const { auth } = await authFor();
    await expectRefused(auth.authenticate(realSigned({ crit: ['x-warden-test'], 'x-warden-test': true })), 'crit');
    await expectRefused(auth.authenticate(realSigned({ crit: ['exp'] })), 'crit');
    await expectRefused(auth.authenticate(realSigned({ b64: false, crit: ['b64'] })), 'crit');
  });

  describe('time claims and skew (clock_tolerance 30s)', () => {
    it('refuses an expired token', async () => {
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(realSigned({}, { iat: nowSec() - 7200, exp: nowSec() - 3600 })), 'expired');
    });
    it('refuses nbf in the future', async () => {
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(realSigned({}, { nbf: nowSec() + 3600 })), 'not_yet_valid');
    });
    it('refuses iat in the future beyond tolerance', async () => {
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(realSigned({}, { iat: nowSec() + 3600 })), 'iat_in_future');
    });
    it('refuses a token without exp', async () => {
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(realSigned({}, { exp: undefined })), 'missing_claim');
    });
    it('refuses non-numeric time claims', async () => {
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(realSigned({}, { exp: String(nowSec() + 600) })), 'bad_claim');
    });
    it('accepts exp, nbf and iat within the tolerance', async () => {
      const { auth } = await authFor();
      await expect(auth.authenticate(realSigned({}, { exp: nowSec() - 10 }))).resolves.toMatchObject({ user: 'alice' });
      await expect(auth.authenticate(realSigned({}, { nbf: nowSec() + 10, iat: nowSec() + 10 }))).resolves.toMatchObject({ user: 'alice' });
    });
    it('with tolerance 0 the same skew is refused', async () => {
      const { auth } = await authFor({}, {}, { clock_tolerance: '0s' });
      await expectRefused(auth.authenticate(realSigned({}, { exp: nowSec() - 10 })), 'expired');
    });
  });

  it('a wrong or near-miss iss is an unknown issuer, refused without any fetch', async () => {
    op.resetCounts();
    const { auth } = await authFor();
    for (const iss of ['https://evil.example', `${op.issuer}/`, op.issuer.toUpperCase(), ` ${op.issuer}`, `${op.issuer}#`]) {
      await expectRefused(auth.authenticate(realSigned({}, { iss })), 'unknown_issuer');
    }
    await expectRefused(auth.authenticate(realSigned({}, { iss: [op.issuer] })), 'unknown_issuer');
    expect(op.requestCount(op.jwksPath) + op.requestCount(DISCOVERY)).toBe(0);
  });

  it('a token for another audience (real provider, other resource) is refused', async () => {
    const { auth } = await authFor();
    const token = await op.clientCredentialsToken('machine-agent', 'read', 'https://other.example/api');
    await expectRefused(auth.authenticate(token), 'wrong_audience');
    await expectRefused(auth.authenticate(realSigned({}, { aud: undefined })), 'missing_claim');
  });

  describe('token type (RFC 9068)', () => {
    it('refuses the provider ID token', async () => {
      const tokens = await op.userAccessToken({ accountId: 'bob', scope: 'read' });
      expect(tokens.id_token).toBeTruthy();
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(tokens.id_token!), 'id_token');
      // Even when the audience would match and untyped tokens are allowed.
      const lax = await authFor({ audience: [op.audience, op.clients.app.client_id], allow_untyped: true });
      await expectRefused(lax.auth.authenticate(tokens.id_token!), 'id_token');
      await expectRefused(lax.auth.authenticate(realSigned({ typ: 'JWT' }, { at_hash: 'x' })), 'id_token');
    });
    it('refuses a missing or wrong typ unless allow_untyped', async () => {
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(realSigned({ typ: undefined })), 'typ');
      await expectRefused(auth.authenticate(realSigned({ typ: 'JWT' })), 'typ');
      await expectRefused(auth.authenticate(realSigned({ typ: 'dpop+jwt' })), 'typ');
      await expectRefused(auth.authenticate(realSigned({ typ: 'logout+jwt' })), 'typ');
      const lax = await authFor({ allow_untyped: true });
      await expect(lax.auth.authenticate(realSigned({ typ: undefined }))).resolves.toMatchObject({ user: 'alice' });
      await expect(lax.auth.authenticate(realSigned({ typ: 'JWT' }))).resolves.toMatchObject({ user: 'alice' });
      await expectRefused(lax.auth.authenticate(realSigned({ typ: 'dpop+jwt' })), 'typ');
    });
    it('accepts at+jwt spelled as a media type, case-insensitively', async () => {
      const { auth } = await authFor();
      for (const typ of ['application/at+jwt', 'AT+JWT', 'Application/At+Jwt']) {
        await expect(auth.authenticate(realSigned({ typ }))).resolves.toMatchObject({ user: 'alice' });
      }
    });
  });

  it('refuses JWE (5 parts) and JSON serialization', async () => {
    const { auth } = await authFor();
    const jwe = `${b64({ alg: 'RSA-OAEP-256', enc: 'A256GCM', typ: 'at+jwt' })}.${b64('k')}.${b64('iv')}.${b64('ct')}.${b64('tag')}`;
    await expectRefused(auth.authenticate(jwe), 'jwe');
    await expectRefused(auth.authenticate(realSigned({ enc: 'A256GCM' })), 'jwe');
    const real = await op.clientCredentialsToken('machine-agent');
    const [h, p, s] = real.split('.');
    await expectRefused(auth.authenticate(JSON.stringify({ protected: h, payload: p, signature: s })), 'json_serialization');
    await expectRefused(auth.authenticate(JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }] })), 'json_serialization');
  });

  it('refuses oversized and malformed tokens', async () => {
    const { auth } = await authFor();
    const big = realSigned({}, { pad: 'x'.repeat(9000) });
    await expectRefused(auth.authenticate(big), 'too_large');
    await expectRefused(auth.authenticate('a'.repeat(100_000)), 'too_large');
    const good = await op.clientCredentialsToken('machine-agent');
    const [h, p, s] = good.split('.');
    const malformed = [
      '',
      'abc',
      'a.b',
      `${h}.${p}`,
      `${h}.${p}.${s}.x`,
      `${h}.${p}.${s}=`,
      `${h}.${p}.${s} `,
      `${h}.${p}.s+g/`,
      `${b64('not json')}.${p}.${s}`,
      `${b64([1, 2])}.${p}.${s}`,
      `${b64('null')}.${p}.${s}`,
      `${h}.${b64('[]')}.${s}`,
      `${h}.${Buffer.from([0xff, 0xfe, 0x7b]).toString('base64url')}.${s}`,
      `${b64({ typ: 'at+jwt' })}.${p}.${s}`,
      `${h}.${p}.`,
      `..`,
      `${h}.${p.slice(0, -1)}.${s}`,
    ];
    for (const token of malformed) await expectRefused(auth.authenticate(token), 'malformed');
  });
});

describe('JWKS rotation, flooding and outage', () => {
  it('rotation: a token with the new kid triggers exactly one refetch', async () => {
    const { auth } = await authFor({}, { jwksCooldownMs: 300 });
    op.resetCounts();
    const oldToken = await op.clientCredentialsToken('machine-agent');
    await auth.authenticate(oldToken);
    expect(op.requestCount(op.jwksPath)).toBe(1);

    const newKid = await op.rotateKeys();
    await sleep(350); // past the cooldown
    const fresh = await op.clientCredentialsToken('machine-agent');
    expect(JSON.parse(Buffer.from(fresh.split('.')[0], 'base64url').toString()).kid).toBe(newKid);
    await expect(auth.authenticate(fresh)).resolves.toMatchObject({ agent: 'machine-agent' });
    expect(op.requestCount(op.jwksPath)).toBe(2);
    // More new-kid tokens and the old token: no further fetch.
    await auth.authenticate(await op.clientCredentialsToken('machine-agent'));
    await auth.authenticate(realSigned({}, { sub: 'zed' }));
    expect(op.requestCount(op.jwksPath)).toBe(2);
  });

  it('flooding: 100 random kids within the cooldown cause no fetch at all', async () => {
    const { auth } = await authFor({}, { jwksCooldownMs: 60_000 });
    await auth.authenticate(await op.clientCredentialsToken('machine-agent'));
    op.resetCounts();
    const evil = attackerKey();
    const flood = Array.from({ length: 100 }, () =>
      signCompact({ alg: 'RS256', typ: 'at+jwt', kid: randomBytes(12).toString('base64url') }, accessClaims(op.issuer, op.audience), evil.privateJwk),
    );
    const results = await Promise.allSettled(flood.map((t) => auth.authenticate(t)));
    expect(results.every((r) => r.status === 'rejected' && (r.reason as { code: string }).code === 'unauthenticated')).toBe(true);
    expect(op.requestCount(op.jwksPath)).toBe(0);
  });

  it('flooding after the cooldown: 100 random kids cause exactly one refetch', async () => {
    const { auth } = await authFor({}, { jwksCooldownMs: 1500 });
    op.resetCounts();
    await auth.authenticate(await op.clientCredentialsToken('machine-agent'));
    expect(op.requestCount(op.jwksPath)).toBe(1);
    await sleep(1600);
    const evil = attackerKey();
    const flood = Array.from({ length: 100 }, () =>
      signCompact({ alg: 'RS256', typ: 'at+jwt', kid: randomBytes(12).toString('base64url') }, accessClaims(op.issuer, op.audience), evil.privateJwk),
    );
    const results = await Promise.allSettled(flood.map((t) => auth.authenticate(t)));
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(100);
    expect(op.requestCount(op.jwksPath)).toBe(2);
  });

  it('JWKS outage fails closed with 401, logs a warning, and backs off', async () => {
    const { auth, logs } = await authFor();
    const token = await op.clientCredentialsToken('machine-agent');
    op.resetCounts();
    op.setOutage({ paths: [op.jwksPath] });
    try {
      await expectRefused(auth.authenticate(token), 'jwks_unavailable');
      const afterFirst = op.requestCount(op.jwksPath);
      expect(afterFirst).toBe(1);
      // Inside the backoff window: refused again without another fetch.
      await expectRefused(auth.authenticate(token), 'jwks_unavailable');
      expect(op.requestCount(op.jwksPath)).toBe(afterFirst);
      expect(logs.text()).toMatch(/"level":"warn".*JWKS fetch failed/);
      expect(logs.text()).not.toContain(token.split('.')[2]);
    } finally {
      op.setOutage(null);
    }
    await sleep(1100); // first backoff step is 1 s
    await expect(auth.authenticate(token)).resolves.toMatchObject({ agent: 'machine-agent' });
  });

  it('discovery outage and a hanging JWKS endpoint also fail closed (timeout)', async () => {
    op.setOutage({ paths: [DISCOVERY] });
    try {
      const { auth } = await authFor();
      await expectRefused(auth.authenticate(await op.clientCredentialsToken('machine-agent')), 'jwks_unavailable');
    } finally {
      op.setOutage(null);
    }
    op.setOutage({ paths: [op.jwksPath], mode: 'hang' });
    try {
      const { auth } = await authFor({ jwks_uri: op.jwksUri }, { fetchTimeoutMs: 300 });
      await expectRefused(auth.authenticate(await op.clientCredentialsToken('machine-agent')), 'jwks_unavailable');
    } finally {
      op.setOutage(null);
    }
  });

  it('falls back to RFC 8414 metadata when OIDC discovery is 404 (issuer with a path)', async () => {
    let issuer = '';
    const idp = await startRecordingServer(undefined, (path) =>
      path === '/.well-known/oauth-authorization-server/tenant-a' ? { status: 200, body: { issuer, jwks_uri: op.jwksUri } } : { status: 404, body: {} },
    );
    issuer = `${idp.url}/tenant-a`;
    try {
      const auth = await createAuthenticator(identityConfig({ issuers: [{ issuer, audience: op.audience }] }), { logger: captureLogs().logger });
      const token = signCompact({ alg: 'RS256', typ: 'at+jwt', kid: op.signingKey().kid }, accessClaims(issuer, op.audience), op.signingKey().privateJwk);
      await expect(auth.authenticate(token)).resolves.toMatchObject({ issuer, user: 'alice' });
      await auth.authenticate(
        signCompact({ alg: 'RS256', typ: 'at+jwt', kid: op.signingKey().kid }, accessClaims(issuer, op.audience, { sub: 'bo' }), op.signingKey().privateJwk),
      );
      expect(idp.hits).toEqual(['GET /tenant-a/.well-known/openid-configuration', 'GET /.well-known/oauth-authorization-server/tenant-a']);
    } finally {
      await idp.stop();
    }
  });

  it('discovery metadata naming another issuer is refused', async () => {
    const trap = await startRecordingServer({ issuer: 'https://someone-else.example', jwks_uri: op.jwksUri });
    try {
      const { auth } = await createAuthenticator(identityConfig({ issuers: [{ issuer: trap.url, audience: op.audience }] }), {
        logger: captureLogs().logger,
      }).then((a) => ({ auth: a }));
      const token = signCompact({ alg: 'RS256', typ: 'at+jwt', kid: op.signingKey().kid }, accessClaims(trap.url, op.audience), op.signingKey().privateJwk);
      await expectRefused(auth.authenticate(token), 'jwks_unavailable');
      expect(trap.hits).toEqual(['GET /.well-known/openid-configuration']);
    } finally {
      await trap.stop();
    }
  });
});

describe('verified-token cache', () => {
  it('a hit does not re-verify (keys stale and JWKS down, cached token still accepted; new token refused)', async () => {
    const { auth } = await authFor({}, { jwksCacheMaxAgeMs: 1 });
    const token = await op.clientCredentialsToken('machine-agent');
    const first = await auth.authenticate(token);
    op.resetCounts();
    op.setOutage({ paths: [op.jwksPath] });
    try {
      await sleep(5);
      const second = await auth.authenticate(token);
      expect(second).toBe(first);
      expect(op.requestCount(op.jwksPath)).toBe(0);
      expect(auth.stats().cacheHits).toBe(1);
      await expectRefused(auth.authenticate(await op.clientCredentialsToken('machine-agent')), 'jwks_unavailable');
    } finally {
      op.setOutage(null);
    }
  });

  it('token_cache_size 0 disables the cache', async () => {
    const { auth } = await authFor({}, {}, { token_cache_size: 0 });
    const token = await op.clientCredentialsToken('machine-agent');
    const a = await auth.authenticate(token);
    const b = await auth.authenticate(token);
    expect(a).not.toBe(b);
    expect(auth.stats()).toMatchObject({ cacheHits: 0, cacheMisses: 2, cacheSize: 0 });
  });
});
