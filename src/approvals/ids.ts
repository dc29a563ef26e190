/**
 * Identifiers and digests for approvals. Ids and review secrets are 128+ random
 * bits (base64url) so they cannot be guessed; the confirmation code is a short,
 * human-comparable view of the request digest.
 */

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh unguessable id: 18 random bytes (144 bits), base64url. */
export function randomId(bytes = 18): string {
  return randomBytes(bytes).toString('base64url');
}

/** The shape of an approval or grant id as the service hands them out (`randomId`); anything else is refused before a store call. */
export const ID_SHAPE = /^[A-Za-z0-9_-]{16,64}$/;

/** Hex HMAC-SHA256. */
export function hmacHex(key: string | Uint8Array, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

/** Constant-time string comparison (false on length mismatch). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

// Crockford-style alphabet without look-alikes (no 0/O, 1/I/L, U) so a code read aloud or typed is unambiguous.
const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A short confirmation code ("K7P-Q2M") derived from the request digest: the
 * approver compares it with what the agent's user interface or CIBA device shows.
 */
export function confirmationCode(digest: string): string {
  const bytes = createHash('sha256').update(`warden-confirmation:${digest}`).digest();
  let code = '';
  for (let i = 0; i < 6; i++) code += CODE_ALPHABET[bytes[i] % CODE_ALPHABET.length];
  return `${code.slice(0, 3)}-${code.slice(3)}`;
}
