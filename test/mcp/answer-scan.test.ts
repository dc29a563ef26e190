/**
 * The byte scan behind the response hook's fast path (#17, answer-scan.ts):
 * PLAIN only for one JSON value whose text holds neither `"tools"` nor `\u`;
 * SPELLED only when the bytes hold one of the two. passesUnchanged, which
 * trusts the scan and falls back to searching and parsing (passesParsed),
 * gives exactly passesParsed's answer on every input.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PLAIN, SPELLED, UNSURE, scanAnswer } from '../../src/mcp/answer-scan.js';
import { passesParsed, passesUnchanged } from '../../src/mcp/response-hook.js';

/** The bench's tools/call answer (bench/lib/nginx.mjs): a JSON-RPC result around 900 bytes of text. */
const CALL_ANSWER = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  result: {
    content: [{ type: 'text', text: JSON.stringify({ id: 42, name: 'bench item', owner: 'bench', tags: ['a', 'b', 'c'], pad: 'x'.repeat(900) }) }],
    isError: false,
  },
});

const scan = (text: string) => scanAnswer(Buffer.from(text, 'utf8'));

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const marked = (text: string) => text.includes('"tools"') || text.includes('\\u');

describe('scanAnswer', () => {
  it('proves a tools/call answer plain (the bench answer, escapes, nesting, numbers, literals)', () => {
    for (const text of [
      CALL_ANSWER,
      '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t é 😀"}],"isError":false}}',
      ' \n\t{ "a" : [ 1 , -0 , 0.5 , -12.25e+3 , 1E-2 , 7e9 , true , false , null , { } , [ ] , "" ] }\r\n',
      '0',
      '"toolS"',
      '[[[[[]]]]]',
      '{"tool":"tools2","xtools":"tools\\\\"}',
    ]) {
      expect(scan(text), text).toBe(PLAIN);
      expect(parses(text)).toBe(true);
    }
  });

  it.each([
    ['a tools key', '{"result":{"tools":[]}}'],
    ['a tools value', '{"result":"tools"}'],
    ['"tools" after an escaped quote', '{"text":"say \\"tools"}'],
    ['a \\u escape', '{"text":"\\u00e9"}'],
    ['\\u after an escaped backslash', '{"text":"C:\\\\users"}'],
  ])('finds %s', (_what, text) => {
    expect(scan(text)).toBe(SPELLED);
    expect(marked(text)).toBe(true);
  });

  it.each([
    '',
    '   ',
    '{',
    '{"a":1,}',
    '[1,]',
    '[1 2]',
    '{"a" 1}',
    '{"a":1 "b":2}',
    '{1:2}',
    '01',
    '1.',
    '.5',
    '-',
    '+1',
    '1e',
    '1e+',
    '-a',
    'tru',
    'nul',
    'True',
    '"a',
    '"a\\x"',
    '"a\tb"',
    '"\n"',
    '{"a":1}}',
    '[1]]',
    '[}',
    '{]',
    '{"a":1} 2',
    '\ufeff{}',
    'NaN',
  ])('does not prove %j', (text) => {
    expect(scan(text)).toBe(UNSURE);
    expect(parses(text) && !marked(text)).toBe(false);
  });

  it('leaves nesting deeper than its stack to the parse', () => {
    const deep = '['.repeat(600) + ']'.repeat(600);
    expect(scan(deep)).toBe(UNSURE);
    expect(passesUnchanged(Buffer.from(deep))).toBe(true);
  });
});

// Text near JSON: valid values, then bytes inserted, removed or replaced from an alphabet that makes grammar edges likely.
const ALPHABET = [
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  '"',
  '\\',
  ' ',
  '\n',
  '\t',
  '0',
  '1',
  '9',
  '-',
  '+',
  '.',
  'e',
  'E',
  't',
  'r',
  'u',
  'f',
  'a',
  'l',
  's',
  'n',
  'o',
  'x',
  '\u0001',
  'é',
];
const jsonText = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.jsonValue().map((v) => JSON.stringify(v, null, 1)),
  fc.jsonValue().map((v) => JSON.stringify({ jsonrpc: '2.0', id: 1, result: v })),
  fc.constantFrom('{"tools":[]}', '"tools"', '["x\\"tools"]', '"\\\\u"', '{"a":"\\n"}', '-0.5e-7', '[true,false,null]'),
);
const edit = fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.constantFrom(...ALPHABET));
const nearJson = fc.oneof(
  { weight: 2, arbitrary: jsonText },
  {
    weight: 3,
    arbitrary: fc.tuple(jsonText, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([text, edits]) => {
      let t = text;
      for (const [at, op, ch] of edits) {
        const i = t.length === 0 ? 0 : at % (t.length + 1);
        t = op === 'insert' ? t.slice(0, i) + ch + t.slice(i) : op === 'delete' ? t.slice(0, i) + t.slice(i + 1) : t.slice(0, i) + ch + t.slice(i + 1);
      }
      return t;
    }),
  },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...ALPHABET), { maxLength: 24 }).map((cs) => cs.join('')) },
);

describe('scanAnswer against JSON.parse', () => {
  it('PLAIN only for a JSON text without "tools" or \\u; SPELLED only with one', () => {
    fc.assert(
      fc.property(nearJson, (text) => {
        const verdict = scan(text);
        if (verdict === PLAIN) expect(parses(text) && !marked(text)).toBe(true);
        if (verdict === SPELLED) expect(marked(text)).toBe(true);
      }),
      { numRuns: 8_000 },
    );
  });

  it('proves every JSON text without "tools" or \\u plain (the fast path is taken)', () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        if (!marked(text)) expect(scan(text)).toBe(PLAIN);
      }),
      { numRuns: 5_000 },
    );
  });

  it('passesUnchanged answers as passesParsed on every input (invalid UTF-8 included)', () => {
    const bytes = fc.oneof(
      nearJson.map((t) => Buffer.from(t, 'utf8')),
      fc.tuple(jsonText, fc.nat(), fc.constantFrom(0xff, 0xc3, 0x80)).map(([t, at, byte]) => {
        const b = Buffer.from(t, 'utf8');
        const i = b.length === 0 ? 0 : at % b.length;
        return Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
      }),
    );
    fc.assert(
      fc.property(bytes, (raw) => {
        expect(passesUnchanged(raw)).toBe(passesParsed(raw));
      }),
      { numRuns: 8_000 },
    );
  });
});

describe('scanAnswer on long strings (read four bytes at a time)', () => {
  // Every byte a string may not hold raw, one that ends it, and plain ones of every UTF-8 length.
  const SPECIAL = ['\u0000', '\u0001', '\u001f', '\n', '"', '\\', '\\u', '\\"tools', ' ', '!', '#', '\u007f', 'é', '😀', '\\\\u', '\\n'];

  it('agrees with JSON.parse wherever a byte breaks the run and wherever the answer starts in its memory', () => {
    for (const len of [17, 40, 131, 300]) {
      for (let at = 0; at <= len; at += at < 24 ? 1 : 7) {
        for (const special of SPECIAL) {
          const text = `{"a":"${'x'.repeat(at)}${special}${'y'.repeat(len - at)}","b":[1]}`;
          const bytes = Buffer.from(text, 'utf8');
          const verdict = plainVerdict(text);
          // The same bytes at each of the four places in a word of their ArrayBuffer.
          for (let shift = 0; shift < 4; shift++) {
            const host = Buffer.alloc(bytes.length + 8);
            bytes.copy(host, shift);
            expect(scanAnswer(host.subarray(shift, shift + bytes.length)), `${JSON.stringify(special)} at ${at} of ${len}, shift ${shift}`).toBe(verdict);
          }
        }
      }
    }
  });

  it('finds the end of a long string however it is aligned (and an unterminated one is not proven)', () => {
    for (let len = 120; len < 140; len++) {
      const text = `"${'z'.repeat(len)}"`;
      expect(scan(text)).toBe(PLAIN);
      expect(scan(text.slice(0, -1))).toBe(UNSURE);
      expect(scan(`[${text},${text}]`)).toBe(PLAIN);
    }
  });
});

/** What the scan must answer for a text: SPELLED with a marker, else PLAIN exactly when JSON.parse reads it. */
function plainVerdict(text: string): number {
  if (marked(text)) return SPELLED;
  return parses(text) ? PLAIN : UNSURE;
}
