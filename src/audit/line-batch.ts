/**
 * The decision log's pending lines as one growing Buffer (off the V8 heap):
 * a record is encoded into it when it is decided, so nothing per request
 * survives a scavenge (strings held for `write_interval` were promoted to the
 * old generation and made every scavenge copy them). Chained lines are laid out
 * with their `prev` (64 hex) and `hash` slots reserved and completed at the
 * flush, where the chain head and each checkpoint's signature become known:
 * the bytes are those of `Chain.line()` (chain.ts), which `warden audit verify`
 * checks.
 */

import { hash as oneShotHash, createHash } from 'node:crypto';
import type { Chain } from './chain.js';

/** Characters of a hex SHA-256 (the `prev` and `hash` slots). */
const HEX = 64;
/** Characters of a checkpoint signature: 64 bytes (Ed25519, or ES256 as r‖s) in base64url without padding. */
export const SIG_CHARS = 86;
/** `,"hash":"` */
const HASH_OPEN = Buffer.from(',"hash":"', 'latin1');
/** `,"hash":"<64>"}\n`: written after a line's hashed bytes at the flush. */
const TAIL = HASH_OPEN.length + HEX + 3;
/** Bytes of a fresh batch buffer (a larger one when a single record needs it). */
export const BATCH_BYTES = 256 * 1024;
/** Per line in `meta`: start, offset of the prev slot, end of the hashed bytes, kind. */
const META = 4;
const DECISION = 0;
const CHECKPOINT = 1;

/** Bytes a record of `chars` UTF-16 units may need: 3 per unit, the chain fields, a checkpoint's signature. */
const room = (chars: number) => chars * 3 + 512 + SIG_CHARS;

const sha256HexBytes: (bytes: Uint8Array) => string =
  typeof oneShotHash === 'function' ? (bytes) => oneShotHash('sha256', bytes, 'hex') : (bytes) => createHash('sha256').update(bytes).digest('hex');

/**
 * Lines waiting for the sink. `add` encodes one record (a JSON object text) at
 * once; `take` completes the chain over the pending lines and hands back their
 * bytes, which the sink keeps until they are written: a buffer at most half full
 * is copied out at its size and reused, a fuller one is handed over whole.
 */
export class LineBatch {
  private buf: Buffer;
  private off = 0;
  /** Lines pending (also the number of entries in `meta`). */
  lines = 0;
  private meta = new Uint32Array(META * 1024);
  private readonly heads = new Map<string, string>();

  /**
   * @param chain numbers and links the lines (undefined: plain `{"t":…,…}` lines, no chain fields)
   * @param sign signs a checkpoint (instance, seq, head) at the flush; its text must be SIG_CHARS long
   */
  constructor(
    private readonly chain: Chain | undefined,
    private readonly sign?: (instance: string, seq: number, head: string) => string,
    private readonly capacity = BATCH_BYTES,
  ) {
    this.buf = Buffer.allocUnsafeSlow(capacity);
  }

  /** Whether a record of `chars` UTF-16 units fits without starting a new batch (`take` first when not). */
  fits(chars: number): boolean {
    return this.off + room(chars) <= this.buf.length;
  }

  /**
   * Append the line for `body` (a JSON object text `{…}`) of type `t`. A
   * checkpoint's body ends with `"sig":"` (no `}`): its signature is written
   * at the flush. Call `take` first when `fits` says no; a record larger than
   * a batch gets a buffer of its own size.
   */
  add(t: string, body: string): void {
    const need = room(body.length);
    if (this.off + need > this.buf.length) {
      if (this.off > 0) throw new Error('LineBatch.add: take() the pending lines first');
      this.buf = Buffer.allocUnsafeSlow(Math.max(this.capacity, need));
    }
    const buf = this.buf;
    const start = this.off;
    const chain = this.chain;
    const members = body.length > 2;
    if (!chain) {
      // `{"t":…` + the body with its `{` turned into `,` (as `{"t":"${t}",${body.slice(1)}`), and a newline.
      let off = start + buf.write(`{"t":"${t}"`, start, 'latin1');
      if (members) {
        const n = buf.write(body, off, 'utf8');
        buf[off] = 0x2c;
        off += n;
      } else buf[off++] = 0x7d;
      buf[off++] = 0x0a;
      this.off = off;
      this.lines++;
      return;
    }
    let off = start + buf.write(`${this.head(t)}${chain.seq},"prev":"`, start, 'latin1');
    const prevAt = off;
    off += HEX;
    buf[off++] = 0x22;
    const kind = t === 'checkpoint' ? CHECKPOINT : DECISION;
    if (members) {
      // `,` + the body's members: the body is written whole, its `{` becomes `,` and its `}` is dropped (a checkpoint's body has none).
      const n = buf.write(body, off, 'utf8');
      buf[off] = 0x2c;
      off += kind === CHECKPOINT ? n : n - 1;
    }
    if (kind === CHECKPOINT) off += SIG_CHARS + 1; // the signature and its closing quote, written at the flush
    chain.seq++;
    if (this.meta.length < (this.lines + 1) * META) {
      const grown = new Uint32Array(this.meta.length * 2);
      grown.set(this.meta);
      this.meta = grown;
    }
    const m = this.lines * META;
    this.meta[m] = start;
    this.meta[m + 1] = prevAt;
    this.meta[m + 2] = off;
    this.meta[m + 3] = kind;
    this.lines++;
    this.off = off + TAIL;
  }

  /**
   * Complete the pending lines (chain: prev, checkpoint signatures, hashes, in
   * order) and hand them over as one chunk of newline-terminated lines; the
   * batch is empty afterwards. Returns undefined when nothing is pending.
   */
  take(): { chunk: Buffer; lines: number } | undefined {
    if (this.lines === 0) return undefined;
    const buf = this.buf;
    const chain = this.chain;
    if (chain) {
      const meta = this.meta;
      // Sequence numbers were given out in `add`: the first pending line's is the chain's seq minus the lines pending.
      let seq = chain.seq - this.lines;
      let prev = chain.prev;
      // Where the previous line's hash is in this batch: a line's prev slot is a copy of those bytes (-1: write the chain head).
      let prevAt = -1;
      for (let i = 0; i < this.lines; i++, seq++) {
        const m = i * META;
        const start = meta[m];
        const end = meta[m + 2];
        if (prevAt < 0) buf.write(prev, meta[m + 1], HEX, 'latin1');
        else buf.copyWithin(meta[m + 1], prevAt, prevAt + HEX);
        if (meta[m + 3] === CHECKPOINT) {
          const sig = this.sign!(chain.instance, seq, prev);
          if (sig.length !== SIG_CHARS) throw new Error(`checkpoint signature of ${sig.length} characters, not ${SIG_CHARS}`);
          buf.write(sig, end - SIG_CHARS - 1, SIG_CHARS, 'latin1');
          buf[end - 1] = 0x22;
        }
        prev = sha256HexBytes(new Uint8Array(buf.buffer, buf.byteOffset + start, end - start));
        for (let k = 0; k < HASH_OPEN.length; k++) buf[end + k] = HASH_OPEN[k];
        prevAt = end + HASH_OPEN.length;
        buf.write(prev, prevAt, HEX, 'latin1');
        buf[end + TAIL - 3] = 0x22; // "
        buf[end + TAIL - 2] = 0x7d; // }
        buf[end + TAIL - 1] = 0x0a; // newline
      }
      chain.prev = prev;
    }
    const lines = this.lines;
    let chunk: Buffer;
    if (this.off <= buf.length >> 1 && buf.length === this.capacity) {
      // A partly filled batch is copied out at its size and the buffer kept for the next one: a queued chunk
      // (a slow disk, an endpoint that is down) holds only its own bytes, and no batch buffer is allocated per flush.
      chunk = Buffer.allocUnsafeSlow(this.off);
      buf.copy(chunk, 0, 0, this.off);
    } else {
      chunk = buf.subarray(0, this.off);
      this.buf = Buffer.allocUnsafeSlow(this.capacity);
    }
    this.off = 0;
    this.lines = 0;
    return { chunk, lines };
  }

  /** `{"t":"<t>","instance":…,"seq":` for a type, built once per type. */
  private head(t: string): string {
    let h = this.heads.get(t);
    if (h === undefined) this.heads.set(t, (h = `{"t":"${t}","instance":${JSON.stringify(this.chain!.instance)},"seq":`));
    return h;
  }
}
