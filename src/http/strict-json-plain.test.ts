/**
 * parseStrictJson's fast path (parsePlain: JSON.parse, then the strict checks
 * on its result) against the general path (parseScanned: the full token scan,
 * then JSON.parse). parsePlain may decline (undefined); when it answers, it
 * must answer what the scan answers, and it must never accept what the scan
 * refuses (duplicate keys above all).
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isOwnSerialization, ownSerializationScan, parsePlain, parseScanned, parseStrictJson, StrictJsonError } from './strict-json.js';

function scanned(text: string): { value: unknown } | { refused: true } {
  try {
    return { value: parseScanned(text) };
  } catch (err) {
    if (err instanceof StrictJsonError) return { refused: true };
    throw err;
  }
}

describe('parsePlain (the strict parse fast path)', () => {
  it('answers for plain bodies, the value JSON.parse reads', () => {
    for (const text of [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"id":"42"}}}',
      ' { "a" : [ 1 , { "b" : null } ] , "c" : { } } ',
      '[{"x":1},{"x":2}]',
      '{"__proto__":{"x":1}}',
      '{"a":{"a":{"a":1}}}',
      '"text"',
      '12',
      '1e-400',
    ])
      expect(parsePlain(text), text).toEqual(JSON.parse(text));
  });

  it.each([
    ['a duplicate key', '{"amount":5000,"to":"mallory","amount":60}'],
    ['a nested duplicate key', '{"a":{"b":1,"b":2}}'],
    ['a duplicate key in an array element', '[{"x":1},{"y":1,"y":2}]'],
    ['a duplicate __proto__', '{"__proto__":1,"__proto__":2}'],
    ['a duplicate index key', '{"1":1,"1":2}'],
    ['a number out of range', '{"amount":1e400}'],
    ['a top-level number out of range', '-1e400'],
    ['a backslash (escapes are the scan’s)', '{"a":"\\u0061"}'],
    ['text JSON.parse refuses', '{"a":1,}'],
    ['deep nesting', '['.repeat(65) + ']'.repeat(65)],
  ])('declines %s (the full scan decides)', (_what, text) => {
    expect(parsePlain(text)).toBeUndefined();
  });

  it('refuses through the scan what it declines: duplicate keys stay refused', () => {
    expect(() => parseStrictJson(Buffer.from('{"a":{"b":1,"b":2}}'))).toThrow(/duplicate key "b"/);
    expect(() => parseStrictJson(Buffer.from('{"amount":1e400}'))).toThrow(/out of range/);
  });

  // Random texts: objects whose keys may repeat (also through an escape), numbers in and out of range, whitespace, nesting.
  const key = fc.constantFrom('"a"', '"b"', '"__proto__"', '"1"', '"tools"', '"\\u0061"', '"a b"', '"é"');
  const leaf = fc.constantFrom('1', '-0', '1e400', '-1e400', '1e-400', '12345678901234567890', '0.5', 'true', 'null', '"x"', '"\\n"', '"a:b"', '"{}"');
  const ws = fc.constantFrom('', '', ' ', '\n\t');
  const tree = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.array(tie('value'), { maxLength: 4 }).map((vs) => `[${vs.join(',')}]`),
      fc.array(fc.tuple(key, ws, tie('value')), { maxLength: 4 }).map((es) => `{${es.map(([k, w, v]) => `${w}${k}${w}:${w}${v}`).join(',')}}`),
    ),
  })).value;
  const deep = fc
    .tuple(fc.integer({ min: 60, max: 70 }), fc.boolean())
    .map(([n, obj]) => (obj ? '{"a":'.repeat(n) + '1' + '}'.repeat(n) : '['.repeat(n) + ']'.repeat(n)));
  const texts = fc.oneof(
    { weight: 6, arbitrary: tree },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'{}[]":,a1 '.split('')), maxLength: 14 }) },
  );

  it('agrees with the full scan on random texts: the same value, never a text the scan refuses', () => {
    let answered = 0;
    fc.assert(
      fc.property(texts, (text) => {
        const quick = parsePlain(text);
        if (quick === undefined) return;
        answered++;
        expect(scanned(text)).toEqual({ value: quick });
      }),
      { numRuns: 5000 },
    );
    // The fast path is taken for a good share of them (else this tests nothing).
    expect(answered).toBeGreaterThan(1000);
  });
});

describe('parseStrictJson on bytes (the ASCII pass: keys counted and own serialization decided on the bytes)', () => {
  // Random texts as above, plus own-serialization material: integer keys, numbers JavaScript prints otherwise, whitespace.
  const key = fc.constantFrom('"a"', '"b"', '"1"', '"01"', '""', '"tools"', '"\\u0061"', '"a b"', '"é"', '"__proto__"');
  const leaf = fc.constantFrom(
    '1',
    '-0',
    '0',
    '10',
    '1.0',
    '1e400',
    '1e21',
    '123456789012345',
    '1234567890123456789',
    '0.5',
    'true',
    'null',
    '"x"',
    '"a:b"',
    '"é"',
  );
  const ws = fc.constantFrom('', '', '', ' ', '\n');
  const tree = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      fc.array(fc.tuple(ws, tie('value')), { maxLength: 4 }).map((vs) => `[${vs.map(([w, v]) => w + v).join(',')}]`),
      fc.array(fc.tuple(key, ws, tie('value')), { maxLength: 4 }).map((es) => `{${es.map(([k, w, v]) => `${k}${w}:${v}`).join(',')}}`),
    ),
  })).value;
  const texts = fc.oneof(
    { weight: 6, arbitrary: tree },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'{}[]":,a1 '.split('')), maxLength: 14 }) },
  );

  it('reads what the full scan reads and refuses what it refuses; its own-serialization answer is the scan’s', () => {
    let owned = 0;
    let checked = 0;
    fc.assert(
      fc.property(texts, (text) => {
        const bytes = Buffer.from(text, 'utf8');
        let got: { value: unknown } | { refused: true };
        try {
          got = { value: parseStrictJson(bytes) };
        } catch (err) {
          if (!(err instanceof StrictJsonError)) throw err;
          got = { refused: true };
        }
        expect(got, text).toEqual(scanned(text));
        if ('refused' in got) return;
        // Asked right after the parse (as the MCP stage asks): the answer found in the parse's pass.
        const own = isOwnSerialization(bytes);
        expect(own, text).toBe(ownSerializationScan(Buffer.from(text, 'utf8')));
        checked++;
        if (own) owned++;
      }),
      { numRuns: 5000 },
    );
    expect(checked).toBeGreaterThan(1500);
    expect(owned).toBeGreaterThan(300);
  });

  it('answers isOwnSerialization for other bytes by its own pass', () => {
    const a = Buffer.from('{"a":1}');
    parseStrictJson(a);
    expect(isOwnSerialization(Buffer.from('{"a": 1}'))).toBe(false);
    expect(isOwnSerialization(a)).toBe(true);
  });
});

describe('isOwnSerialization (forward the body as read, not serialized again)', () => {
  const own = (text: string) => isOwnSerialization(Buffer.from(text, 'utf8'));

  it('is true for what JSON.stringify writes', () => {
    for (const v of [
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { id: '42' } } },
      [{ a: -1.5e-7, b: 1e21, c: 'é 😀 \u2028' }, null, true, false, [], {}],
      { __proto__: null, x01: 0 },
      '',
      [0, -1, 7, 123456789012345, -123456789012345, 9007199254740991, 1000000000000000],
    ])
      expect(own(JSON.stringify(v)), JSON.stringify(v)).toBe(true);
  });

  it.each([
    ['whitespace', '{"a": 1}'],
    ['an escape', '{"a":"\\u0061"}'],
    ['an escaped quote', '{"a":"say \\"hi\\""}'],
    ['a number JavaScript prints otherwise', '{"a":1.0}'],
    ['-0', '[-0]'],
    ['an exponent', '[1e21]'],
    ['a big integer', '[12345678901234567890]'],
    ['a 16-digit integer JavaScript prints otherwise', '[9007199254740993]'],
    ['a negative 16-digit integer JavaScript prints otherwise', '[-9007199254740993]'],
    ['a 16-digit integer key-value pair printed otherwise', '{"a":1234567890123456789}'],
    ['an integer key (listed first by V8)', '{"b":1,"1":2}'],
    ['an empty key', '{"":1}'],
  ])('is false with %s', (_what, text) => {
    expect(own(text)).toBe(false);
  });

  it('when true, the bytes are exactly JSON.stringify of their parse (random texts)', () => {
    let owned = 0;
    const value = fc.jsonValue();
    const keyed = fc.dictionary(fc.constantFrom('a', '1', '01', '0', 'x y', '__proto__', 'é'), fc.oneof(fc.double(), fc.integer(), fc.string()), {
      maxKeys: 4,
    });
    const spell = fc.constantFrom<(v: unknown) => string>(
      (v) => JSON.stringify(v),
      (v) => JSON.stringify(v),
      (v) => JSON.stringify(v, null, 1),
      (v) => JSON.stringify(v).replace(/"a"/g, '"\\u0061"'),
      (v) => JSON.stringify(v).replace(/(\d)(?=[,\]}])/, '$1.0'),
      (v) => JSON.stringify(v).replace(/(\d)(?=[,\]}])/, '$1e0'),
      // The first two members swapped (an integer key after another one: V8 would list it first).
      (v) => JSON.stringify(v).replace(/\{("[^"]*":[^,{}[\]]*),("[^"]*":[^,{}[\]]*)/, '{$2,$1'),
    );
    fc.assert(
      fc.property(fc.oneof(value, keyed, fc.array(keyed, { maxLength: 3 })), spell, (v, sp) => {
        const text = sp(v);
        if (text === undefined) return;
        const bytes = Buffer.from(text, 'utf8');
        let parsed: unknown;
        try {
          parsed = parseStrictJson(bytes);
        } catch {
          return;
        }
        if (!isOwnSerialization(bytes)) return;
        owned++;
        expect(text).toBe(JSON.stringify(parsed));
      }),
      { numRuns: 3000 },
    );
    expect(owned).toBeGreaterThan(500);
  });
});
