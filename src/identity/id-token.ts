/**
 * ID token verification for Warden's own OpenID client roles (CIBA): the
 * signature against the provider's JWKS (from discovery), `iss`, `aud` = our
 * client id, `exp`/`iat`, an asymmetric algorithm, and never an access token
 * (`typ: at+jwt`). A provider's 200 answer alone is not an approval.
 */

import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export interface IdTokenVerifier {
  /** The verified claims; rejects when the token is not a valid ID token of this issuer for this client. */
  verify(idToken: string): Promise<JWTPayload>;
}

/** A verifier for one issuer and client; keys are fetched with `timeoutMs` and cached. */
export function createIdTokenVerifier(options: { issuer: string; clientId: string; jwksUri: string; timeoutMs: number }): IdTokenVerifier {
  const keys = createRemoteJWKSet(new URL(options.jwksUri), { timeoutDuration: options.timeoutMs, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
  return {
    async verify(idToken) {
      const { payload, protectedHeader } = await jwtVerify(idToken, keys, {
        algorithms: ALGORITHMS,
        issuer: [options.issuer, options.issuer.replace(/\/$/, ''), `${options.issuer.replace(/\/$/, '')}/`],
        audience: options.clientId,
        requiredClaims: ['exp', 'iat', 'sub'],
        clockTolerance: 30,
      });
      if (typeof protectedHeader.typ === 'string' && /at\+jwt$/i.test(protectedHeader.typ)) throw new Error('an access token is not an ID token');
      if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== options.clientId) throw new Error('ID token azp is not this client');
      return payload;
    },
  };
}
