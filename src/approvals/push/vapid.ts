/** VAPID keys (RFC 8292): make a pair, and check that a configured pair belongs together. */

import { createECDH } from 'node:crypto';

/** A fresh P-256 key pair, base64url: the public key uncompressed (65 bytes), the private key 32 bytes. */
export function generateVapidKeys(): { publicKey: string; privateKey: string } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const raw = ecdh.getPrivateKey();
  const privateKey = Buffer.alloc(32); // a key with leading zero bytes comes back shorter
  raw.copy(privateKey, 32 - raw.length);
  return { publicKey: ecdh.getPublicKey().toString('base64url'), privateKey: privateKey.toString('base64url') };
}

/** Why the pair is unusable (never the key itself), or null. */
export function vapidKeyIssue(publicKey: string, privateKey: string): string | null {
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(privateKey, 'base64url'));
    if (!ecdh.getPublicKey().equals(Buffer.from(publicKey, 'base64url'))) return 'is not the private key of approvals.push.vapid_public_key';
    return null;
  } catch {
    return 'is not a valid P-256 private key';
  }
}
