/**
 * The hooked exchange's head parsing (parseHookedHeaders) gives the object
 * undici's own parseHeaders gives, value strings reused or not: random heads
 * with repeated names, mixed case, names of Object.prototype members, and
 * values that change between answers at the same position.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { downstreamHeaders, hookedDownstream, parseHookedHeaders } from './headers.js';
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

describe('hookedDownstream (the hooked head in one pass)', () => {
  const hiddenSets = fc.constantFrom<ReadonlySet<string> | undefined>(undefined, new Set(['x-a']), new Set(['content-type', 'date']));
  const connection = fc.constantFrom('keep-alive', 'Keep-Alive', 'close', 'x-a', 'keep-alive, server', '');
  const line = fc.oneof(
    { weight: 5, arbitrary: fc.tuple(name, value) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Connection', 'connection', 'Keep-Alive', 'Transfer-Encoding'), connection) },
    // Fields a Connection line may name (`Connection: close` names one called close).
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('close', 'Close', 'x-a'), value) },
  );

  it('is downstreamHeaders(parseHookedHeaders()) when it answers, and drops exactly the other lines', () => {
    let answered = 0;
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), hiddenSets, (pairs, hidden) => {
        const dropped: string[] = [];
        const got = hookedDownstream(raw(pairs), hidden, dropped);
        const parsed = parseHookedHeaders(raw(pairs));
        if (got === undefined) {
          // Only for what the one pass leaves to the two-step path.
          const tokens = pairs.some(([n, v]) => n.toLowerCase() === 'connection' && v !== 'keep-alive' && v !== 'Keep-Alive');
          const protoName = pairs.some(([n]) => n.toLowerCase() in Object.prototype);
          expect(tokens || protoName).toBe(true);
          return;
        }
        answered++;
        const want = downstreamHeaders(parsed, hidden);
        expect(got).toEqual(want);
        expect(Object.keys(got)).toEqual(Object.keys(want));
        // Every line is kept or dropped, in order, and a dropped line's name is one the agent does not get.
        const kept = pairs.filter(([n]) => Object.hasOwn(want, n.toLowerCase()));
        const left = pairs.filter(([n]) => !Object.hasOwn(want, n.toLowerCase())).flatMap(([n, v]) => [n.toLowerCase(), v]);
        expect(kept.length + left.length / 2).toBe(pairs.length);
        expect(dropped).toEqual(left);
      }),
      { numRuns: 3000 },
    );
    expect(answered).toBeGreaterThan(1000);
  });

  it("keeps nginx's head but its Connection line, which stays readable as a dropped line", () => {
    const dropped: string[] = [];
    const got = hookedDownstream(
      raw([
        ['Server', 'nginx'],
        ['Content-Type', 'application/json'],
        ['Content-Length', '10'],
        ['Connection', 'keep-alive'],
        ['Set-Cookie', 'a=b'],
      ]),
      undefined,
      dropped,
    );
    expect(got).toEqual({ server: 'nginx', 'content-type': 'application/json', 'content-length': '10' });
    expect(dropped).toEqual(['connection', 'keep-alive', 'set-cookie', 'a=b']);
  });

  it('leaves a Connection line naming other fields to the two-step path (they are dropped after the fact)', () => {
    expect(
      hookedDownstream(
        raw([
          ['Server', 'nginx'],
          ['Connection', 'server'],
        ]),
        undefined,
        [],
      ),
    ).toBeUndefined();
  });
});
