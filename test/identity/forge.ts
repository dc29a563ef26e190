/**
 * Hand-built JWTs for attack tests: any header, any payload, signed with
 * node:crypto so nothing (not even jose's signer) sanitizes what we send.
 */

import { createHmac, createPrivateKey, generateKeyPairSync, randomBytes, sign, type JsonWebKey } from 'node:crypto';

/** base64url of a JSON value (or of raw bytes). */
export function b64(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** Seconds since epoch. */
export const nowSec = (): number => Math.floor(Date.now() / 1000);

const HASH: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

/**
 * Sign `header.payload` with `alg` using a private JWK (RS*, PS*, ES*) or a
 * raw secret (HS*). Returns the compact token.
 */
export function signCompact(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: JsonWebKey | Buffer | string,
  alg = String(header.alg),
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const hash = HASH[alg.slice(2)];
  let sig: Buffer;
  if (alg.startsWith('HS')) {
    sig = createHmac(hash, key as Buffer | string)
      .update(input)
      .digest();
  } else {
    const privateKey = createPrivateKey({ key: key as JsonWebKey, format: 'jwk' });
    if (alg.startsWith('ES')) sig = sign(hash, Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    else if (alg.startsWith('PS'))
      sig = sign(hash, Buffer.from(input), { key: privateKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: Number(alg.slice(2)) / 8 });
    else sig = sign(hash, Buffer.from(input), privateKey);
  }
  return `${input}.${sig.toString('base64url')}`;
}

/** A fresh attacker key pair (RSA 2048 or P-256) as JWKs with a kid. */
export function attackerKey(kind: 'rsa' | 'ec' = 'rsa'): { privateJwk: JsonWebKey; publicJwk: JsonWebKey; kid: string } {
  const pair = kind === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `evil-${randomBytes(4).toString('hex')}`;
  return {
    privateJwk: { ...(pair.privateKey.export({ format: 'jwk' }) as JsonWebKey), kid } as JsonWebKey,
    publicJwk: { ...(pair.publicKey.export({ format: 'jwk' }) as JsonWebKey), kid } as JsonWebKey,
    kid,
  };
}

/** Standard access-token claims for `issuer`/`audience`, overridable. */
export function accessClaims(issuer: string, audience: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = nowSec();
  return {
    iss: issuer,
    aud: audience,
    sub: 'alice',
    client_id: 'forged-agent',
    scope: 'read',
    iat: now,
    exp: now + 600,
    jti: randomBytes(8).toString('hex'),
    ...extra,
  };
}
