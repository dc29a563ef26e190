import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_DEPTH, parseJsonBody, parseStrictJson, prettyJsonText, StrictJsonError } from './strict-json.js';

const bytes = (s: string) => Buffer.from(s, 'utf8');

describe('strict JSON: refused', () => {
  it.each([
    ['duplicate key', '{"amount":5000,"to":"mallory","amount":60}'],
    ['duplicate key, nested', '{"a":{"b":1,"b":2}}'],
    ['duplicate key in an array element', '[{"x":1},{"y":1,"y":2}]'],
    ['duplicate key spelled with an escape', '{"amount":1,"\\u0061mount":2}'],
    ['lone high surrogate', '{"to":"\\ud800"}'],
    ['lone low surrogate', '{"to":"\\udc00x"}'],
    ['high surrogate followed by a non-surrogate escape', '"\\ud800\\u0041"'],
    ['lone surrogate in a key', '{"\\udbff":1}'],
    ['number out of range', '{"amount":1e400}'],
    ['integer past 2^53 − 1 (policy would read 2^53, an int64 upstream 2^53 + 1)', '{"doc":9007199254740993}'],
    ['negative integer past -(2^53 − 1)', '{"doc":-9007199254740993}'],
    ['a 64-bit id as a number, nested', '{"a":[{"id":1234567890123456789}]}'],
    ['integer past 2^53 − 1 at the top', '9007199254740992'],
    ['integer past 2^53 − 1, written with an escape elsewhere (the full scan)', '{"k\\u0061":"x","doc":9007199254740993}'],
    ['trailing comma', '{"a":1,}'],
    ['single quotes', "{'a':1}"],
    ['leading zero', '{"a":01}'],
    ['NaN', '{"a":NaN}'],
    ['control character in string', '"a\u0001b"'],
    ['bad escape', '"\\x41"'],
    ['two values', '{} {}'],
    ['empty', ''],
    ['byte order mark', '\ufeff{}'],
    ['comment', '{"a":1/*x*/}'],
  ])('%s', (_label, text) => {
    expect(() => parseStrictJson(bytes(text))).toThrow(StrictJsonError);
  });

  it('says why an integer is refused, and keeps numbers every parser reads alike', () => {
    expect(() => parseStrictJson(bytes('{"doc":9007199254740993}'))).toThrow(/integer beyond 2\^53 − 1/);
    // The largest safe integers, and numbers written as fractions or exponents (read as doubles everywhere).
    expect(parseStrictJson(bytes('{"a":9007199254740991,"b":-9007199254740991,"c":1e17,"d":6.02e23,"e":12345678901234567.5}'))).toEqual({
      a: 9007199254740991,
      b: -9007199254740991,
      c: 1e17,
      d: 6.02e23,
      e: 12345678901234567.5,
    });
  });

  it('invalid UTF-8 (overlong, truncated, raw surrogate bytes)', () => {
    for (const b of [
      [0x22, 0xc0, 0xaf, 0x22],
      [0x22, 0xe2, 0x82, 0x22],
      [0x22, 0xed, 0xa0, 0x80, 0x22],
      [0x22, 0xff, 0x22],
    ]) {
      expect(() => parseStrictJson(Uint8Array.from(b))).toThrow(/UTF-8/);
    }
  });

  it('nesting deeper than MAX_DEPTH', () => {
    const deep = '['.repeat(MAX_DEPTH + 1) + ']'.repeat(MAX_DEPTH + 1);
    expect(() => parseStrictJson(bytes(deep))).toThrow(/deeply/);
    const ok = '['.repeat(MAX_DEPTH) + ']'.repeat(MAX_DEPTH);
    expect(() => parseStrictJson(bytes(ok))).not.toThrow();
  });

  it('a request body is a 400 bad_request', () => {
    try {
      parseJsonBody(bytes('{"a":1,"a":2}'));
      expect.unreachable();
    } catch (err) {
      expect((err as { code: string; status: number }).code).toBe('bad_request');
      expect((err as { status: number }).status).toBe(400);
    }
  });
});

describe('strict JSON: accepted', () => {
  it.each([
    ['{}'],
    ['[]'],
    ['{"a":{"a":{"a":1}}}'], // equal keys at different levels are fine
    ['{"to":"\\ud83d\\ude00 😀"}'],
    ['{"__proto__":{"x":1}}'],
    ['  {"a" : [1, -0.5e-3, true, false, null, "\\"\\\\\\/\\b\\f\\n\\r\\t"]}  '],
  ])('%s reads as JSON.parse reads it', (text) => {
    expect(parseStrictJson(bytes(text))).toEqual(JSON.parse(text));
  });

  it('agrees with JSON.parse on every JSON.stringify output (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        // An integer past 2^53 − 1 that JSON.stringify writes as digits is refused (I-JSON), whatever else is there.
        if (writesUnsafeInteger(v)) expect(() => parseStrictJson(bytes(text))).toThrow(/integer beyond 2\^53 − 1/);
        else expect(parseStrictJson(bytes(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses whatever JSON.parse refuses (property, random text)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (text) => {
        let native = true;
        try {
          JSON.parse(text);
        } catch {
          native = false;
        }
        if (!native) expect(() => parseStrictJson(bytes(text))).toThrow(StrictJsonError);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('prettyJsonText shows the bytes that are forwarded', () => {
  it('keeps strings and numbers exactly as written', () => {
    const text = '{"amount":60.000,"to":"\\u0063arol","note":"a\\/b","big":12345678901234567890}';
    const pretty = prettyJsonText(text)!;
    expect(pretty).toBe('{\n  "amount": 60.000,\n  "to": "\\u0063arol",\n  "note": "a\\/b",\n  "big": 12345678901234567890\n}');
    // A re-serialization would have printed 60, "carol", "a/b" and 12345678901234567000.
    expect(pretty).not.toBe(JSON.stringify(JSON.parse(text), null, 2));
  });

  it('lays out nested and empty containers', () => {
    expect(prettyJsonText('{"a":[1,{"b":[]},{}],"c":{}}')).toBe('{\n  "a": [\n    1,\n    {\n      "b": []\n    },\n    {}\n  ],\n  "c": {}\n}');
  });

  it('returns null for text that is not strict JSON (duplicate keys)', () => {
    expect(prettyJsonText('{"a":1,"a":2}')).toBeNull();
  });

  it('only changes whitespace between tokens (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v);
        const pretty = prettyJsonText(text)!;
        expect(JSON.parse(pretty)).toEqual(JSON.parse(text));
        // Same tokens: removing insignificant whitespace gives back the input.
        expect(minify(pretty)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});

/** Whether JSON.stringify(v) writes an integer past 2^53 − 1 as plain digits (below 1e21 it does not use an exponent). */
function writesUnsafeInteger(v: unknown): boolean {
  if (typeof v === 'number') return Number.isInteger(v) && !Number.isSafeInteger(v) && Math.abs(v) < 1e21;
  if (Array.isArray(v)) return v.some(writesUnsafeInteger);
  if (typeof v === 'object' && v !== null) return Object.values(v).some(writesUnsafeInteger);
  return false;
}

/** Remove whitespace outside strings. */
function minify(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i];
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (!/\s/.test(c)) out += c;
  }
  return out;
}
