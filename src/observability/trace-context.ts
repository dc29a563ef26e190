/** W3C `traceparent` for upstream requests: keep the caller's trace, start a new span. */

import { randomFillSync } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;

/** A traceparent builder with its own random pool (one per pipeline). */
export function createTraceparent(): (inbound: string | string[] | undefined) => string {
  // Trace and span ids come from a pooled random buffer: one randomFillSync per
  // ~170 requests instead of two randomBytes calls per request.
  const randomPool = Buffer.alloc(4096);
  let randomAt = randomPool.length;
  const randomHex = (bytes: number) => {
    if (randomAt + bytes > randomPool.length) {
      randomFillSync(randomPool);
      randomAt = 0;
    }
    const hex = randomPool.toString('hex', randomAt, randomAt + bytes);
    randomAt += bytes;
    return hex;
  };
  return (inbound) => {
    const span = randomHex(8);
    const m = typeof inbound === 'string' ? TRACEPARENT.exec(inbound) : null;
    if (m && !/^0+$/.test(m[1])) return `00-${m[1]}-${span}-${m[2]}`;
    return `00-${randomHex(16)}-${span}-01`;
  };
}
