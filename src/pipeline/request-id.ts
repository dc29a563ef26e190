/**
 * Request ids: random (version 4) UUIDs, as `crypto.randomUUID()` makes them,
 * from the same CSPRNG, written out in one pass. Node's randomUUID joins 20
 * strings per id (a rope that is flattened again wherever the id is used:
 * the upstream's X-Request-Id, the answer's, the audit line); here the 36
 * characters are written as bytes into one buffer and read out as one flat
 * string. The random bytes come 256 ids at a time (randomUUID batches too).
 */

import { randomFillSync } from 'node:crypto';

const IDS_PER_FILL = 256;
const pool = Buffer.allocUnsafeSlow(16 * IDS_PER_FILL);
let next = pool.length;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const out = Buffer.allocUnsafeSlow(36);

/** A new random UUID (RFC 9562 version 4), lower-case hex, like `crypto.randomUUID()`. */
export function newRequestId(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const at = next;
  next += 16;
  // Version 4 in the high nibble of byte 6, the variant (10xx) in the top bits of byte 8.
  pool[at + 6] = (pool[at + 6] & 0x0f) | 0x40;
  pool[at + 8] = (pool[at + 8] & 0x3f) | 0x80;
  let p = 0;
  for (let i = 0; i < 16; i++) {
    // Dashes after bytes 4, 6, 8 and 10: xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx.
    if (i === 4 || i === 6 || i === 8 || i === 10) out[p++] = 0x2d;
    const b = pool[at + i];
    out[p++] = HEX[b >> 4];
    out[p++] = HEX[b & 15];
  }
  return out.toString('latin1', 0, 36);
}
