/**
 * A push service and a browser's half of Web Push, for tests, written from the
 * specs with node:crypto:
 *
 * - `newBrowserKeys()`: what a browser makes when it subscribes (RFC 8291 §2):
 *   a P-256 ECDH key pair (`p256dh`, the uncompressed public point) and a
 *   16-byte authentication secret (`auth`).
 * - `decryptPush()`: RFC 8188 aes128gcm content coding with the RFC 8291 key
 *   derivation, as the browser decrypts a message.
 * - `verifyVapid()`: the RFC 8292 `Authorization: vapid t=<JWT>, k=<key>`
 *   header — the JWT (ES256) must verify with `k`, `aud` must be the push
 *   resource's origin, `exp` at most 24 h ahead, `sub` present.
 * - `startPushService()`: a real HTTP server on loopback that records every
 *   message (RFC 8030 §5) and answers 201, or what the test says per path.
 */

import { createECDH, createDecipheriv, createHmac, randomBytes, type ECDH } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, jwtVerify, type JWTPayload } from 'jose';

export interface BrowserKeys {
  ecdh: ECDH;
  /** base64url uncompressed P-256 public key (65 bytes) */
  p256dh: string;
  /** base64url 16-byte authentication secret */
  auth: string;
}

export function newBrowserKeys(): BrowserKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
}

const hmac = (key: Buffer, data: Buffer) => createHmac('sha256', key).update(data).digest();

/** RFC 8291 §3.4 + RFC 8188 §2: decrypt an aes128gcm body for the browser holding `keys`. */
export function decryptPush(body: Buffer, keys: BrowserKeys): Buffer {
  // RFC 8188 §2.1 header: salt (16) | rs (uint32) | idlen (1) | keyid (idlen) — for Web Push the keyid is the sender's public key.
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  if (idlen !== 65 || asPublic[0] !== 0x04) throw new Error(`keyid is not an uncompressed P-256 point (idlen ${idlen})`);
  if (rs < 18) throw new Error('record size too small');
  const uaPublic = keys.ecdh.getPublicKey();
  const ecdhSecret = keys.ecdh.computeSecret(asPublic);
  const auth = Buffer.from(keys.auth, 'base64url');
  // §3.3/3.4: PRK_key = HMAC(auth, ecdh); IKM = HKDF-Expand(PRK_key, "WebPush: info" 0x00 ua_public as_public, 32)
  const prkKey = hmac(auth, ecdhSecret);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0', 'latin1'), uaPublic, asPublic]);
  const ikm = hmac(prkKey, Buffer.concat([keyInfo, Buffer.from([1])]));
  // RFC 8188 §2.2/2.3: PRK = HMAC(salt, IKM); CEK = first 16 of HMAC(PRK, "Content-Encoding: aes128gcm" 0x00 0x01); NONCE = first 12 of … "nonce"
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from('Content-Encoding: aes128gcm\0\x01', 'latin1')).subarray(0, 16);
  const baseNonce = hmac(prk, Buffer.from('Content-Encoding: nonce\0\x01', 'latin1')).subarray(0, 12);
  const records = body.subarray(21 + idlen);
  const out: Buffer[] = [];
  for (let seq = 0, at = 0; at < records.length; seq++, at += rs) {
    const record = records.subarray(at, Math.min(at + rs, records.length));
    const nonce = Buffer.from(baseNonce);
    // The record sequence number is XORed into the nonce's low-order bytes (§2.3); fewer than 2^32 records here.
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ seq) >>> 0, 8);
    const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    // §2: data, then a delimiter (0x02 in the last record, 0x01 before), then zero padding.
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--;
    const last = at + rs >= records.length;
    if (end < 0 || plain[end] !== (last ? 2 : 1)) throw new Error(`bad padding delimiter in record ${seq}`);
    out.push(plain.subarray(0, end));
  }
  return Buffer.concat(out);
}

/** RFC 8292 §2–3: check the VAPID header for a push to `pushOrigin`; returns the JWT claims and the key `k`. */
export async function verifyVapid(authorization: string, pushOrigin: string): Promise<{ claims: JWTPayload; k: string }> {
  const m = /^vapid\s+(.+)$/i.exec(authorization);
  if (!m) throw new Error(`not a vapid Authorization header: ${authorization.slice(0, 20)}`);
  const params = Object.fromEntries(m[1]!.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const { t, k } = params;
  if (!t || !k) throw new Error('vapid header lacks t or k');
  const point = Buffer.from(k, 'base64url');
  if (point.length !== 65 || point[0] !== 4) throw new Error('k is not an uncompressed P-256 point');
  const key = await importJWK(
    { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    'ES256',
  );
  const { payload, protectedHeader } = await jwtVerify(t, key, { algorithms: ['ES256'], audience: pushOrigin });
  if (protectedHeader.typ !== undefined && protectedHeader.typ.toUpperCase() !== 'JWT') throw new Error(`unexpected typ ${protectedHeader.typ}`);
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.exp !== 'number' || payload.exp <= now || payload.exp > now + 24 * 3600 + 60) throw new Error(`exp out of range: ${payload.exp}`);
  if (typeof payload.sub !== 'string' || !/^(mailto:|https:)/.test(payload.sub)) throw new Error(`sub missing or not mailto:/https: (${payload.sub})`);
  return { claims: payload, k };
}

export interface PushMessage {
  path: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface PushService {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly messages: PushMessage[];
  /** What to answer on `path` (default 201); `hang` never answers. */
  answer(path: string, how: number | 'hang'): void;
  /** A subscription endpoint on this service. */
  endpoint(name: string): string;
  close(): Promise<void>;
}

export async function startPushService(): Promise<PushService> {
  const messages: PushMessage[] = [];
  const answers = new Map<string, number | 'hang'>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      messages.push({ path, headers: req.headers, body: Buffer.concat(chunks) });
      const how = answers.get(path) ?? 201;
      if (how === 'hang') return;
      res.writeHead(how, how === 201 ? { Location: `${path}/m/${messages.length}` } : {}).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    messages,
    answer: (path, how) => void answers.set(path, how),
    endpoint: (name) => `${origin}/push/${name}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
