/**
 * Cheap structural checks on a bearer token before any key is looked up or
 * fetched (RFC 8725): size, compact serialization only, header parameters that
 * would let the token choose its own key or alter processing. Nothing decoded
 * here is trusted; it only selects the issuer and refuses early.
 */

import { invalidToken } from './invalid-token.js';

/** Default upper bound for a bearer token, in bytes (RFC 9068 tokens are far smaller). */
export const DEFAULT_MAX_TOKEN_BYTES = 8192;

/** Header parameters by which a token names or embeds its own verification key. */
const KEY_HEADERS = ['jku', 'x5u', 'jwk', 'x5c'] as const;

const SEGMENT = /^[A-Za-z0-9_-]*$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The unverified header and claims of a compact JWS. */
export interface UnverifiedJws {
  header: Record<string, unknown> & { alg: string; kid?: string; typ?: string };
  payload: Record<string, unknown>;
}

function decodeJsonObject(segment: string): Record<string, unknown> | null {
  // base64url without padding never has length ≡ 1 (mod 4).
  if (segment.length === 0 || segment.length % 4 === 1 || !SEGMENT.test(segment)) return null;
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(Buffer.from(segment, 'base64url')));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Parse a compact JWS without verifying it, refusing every shape Warden never
 * accepts. Throws `unauthenticated` with a specific reason.
 */
export function parseCompactJws(token: string, maxBytes = DEFAULT_MAX_TOKEN_BYTES): UnverifiedJws {
  if (typeof token !== 'string' || token.length === 0) throw invalidToken('malformed', 'malformed token');
  // Length in UTF-16 units bounds the byte length from below; non-ASCII fails the charset check anyway.
  if (token.length > maxBytes) throw invalidToken('too_large', 'token too large');
  if (token.trimStart().startsWith('{')) throw invalidToken('json_serialization', 'only compact JWS tokens are accepted');

  const parts = token.split('.');
  if (parts.length === 5) throw invalidToken('jwe', 'encrypted tokens are not accepted');
  if (parts.length !== 3) throw invalidToken('malformed', 'malformed token');
  const [h, p, s] = parts;

  const header = decodeJsonObject(h);
  if (header === null) throw invalidToken('malformed', 'malformed token header');

  const alg = header.alg;
  if (typeof alg !== 'string' || alg.length === 0) throw invalidToken('malformed', 'token has no algorithm');
  if (alg.toLowerCase() === 'none') throw invalidToken('alg_none', 'unsigned tokens are not accepted');
  if (/^HS/i.test(alg)) throw invalidToken('alg_not_allowed', 'token algorithm not allowed');
  if ('enc' in header) throw invalidToken('jwe', 'encrypted tokens are not accepted');
  for (const name of KEY_HEADERS) {
    if (name in header) throw invalidToken('key_in_header', 'tokens may not name or embed their key');
  }
  // Warden understands no extension header, so any `crit` names one it does not know.
  if ('crit' in header || 'b64' in header || 'zip' in header) throw invalidToken('crit', 'unsupported critical header');
  if ('kid' in header) {
    const kid = header.kid;
    if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256 || /[\x00-\x1f\x7f]/.test(kid)) {
      throw invalidToken('malformed', 'malformed key id');
    }
  }
  if ('typ' in header && typeof header.typ !== 'string') throw invalidToken('typ', 'token type not accepted');

  if (s.length === 0 || !SEGMENT.test(s)) throw invalidToken('malformed', 'malformed token signature');
  const payload = decodeJsonObject(p);
  if (payload === null) throw invalidToken('malformed', 'malformed token claims');

  return { header: header as UnverifiedJws['header'], payload };
}
