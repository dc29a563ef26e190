/**
 * The hooked exchange's head parsing (parseHookedHeaders) gives the object
 * undici's own parseHeaders gives, value strings reused or not: random heads
 * with repeated names, mixed case, names of Object.prototype members, and
 * values that change between answers at the same position. Its one-pass flat
 * list (hookedFields) keeps and drops what the two-step path does, and the
 * object built from it (fieldsObject, fieldOf) is the one that path builds.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { downstreamHeaders, fieldOf, fieldsObject, hookedFields, parseHookedHeaders } from './headers.js';
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

describe('hookedFields (the hooked head in one pass, as a flat list)', () => {
  const hiddenSets = fc.constantFrom<ReadonlySet<string> | undefined>(undefined, new Set(['x-a']), new Set(['content-type', 'date']));
  const connection = fc.constantFrom('keep-alive', 'Keep-Alive', 'close', 'x-a', 'keep-alive, server', '');
  const line = fc.oneof(
    { weight: 5, arbitrary: fc.tuple(name, value) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('Connection', 'connection', 'Keep-Alive', 'Transfer-Encoding'), connection) },
    // Fields a Connection line may name (`Connection: close` names one called close).
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('close', 'Close', 'x-a'), value) },
  );

  it('keeps and drops what downstreamHeaders(parseHookedHeaders()) does, in order, when it answers', () => {
    let answered = 0;
    let withProto = 0;
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), hiddenSets, (pairs, hidden) => {
        const kept: string[] = [];
        const dropped: string[] = [];
        if (!hookedFields(raw(pairs), hidden, kept, dropped)) {
          // Only for what the one pass leaves to the two-step path: a Connection line naming other fields.
          expect(pairs.some(([n, v]) => n.toLowerCase() === 'connection' && v !== 'keep-alive' && v !== 'Keep-Alive')).toBe(true);
          return;
        }
        answered++;
        const got = fieldsObject(kept);
        // The object has exactly undici's reading of the kept lines (own properties, Object.prototype's names included).
        const keptNames = new Set(kept.filter((_, i) => i % 2 === 0));
        const keptRaw = raw(pairs.filter(([n]) => keptNames.has(n.toLowerCase())));
        expect(got).toEqual(parseHookedHeaders(keptRaw));
        expect(Object.keys(got)).toEqual(Object.keys(parseHookedHeaders(keptRaw)));
        for (const k of Object.keys(got)) expect(fieldOf(kept, k)).toEqual(got[k]);
        expect(fieldOf(kept, 'x-never-sent')).toBeUndefined();
        // The two-step path's object, where it can hold every name (it assigns, so `__proto__` is lost there).
        if (pairs.some(([n]) => n.toLowerCase() === '__proto__')) withProto++;
        else {
          const want = downstreamHeaders(parseHookedHeaders(raw(pairs)), hidden);
          expect(got).toEqual(want);
          expect(Object.keys(got)).toEqual(Object.keys(want));
        }
        // Every line is kept or dropped, in order, lower-cased; a dropped line's name is one the agent does not get.
        const all = pairs.map(([n, v]) => [n.toLowerCase(), v] as const);
        expect(kept).toEqual(all.filter(([n]) => Object.hasOwn(got, n)).flat());
        expect(dropped).toEqual(all.filter(([n]) => !Object.hasOwn(got, n)).flat());
      }),
      { numRuns: 3000 },
    );
    expect(answered).toBeGreaterThan(1000);
    expect(withProto).toBeGreaterThan(50);
  });

  it("keeps nginx's head but its Connection line, which stays readable as a dropped line", () => {
    const kept: string[] = [];
    const dropped: string[] = [];
    const answered = hookedFields(
      raw([
        ['Server', 'nginx'],
        ['Content-Type', 'application/json'],
        ['Content-Length', '10'],
        ['Connection', 'keep-alive'],
        ['Set-Cookie', 'a=b'],
      ]),
      undefined,
      kept,
      dropped,
    );
    expect(answered).toBe(true);
    expect(kept).toEqual(['server', 'nginx', 'content-type', 'application/json', 'content-length', '10']);
    expect(fieldsObject(kept)).toEqual({ server: 'nginx', 'content-type': 'application/json', 'content-length': '10' });
    expect(dropped).toEqual(['connection', 'keep-alive', 'set-cookie', 'a=b']);
  });

  it('leaves a Connection line naming other fields to the two-step path (they are dropped after the fact)', () => {
    const raws = raw([
      ['Server', 'nginx'],
      ['Connection', 'server'],
    ]);
    expect(hookedFields(raws, undefined, [], [])).toBe(false);
  });

  it('reads a repeated name as all its values, in order', () => {
    const kept = ['x-a', '1', 'server', 'nginx', 'x-a', '2'];
    expect(fieldOf(kept, 'x-a')).toEqual(['1', '2']);
    expect(fieldsObject(kept)).toEqual({ 'x-a': ['1', '2'], server: 'nginx' });
  });
});
