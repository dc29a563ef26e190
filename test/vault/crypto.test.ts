/**
 * The vault cipher: AES-256-GCM sealing bound to the record identity, key
 * validation at load, rotation, and refusal of anything tampered or swapped.
 */

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isWardenError, WardenError } from '../../src/core/errors.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';

const k1 = { id: 'k1', key: generateVaultKey() };
const k2 = { id: 'k2', key: generateVaultKey() };

function errorOf(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (err) {
    if (err instanceof WardenError) return err;
    throw new Error(`expected a WardenError, got ${String(err)}`);
  }
  throw new Error('expected an error, got a result');
}

/** Flip one bit of the decoded part `index` (1 = key id … 4 = tag) of a sealed string. */
function flip(sealed: string, index: number, byte = 0): string {
  const parts = sealed.split(':');
  const bytes = Buffer.from(parts[index]!, 'base64url');
  bytes[byte] = bytes[byte]! ^ 0x01;
  parts[index] = bytes.toString('base64url');
  return parts.join(':');
}

describe('generateVaultKey', () => {
  it('returns base64 of 32 random bytes, different each time', () => {
    const a = generateVaultKey();
    const b = generateVaultKey();
    expect(Buffer.from(a, 'base64')).toHaveLength(32);
    expect(a).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(a).not.toBe(b);
  });
});

describe('createVaultCipher: key validation at load', () => {
  it('requires at least one key', () => {
    expect(errorOf(() => createVaultCipher([])).code).toBe('config_invalid');
  });

  it.each([
    ['too short', randomBytes(16).toString('base64')],
    ['too long', randomBytes(33).toString('base64')],
    ['not base64', '!'.repeat(44)],
    ['base64 with junk inside', `${generateVaultKey().slice(0, 20)}*${generateVaultKey().slice(21)}`],
    ['empty', ''],
    ['hex instead of base64', randomBytes(32).toString('hex')],
  ])('refuses a key that is %s, naming the key id but not the key', (_label, key) => {
    const err = errorOf(() => createVaultCipher([k1, { id: 'bad-key', key }]));
    expect(err.code).toBe('config_invalid');
    expect(err.message).toContain('bad-key');
    expect(err.message).toContain('vault.keys[1]');
    if (key.length > 4) expect(err.message).not.toContain(key);
  });

  it('accepts base64url keys', () => {
    const key = randomBytes(32).toString('base64url');
    const cipher = createVaultCipher([{ id: 'url', key }]);
    expect(cipher.open(cipher.seal('x', 'a'), 'a').toString()).toBe('x');
  });

  it('refuses duplicate key ids', () => {
    const err = errorOf(() => createVaultCipher([k1, { id: 'k1', key: generateVaultKey() }]));
    expect(err.code).toBe('config_invalid');
    expect(err.message).toContain('duplicate key id "k1"');
  });

  it('refuses key ids that would break the sealed format', () => {
    expect(errorOf(() => createVaultCipher([{ id: 'a:b', key: generateVaultKey() }])).code).toBe('config_invalid');
  });
});

describe('seal / open', () => {
  const cipher = createVaultCipher([k1]);
  const aad = 'vault:conn:alice:github';

  it('round-trips strings and buffers, and the first key seals', () => {
    const sealed = cipher.seal('gho_secret-token', aad);
    expect(sealed.startsWith('wv1:k1:')).toBe(true);
    expect(sealed).not.toContain('gho_secret-token');
    expect(cipher.open(sealed, aad).toString()).toBe('gho_secret-token');
    const binary = randomBytes(100);
    expect(cipher.open(cipher.seal(binary, aad), aad).equals(binary)).toBe(true);
    expect(cipher.currentKeyId).toBe('k1');
  });

  it('uses a fresh 96-bit IV per write', () => {
    const ivs = new Set(Array.from({ length: 200 }, () => cipher.seal('same', aad).split(':')[2]));
    expect(ivs.size).toBe(200);
    expect(Buffer.from([...ivs][0]!, 'base64url')).toHaveLength(12);
  });

  it.each([
    ['the ciphertext', 3],
    ['the IV', 2],
    ['the tag', 4],
  ])('a flipped bit in %s is an error, never plaintext', (_label, index) => {
    const sealed = cipher.seal('{"accessToken":"secret"}', aad);
    const err = errorOf(() => cipher.open(flip(sealed, index), aad));
    expect(err.code).toBe('internal');
    expect(err.reason).toBe('vault_record_invalid');
  });

  it('a record opened under another identity (user or provider swapped) is an error', () => {
    const sealed = cipher.seal('secret', 'vault:conn:alice:github');
    for (const other of ['vault:conn:bob:github', 'vault:conn:alice:gitlab', '']) {
      const err = errorOf(() => cipher.open(sealed, other));
      expect(err.reason).toBe('vault_record_invalid');
    }
  });

  it('the key id is authenticated: relabelling a record to another key fails', () => {
    const both = createVaultCipher([k1, k2]);
    const sealed = both.seal('secret', aad);
    const relabelled = sealed.replace(/^wv1:k1:/, 'wv1:k2:');
    expect(errorOf(() => both.open(relabelled, aad)).reason).toBe('vault_record_invalid');
  });

  it.each([
    ['empty string', ''],
    ['unknown version', 'wv9:k1:AAAAAAAAAAAAAAAA:AA:AAAAAAAAAAAAAAAAAAAAAA'],
    ['too few parts', 'wv1:k1:abc'],
    ['short tag', 'wv1:k1:AAAAAAAAAAAAAAAA:AA:AAAA'],
    ['not base64url', 'wv1:k1:AAAAAAAAAAAAAAAA:A+A:AAAAAAAAAAAAAAAAAAAAAA'],
    ['truncated', ''],
  ])('malformed input (%s) is an error', (_label, input) => {
    const sealedPrefix = _label === 'truncated' ? cipher.seal('secret', aad).slice(0, -3) : input;
    expect(errorOf(() => cipher.open(sealedPrefix, aad)).reason).toBe('vault_record_invalid');
  });

  it('a record sealed with a key that is no longer configured names the key id', () => {
    const old = createVaultCipher([k2]).seal('secret', aad);
    const err = errorOf(() => cipher.open(old, aad));
    expect(err.code).toBe('internal');
    expect(err.reason).toBe('vault_key_unknown');
    expect(err.message).toContain('k2');
  });
});

describe('rotation', () => {
  it('a record sealed with the old key opens after a new first key is added; new writes use the new key', () => {
    const aad = 'vault:conn:alice:github';
    const before = createVaultCipher([k1]);
    const old = before.seal('old-secret', aad);
    const after = createVaultCipher([k2, k1]);
    expect(after.open(old, aad).toString()).toBe('old-secret');
    expect(after.needsRekey(old)).toBe(true);
    const fresh = after.seal('new-secret', aad);
    expect(fresh.startsWith('wv1:k2:')).toBe(true);
    expect(after.needsRekey(fresh)).toBe(false);
    // The old cipher cannot open what the new key sealed.
    expect(
      isWardenError(
        (() => {
          try {
            before.open(fresh, aad);
          } catch (e) {
            return e;
          }
        })(),
        'internal',
      ),
    ).toBe(true);
  });

  it('needsRekey refuses malformed input instead of guessing', () => {
    expect(errorOf(() => createVaultCipher([k1]).needsRekey('garbage')).reason).toBe('vault_record_invalid');
  });
});
