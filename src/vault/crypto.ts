/**
 * Sealing of vault records: AES-256-GCM with a fresh 96-bit IV per write, the
 * key id and the record's identity as associated data, so a record opened
 * under another identity (swapped between users or providers) or altered in
 * any byte fails instead of yielding plaintext. `vault.keys[0]` seals; every
 * listed key opens, which is how keys rotate.
 *
 * Sealed format (v1): `wv1:<keyId>:<iv>:<ciphertext>:<tag>` (base64url parts).
 * Key ids cannot contain `:` (config schema), so the format splits unambiguously.
 */

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { WardenError } from '../core/errors.js';

const VERSION = 'wv1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_.-]{1,32}$/;

/** One configured vault key (from `vault.keys`). */
export interface VaultKeyConfig {
  id: string;
  /** Base64 (or base64url) of exactly 32 random bytes. */
  key: string;
}

/** Seals and opens vault records. */
export interface VaultCipher {
  /** Id of the key new records are sealed with (the first configured key). */
  readonly currentKeyId: string;
  /** Encrypt `plaintext` bound to `aad` (the record identity) with the current key. */
  seal(plaintext: Buffer | string, aad: string): string;
  /** Decrypt; throws WardenError `internal` (reason `vault_record_invalid`) on any mismatch. */
  open(sealed: string, aad: string): Buffer;
  /** True when `sealed` was not sealed with the current key (a `rekey` candidate). */
  needsRekey(sealed: string): boolean;
}

/** A fresh vault key for `warden keygen`: base64 of 32 random bytes. */
export function generateVaultKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/** Decode a configured key strictly: only canonical base64/base64url of exactly 32 bytes. */
function decodeKey(entry: VaultKeyConfig, index: number): Buffer {
  const where = `vault.keys[${index}] (id ${JSON.stringify(entry.id)})`;
  const text = typeof entry.key === 'string' ? entry.key.trim() : '';
  if (text === '') throw new WardenError('config_invalid', `${where}: key is empty`, { reason: 'vault_key_invalid' });
  const standard = /^[A-Za-z0-9+/]+={0,2}$/.test(text);
  const url = /^[A-Za-z0-9_-]+$/.test(text);
  const bytes = standard ? Buffer.from(text, 'base64') : url ? Buffer.from(text, 'base64url') : null;
  // Buffer.from silently skips junk; re-encoding catches keys that are not really base64.
  const canonical =
    bytes !== null && (standard ? bytes.toString('base64').replace(/=+$/, '') === text.replace(/=+$/, '') : bytes.toString('base64url') === text);
  if (bytes === null || !canonical || bytes.length !== KEY_BYTES) {
    // Never echo the key material, only its id and what is wrong with it.
    throw new WardenError('config_invalid', `${where}: key must be base64 of exactly ${KEY_BYTES} bytes (generate one with \`warden keygen\`)`, {
      reason: 'vault_key_invalid',
    });
  }
  return bytes;
}

function invalidRecord(detail: string, cause?: unknown): WardenError {
  return new WardenError('internal', `vault record cannot be opened: ${detail}`, { reason: 'vault_record_invalid', cause });
}

/** Associated data: the format version, the key id and the caller's record identity. */
function associatedData(keyId: string, aad: string): Buffer {
  return Buffer.from(`${VERSION}\u0000${keyId}\u0000${aad}`, 'utf8');
}

interface Parsed {
  keyId: string;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

function parse(sealed: string): Parsed {
  if (typeof sealed !== 'string') throw invalidRecord('not a string');
  const parts = sealed.split(':');
  if (parts.length !== 5 || parts[0] !== VERSION) throw invalidRecord('unknown format');
  const [, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
  const b64url = /^[A-Za-z0-9_-]*$/;
  if (!KEY_ID.test(keyId) || ![iv, ciphertext, tag].every((p) => b64url.test(p))) throw invalidRecord('malformed');
  const parsed = {
    keyId,
    iv: Buffer.from(iv, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
  };
  if (parsed.iv.length !== IV_BYTES || parsed.tag.length !== TAG_BYTES) throw invalidRecord('malformed');
  return parsed;
}

/**
 * Build the cipher from `vault.keys`. Validates every key at load (32 bytes,
 * unique ids) and throws `config_invalid` naming the offending key id.
 */
export function createVaultCipher(keys: readonly VaultKeyConfig[]): VaultCipher {
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new WardenError('config_invalid', 'vault.keys: at least one key is required to store connections', { reason: 'vault_key_missing' });
  }
  const byId = new Map<string, Buffer>();
  keys.forEach((entry, index) => {
    if (typeof entry?.id !== 'string' || !KEY_ID.test(entry.id)) {
      throw new WardenError('config_invalid', `vault.keys[${index}].id: letters, digits, _ . - only (1-32 chars)`, { reason: 'vault_key_invalid' });
    }
    if (byId.has(entry.id)) {
      throw new WardenError('config_invalid', `vault.keys[${index}]: duplicate key id ${JSON.stringify(entry.id)}`, { reason: 'vault_key_invalid' });
    }
    byId.set(entry.id, decodeKey(entry, index));
  });
  const currentKeyId = keys[0]!.id;
  const currentKey = byId.get(currentKeyId)!;

  return {
    currentKeyId,

    seal(plaintext, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', currentKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(associatedData(currentKeyId, aad));
      const ciphertext = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [VERSION, currentKeyId, iv.toString('base64url'), ciphertext.toString('base64url'), tag.toString('base64url')].join(':');
    },

    open(sealed, aad) {
      const parsed = parse(sealed);
      const key = byId.get(parsed.keyId);
      if (key === undefined) {
        // A record sealed with a key that was removed from vault.keys before rekey finished.
        throw new WardenError('internal', `vault record sealed with unknown key id ${JSON.stringify(parsed.keyId)}`, {
          reason: 'vault_key_unknown',
        });
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, parsed.iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(associatedData(parsed.keyId, aad));
        decipher.setAuthTag(parsed.tag);
        // GCM verifies the tag in final(); nothing decrypted is returned before that.
        return Buffer.concat([decipher.update(parsed.ciphertext), decipher.final()]);
      } catch (err) {
        throw invalidRecord('authentication failed (tampered, swapped or wrong key)', err);
      }
    },

    needsRekey(sealed) {
      return parse(sealed).keyId !== currentKeyId;
    },
  };
}
