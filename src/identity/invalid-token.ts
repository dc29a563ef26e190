/**
 * The one way identity refuses a token: `unauthenticated` (401) with an RFC 6750
 * `WWW-Authenticate: Bearer error="invalid_token"` challenge. The description is
 * fixed text chosen by Warden, never derived from the token.
 */

import { WardenError } from '../core/errors.js';

/** Why a token was refused; also the audit `reason` (prefixed `token_`). */
export type InvalidTokenReason =
  | 'too_large'
  | 'malformed'
  | 'jwe'
  | 'json_serialization'
  | 'alg_none'
  | 'alg_not_allowed'
  | 'key_in_header'
  | 'crit'
  | 'unknown_issuer'
  | 'typ'
  | 'id_token'
  | 'unknown_key'
  | 'bad_signature'
  /** A dev-issuer token signed by another dev key (another data dir, or a deleted key file). */
  | 'dev_key_mismatch'
  | 'expired'
  | 'not_yet_valid'
  | 'iat_in_future'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'missing_claim'
  | 'no_agent'
  | 'bad_claim'
  | 'jwks_unavailable';

/** Build the 401 for a refused token. `description` must be constant text (no token data). */
export function invalidToken(reason: InvalidTokenReason, description: string, cause?: unknown): WardenError {
  // Quotes and backslashes would break the quoted-string of the challenge header.
  const safe = description.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, ' ');
  return new WardenError('unauthenticated', safe, {
    reason: `token_${reason}`,
    cause,
    headers: { 'WWW-Authenticate': `Bearer error="invalid_token", error_description="${safe}"` },
  });
}
