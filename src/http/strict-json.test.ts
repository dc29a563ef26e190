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
        expect(parseStrictJson(bytes(text))).toEqual(JSON.parse(text));
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
