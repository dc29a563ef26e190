/**
 * Assertion signing keys: parsed from PEM or JWK with node:crypto (no jose on
 * the signing side: signatures are made synchronously on the request path),
 * checked against their algorithm, and published as public JWKs. In
 * development, without configured keys, one ES256 key is generated and kept in
 * the data dir.
 */

import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { WardenError } from '../../core/errors.js';
import { loadKeyFile } from '../../core/key-file.js';
import type { AssertionKeyConfig } from '../../config/schema.js';

/** Algorithms an assertion may be signed with. */
export type AssertionAlg = 'ES256' | 'EdDSA';

export type KeyStatus = 'active' | 'next' | 'retiring';

/** A public JWK as published in `/.warden/jwks.json`. */
export interface PublicJwk {
  kty: string;
  crv: string;
  x: string;
  y?: string;
  kid: string;
  alg: AssertionAlg;
  use: 'sig';
}

/** A loaded signing key. */
export interface AssertionKey {
  readonly kid: string;
  readonly alg: AssertionAlg;
  readonly status: KeyStatus;
  readonly privateKey: KeyObject;
  readonly publicJwk: Readonly<PublicJwk>;
}

/** File name of the generated development key inside the data dir. */
export const DEV_ASSERTION_KEY_FILE = 'assertion-key.jwk.json';

/** A key that cannot be used; the message says why (and never holds key material). */
export class KeyProblem extends Error {
  constructor(
    message: string,
    /** The config field at fault. */
    readonly field: 'alg' | 'private_key' = 'private_key',
  ) {
    super(message);
  }
}

/**
 * Parse one configured key. Throws an Error whose message says what is wrong
 * (config checks prefix it with the key's YAML path). Never echoes key material.
 */
export function parseAssertionKey(config: Pick<AssertionKeyConfig, 'id' | 'private_key' | 'alg' | 'status'>): AssertionKey {
  if (config.alg !== undefined && /^HS/i.test(config.alg)) {
    throw new KeyProblem(
      `${config.alg} is a shared-secret algorithm: upstreams could forge assertions with the key they verify with; use ES256 or EdDSA`,
      'alg',
    );
  }
  if (config.alg !== undefined && config.alg !== 'ES256' && config.alg !== 'EdDSA') {
    throw new KeyProblem(`alg ${JSON.stringify(config.alg)} is not supported (ES256 or EdDSA)`, 'alg');
  }
  const text = config.private_key.trim();
  let key: KeyObject;
  try {
    if (text.startsWith('{')) {
      let jwk: Record<string, unknown>;
      try {
        jwk = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // V8's JSON errors quote the input: say nothing about it.
        throw new KeyProblem('looks like a JWK but is not valid JSON');
      }
      if (jwk.kty === 'oct') throw new KeyProblem('a symmetric (oct) JWK cannot sign assertions an upstream verifies with a public key');
      if (typeof jwk.d !== 'string') throw new KeyProblem('the JWK has no private part (d)');
      if (typeof jwk.alg === 'string' && /^HS/i.test(jwk.alg)) throw new KeyProblem(`${jwk.alg} is a shared-secret algorithm; use ES256 or EdDSA`);
      key = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    } else if (text.startsWith('-----BEGIN')) {
      if (/-----BEGIN (PUBLIC KEY|CERTIFICATE)/.test(text)) throw new KeyProblem('this is a public key or certificate; the private key is needed');
      if (/ENCRYPTED/.test(text)) throw new KeyProblem('encrypted PEM keys are not supported; decrypt it first');
      key = createPrivateKey({ key: text, format: 'pem' });
    } else {
      throw new KeyProblem('must be a PEM private key or a private JWK (JSON)');
    }
  } catch (err) {
    if (err instanceof KeyProblem) throw err;
    // node:crypto messages name the decoder, never the key bytes.
    throw new KeyProblem(`not a usable private key (${(err as Error).message})`);
  }
  const alg = algorithmOf(key, config.alg as AssertionAlg | undefined);
  return {
    kid: config.id,
    alg,
    status: config.status ?? 'active',
    privateKey: key,
    publicJwk: Object.freeze(publicJwkOf(key, config.id, alg)),
  };
}

/** The algorithm a key signs with; refuses a mismatch with the configured `alg`. */
function algorithmOf(key: KeyObject, configured: AssertionAlg | undefined): AssertionAlg {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== 'prime256v1') throw new KeyProblem(`EC keys must use curve P-256 for ES256 (got ${curve})`);
    if (configured !== undefined && configured !== 'ES256') throw new KeyProblem(`a P-256 key signs ES256, not ${configured}`, 'alg');
    return 'ES256';
  }
  if (type === 'ed25519') {
    if (configured !== undefined && configured !== 'EdDSA') throw new KeyProblem(`an Ed25519 key signs EdDSA, not ${configured}`, 'alg');
    return 'EdDSA';
  }
  throw new KeyProblem(`${type ?? 'this'} keys are not supported: use a P-256 (ES256) or Ed25519 (EdDSA) key`);
}

function publicJwkOf(key: KeyObject, kid: string, alg: AssertionAlg): PublicJwk {
  const jwk = key.export({ format: 'jwk' }) as Record<string, string>;
  if (alg === 'ES256') return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, alg, use: 'sig' };
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg, use: 'sig' };
}

/** RFC 7638 thumbprint of a public key (the kid of the generated development key). */
export function jwkThumbprint(jwk: Pick<PublicJwk, 'kty' | 'crv' | 'x' | 'y'>): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/**
 * The development key: `<dataDir>/assertion-key.jwk.json`, created (0600, the
 * dir 0700) on first use. The file is written fully under a temp name and
 * hard-linked into place, so concurrent starts (cluster workers) agree on one key.
 */
export async function loadDevAssertionKey(dataDir: string): Promise<AssertionKey> {
  const { path, text } = await loadKeyFile(dataDir, DEV_ASSERTION_KEY_FILE, () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' }) as Record<string, string>;
    const kid = jwkThumbprint({ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y });
    return JSON.stringify({ ...jwk, kid, alg: 'ES256', use: 'sig' }, null, 2) + '\n';
  });
  let kid: unknown;
  try {
    kid = (JSON.parse(text) as { kid?: unknown }).kid;
  } catch {
    kid = undefined;
  }
  if (typeof kid !== 'string' || kid.length === 0) {
    throw new WardenError('config_invalid', `${path} is not an assertion key; delete it to create a new one`, { reason: 'assertion_key_invalid' });
  }
  try {
    return parseAssertionKey({ id: kid, private_key: text, status: 'active' });
  } catch (err) {
    throw new WardenError('config_invalid', `${path}: ${(err as Error).message}; delete it to create a new one`, { reason: 'assertion_key_invalid' });
  }
}
