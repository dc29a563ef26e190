/**
 * No token reaches a log line or an error the client sees: run accepted and
 * refused tokens (including JWKS and discovery outages) through an
 * authenticator with a capturing logger, log every refusal the way the gateway
 * does, and grep the captured output for any piece of any token.
 */

import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAuthenticator } from '../../src/identity/verifier.js';
import { WardenError } from '../../src/core/errors.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { accessClaims, attackerKey, b64, nowSec, signCompact } from './forge.js';
import { identityConfig } from './helpers.js';
import { captureLogs } from '../support/logs.js';

let op: OidcTestProvider;
beforeAll(async () => {
  op = await startOidcProvider({ audience: 'http://127.0.0.1:8080' });
});
afterAll(async () => {
  await op?.stop();
});

/** Pieces of a token that must never appear: each segment, and 16-char windows of the signature. */
function fragments(token: string): string[] {
  const parts = token.split('.').filter((p) => p.length >= 16);
  const out = [...parts];
  const sig = token.split('.')[2] ?? '';
  for (let i = 0; i + 16 <= sig.length; i += 16) out.push(sig.slice(i, i + 16));
  return out;
}

it('logs and errors carry no token material', async () => {
  const cap = captureLogs('trace');
  const key = op.signingKey();
  const evil = attackerKey();
  const real = (claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) =>
    signCompact({ alg: 'RS256', typ: 'at+jwt', kid: key.kid, ...header }, accessClaims(op.issuer, op.audience, claims), key.privateJwk);

  const good = await op.clientCredentialsToken('machine-agent', 'read');
  const user = await op.userAccessToken({ accountId: 'bob', scope: 'read' });
  const refusedTokens = [
    `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(accessClaims(op.issuer, op.audience))}.`,
    signCompact({ alg: 'RS256', typ: 'at+jwt', kid: 'unknown-kid-value' }, accessClaims(op.issuer, op.audience), evil.privateJwk),
    signCompact({ alg: 'RS256', typ: 'at+jwt', jku: 'http://127.0.0.1:1/x' }, accessClaims(op.issuer, op.audience), evil.privateJwk),
    real({ exp: nowSec() - 3600 }),
    real({ aud: 'https://other.example' }),
    real({ iss: 'https://evil.example' }),
    real({}, { typ: 'JWT' }),
    real({}, { crit: ['x'] }),
    user.id_token!,
    real({ pad: 'p'.repeat(9000) }),
    'not-a-token-at-all-but-long-enough-to-matter',
  ];

  const auth = await createAuthenticator(identityConfig({ issuers: [{ issuer: op.issuer, audience: op.audience }] }), { logger: cap.logger });
  const seen: WardenError[] = [];
  const attempt = async (token: string) => {
    try {
      await auth.authenticate(token);
    } catch (err) {
      expect(err).toBeInstanceOf(WardenError);
      seen.push(err as WardenError);
      // What the gateway's audit/problem path does with a refusal.
      cap.logger.warn({ err, reason: (err as WardenError).reason, headers: (err as WardenError).headers }, (err as WardenError).message);
    }
  };

  await attempt(good);
  await attempt(user.access_token);
  for (const t of refusedTokens) await attempt(t);

  // Outages: JWKS down (fresh authenticator), discovery down.
  op.setOutage({ paths: [op.jwksPath, '/.well-known/openid-configuration'] });
  try {
    for (const cfg of [{ jwks_uri: op.jwksUri }, {}]) {
      const down = await createAuthenticator(identityConfig({ issuers: [{ issuer: op.issuer, audience: op.audience, ...cfg }] }), { logger: cap.logger });
      try {
        await down.authenticate(good);
      } catch (err) {
        seen.push(err as WardenError);
        cap.logger.warn({ err }, (err as Error).message);
      }
    }
  } finally {
    op.setOutage(null);
  }

  expect(seen.length).toBe(refusedTokens.length + 2);
  const text = cap.text();
  // The outage warnings really were captured (the grep below is not vacuous).
  expect(text).toMatch(/JWKS fetch failed/);
  expect(text).toMatch(/OIDC discovery failed/);
  expect(cap.lines.length).toBeGreaterThan(refusedTokens.length);

  const secrets = [good, user.access_token, user.id_token!, user.refresh_token ?? '', ...refusedTokens].filter(Boolean);
  for (const token of secrets) {
    for (const piece of fragments(token)) {
      expect(text).not.toContain(piece);
      for (const err of seen) {
        expect(err.message).not.toContain(piece);
        expect(JSON.stringify(err.headers)).not.toContain(piece);
      }
    }
  }
});
