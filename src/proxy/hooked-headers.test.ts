/**
 * The hooked exchange's head parsing (parseHookedHeaders) gives the object
 * undici's own parseHeaders gives, value strings reused or not: random heads
 * with repeated names, mixed case, names of Object.prototype members, and
 * values that change between answers at the same position.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseHookedHeaders } from './headers.js';
import { util } from './undici-pool.js';

const name = fc.constantFrom(
  'Content-Type',
  'content-type',
  'Server',
  'X-A',
  'x-a',
  'Set-Cookie',
  'constructor',
  '__proto__',
  'toString',
  'Mcp-Session-Id',
  'Date',
);
const value = fc.oneof(
  fc.constantFrom('application/json', 'nginx', '', 'a', 'b'),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 140 }),
);

function raw(pairs: Array<[string, string]>): Buffer[] {
  return pairs.flatMap(([n, v]) => [Buffer.from(n, 'latin1'), Buffer.from(v, 'latin1')]);
}

describe('parseHookedHeaders', () => {
  it("is undici's parseHeaders, answer after answer", () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.tuple(name, value), { maxLength: 12 }), { minLength: 1, maxLength: 4 }), (heads) => {
        for (const pairs of heads) {
          const got = parseHookedHeaders(raw(pairs));
          const want = util.parseHeaders(raw(pairs));
          expect(got).toEqual(want);
          expect(Object.keys(got)).toEqual(Object.keys(want));
          for (const k of Object.keys(want)) expect(Object.hasOwn(got, k)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('reads a value that changed at its position as the new bytes', () => {
    const first = parseHookedHeaders(raw([['Content-Length', '1010']]));
    const second = parseHookedHeaders(raw([['Content-Length', '1011']]));
    expect([first['content-length'], second['content-length']]).toEqual(['1010', '1011']);
  });
});
