/**
 * `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Core
 * §9): the client signs a short JWT with its own key, published at its
 * `jwks_uri`. Checked: asymmetric algorithm, `iss` = `sub` = client_id, `aud`
 * names Warden's token endpoint or issuer, `exp` present and near, `jti`
 * present and never seen before (replays are refused until the token expires).
 */

import { createRemoteJWKSet, jwtVerify, errors as joseErrors, type JWTVerifyGetKey } from 'jose';

/** Algorithms a client assertion may use (no `none`, no shared-secret HMAC). */
export const CLIENT_ASSERTION_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** Longest assertion lifetime accepted (exp - now), in seconds. */
const MAX_LIFETIME_S = 300;
const CLOCK_SKEW_S = 30;

export interface ClientAssertionVerifier {
  /**
   * Verify `assertion` for `clientId`; resolves to the assertion's `jti` and
   * expiry (ms) or rejects with a reason (never with key material).
   */
  verify(assertion: string, clientId: string): Promise<{ jti: string; expiresAt: number }>;
}

/** Why an assertion was refused (a stable string for logs). */
export class ClientAssertionError extends Error {}

/**
 * A verifier for one client's `jwks_uri`. Keys are fetched with a timeout and
 * cached; an unknown `kid` refetches at most once per cooldown.
 */
export function createClientAssertionVerifier(options: { jwksUri: string; audiences: readonly string[]; timeoutMs: number }): ClientAssertionVerifier {
  const keys: JWTVerifyGetKey = createRemoteJWKSet(new URL(options.jwksUri), {
    timeoutDuration: options.timeoutMs,
    cooldownDuration: 30_000,
    cacheMaxAge: 10 * 60_000,
  });
  return {
    async verify(assertion, clientId) {
      let payload;
      try {
        ({ payload } = await jwtVerify(assertion, keys, {
          algorithms: CLIENT_ASSERTION_ALGORITHMS,
          issuer: clientId,
          subject: clientId,
          audience: [...options.audiences],
          requiredClaims: ['exp', 'jti'],
          clockTolerance: CLOCK_SKEW_S,
        }));
      } catch (err) {
        if (err instanceof joseErrors.JOSEError) throw new ClientAssertionError(`client assertion refused: ${err.code}`);
        throw new ClientAssertionError('client assertion refused');
      }
      const now = Date.now() / 1000;
      if ((payload.exp as number) - now > MAX_LIFETIME_S) throw new ClientAssertionError('client assertion lives too long');
      if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256)
        throw new ClientAssertionError('client assertion jti invalid');
      return { jti: payload.jti, expiresAt: (payload.exp as number) * 1000 };
    },
  };
}
