/**
 * The decision log's line format and hash chain (shared by the writer and
 * `warden audit verify`).
 *
 * A line is one JSON object, `{"t":…,"instance":…,"seq":…,"prev":…, …fields…,"hash":"<hex>"}`:
 * `hash` is the SHA-256 of the line up to (not including) `,"hash":`, and
 * `prev` is the `hash` of the previous line of the same instance (64 zeros for
 * seq 0). So an edited byte breaks that line's own hash, a deleted, inserted or
 * moved line breaks `seq`/`prev`, and a signed checkpoint (every N records or T
 * seconds) pins the chain head to a key the writer holds: rewriting the whole
 * chain needs that key.
 *
 * Chains are linked: a chain's first line (seq 0) is a signed `genesis` record
 * naming where the previous chain of the same writer ended (`after`: its
 * instance, last seq and hash; null when the writer knows none), so a whole
 * chain removed from between two others, or spliced in, breaks verification.
 * Logs written before genesis records existed start with a decision instead.
 */

import { createHash, createPrivateKey, createPublicKey, hash as oneShotHash, sign, verify, type KeyObject } from 'node:crypto';

export const ZERO_HASH = '0'.repeat(64);
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/** Bytes a checkpoint signature covers. */
export function checkpointPayload(instance: string, seq: number, head: string): Buffer {
  return Buffer.from(`warden-decision-log checkpoint\n${instance}\n${seq}\n${head}`);
}

/** Where a chain ended, as the next chain's genesis record names it (`after`). */
export interface ChainEnd {
  readonly instance: string;
  readonly seq: number;
  readonly hash: string;
}

/**
 * Bytes a genesis signature covers: the new chain and the end of the one it
 * continues (JSON, so no instance id can be read as another field).
 */
export function genesisPayload(instance: string, after: ChainEnd | null): Buffer {
  return Buffer.from(`warden-decision-log genesis\n${JSON.stringify([instance, after && [after.instance, after.seq, after.hash]])}`);
}

/** Appends records of one instance: numbers them, links them and hashes them (`line`; the writer lays out the same bytes in line-batch.ts). */
export class Chain {
  seq = 0;
  prev = ZERO_HASH;
  private readonly head: string;

  constructor(readonly instance: string) {
    this.head = `,"instance":${JSON.stringify(instance)},"seq":`;
  }

  /** One line for `body` (a JSON object text, `{…}`), type `t`; no newline. */
  line(t: string, body: string): string {
    const prefix = `{"t":"${t}"${this.head}${this.seq},"prev":"${this.prev}"${body.length > 2 ? ',' + body.slice(1, -1) : ''}`;
    const hash = sha256Hex(prefix);
    this.seq++;
    this.prev = hash;
    return `${prefix},"hash":"${hash}"}`;
  }
}

/** A checkpoint signer: ES256 or EdDSA key with the kid verifiers find it by. */
export interface CheckpointKey {
  readonly kid: string;
  readonly alg: 'ES256' | 'EdDSA';
  readonly privateKey: KeyObject;
}

export function signCheckpoint(key: CheckpointKey, instance: string, seq: number, head: string): string {
  return signPayload(key, checkpointPayload(instance, seq, head));
}

/** The body of a chain's genesis record (its seq 0), signed: the chain's start and its link to the previous chain. */
export function genesisBody(key: CheckpointKey, instance: string, after: ChainEnd | null): string {
  const sig = signPayload(key, genesisPayload(instance, after));
  const link = after && { instance: after.instance, seq: after.seq, hash: after.hash };
  return `{"time":"${new Date().toISOString()}","after":${JSON.stringify(link)},"kid":${JSON.stringify(key.kid)},"alg":"${key.alg}","sig":"${sig}"}`;
}

function signPayload(key: CheckpointKey, data: Buffer): string {
  const sig = key.alg === 'ES256' ? sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }) : sign(null, data, key.privateKey);
  return sig.toString('base64url');
}

export function verifyCheckpoint(jwk: Record<string, unknown>, instance: string, seq: number, head: string, sig: string): boolean {
  return verifyPayload(jwk, checkpointPayload(instance, seq, head), sig);
}

export function verifyGenesis(jwk: Record<string, unknown>, instance: string, after: ChainEnd | null, sig: string): boolean {
  return verifyPayload(jwk, genesisPayload(instance, after), sig);
}

function verifyPayload(jwk: Record<string, unknown>, data: Buffer, sig: string): boolean {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as never, format: 'jwk' });
  } catch {
    return false;
  }
  const bytes = Buffer.from(sig, 'base64url');
  try {
    if (jwk.kty === 'EC') return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, bytes);
    if (jwk.kty === 'OKP') return verify(null, data, key, bytes);
  } catch {
    return false;
  }
  return false;
}

/** Split a line into the hashed prefix and its claimed hash; null when it has no hash suffix. */
export function splitLine(line: string): { prefix: string; hash: string } | null {
  const m = HASH_SUFFIX.exec(line);
  if (!m) return null;
  return { prefix: line.slice(0, m.index), hash: m[1] };
}

/** SHA-256 of a string's UTF-8, hex. The one-shot `crypto.hash` (Node ≥ 20.12) skips the Hash object: ~30% less per record. */
export const sha256Hex: (text: string) => string =
  typeof oneShotHash === 'function' ? (text) => oneShotHash('sha256', text, 'hex') : (text) => createHash('sha256').update(text).digest('hex');

export { createPrivateKey };
