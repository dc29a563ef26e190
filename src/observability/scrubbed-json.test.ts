import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RequestState } from '../pipeline/context.js';
import { auditFields, createAuditLineSerializer } from './audit-line.js';
import { scrub, scrubbedJson, scrubString } from './logger.js';

const reference = (s: string) => JSON.stringify(scrubString(s));

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl';
/** Each shape the scrub redacts, with the secret part that must not be written. */
const SECRETS: Array<[string, string]> = [
  [`Bearer abcdefgh12345678`, 'abcdefgh12345678'],
  [`bearer abcdefgh12345679`, 'abcdefgh12345679'],
  [`BASIC QWxhZGRpbjpvcGVuIHNlc2FtZQ==`, 'QWxhZGRpbjpvcGVuIHNlc2FtZQ=='],
  [`DPoP zzzzzzzzzzzz`, 'zzzzzzzzzzzz'],
  [`dpop yyyyyyyyyyyy`, 'yyyyyyyyyyyy'],
  [JWT, JWT],
  [`/cb?code=c0de5ecret`, 'c0de5ecret'],
  [`/x?a=1&access_token=at5ecret`, 'at5ecret'],
  [`/x?T=t5ecret`, 't5ecret'],
  [`/x?ticket=tk5ecret&y=2`, 'tk5ecret'],
  [`https://ingest:pw5ecret@logs.example/in`, 'pw5ecret'],
];
/** Each character class JSON.stringify escapes. */
const ESCAPED = ['"', '\\', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u0001', '\u001f', '\ud800', '\udfff', '\udbff\udfff'];

describe('scrubbedJson (the audit line’s one-scan string text)', () => {
  it('is JSON.stringify(scrubString(s)) for plain strings, written between quotes as they are', () => {
    for (const s of ['', 'req-1', '3f1c2a9e-5b7d-4e21-9c3a-000000000001', '/api/items/42', 'bench-agent', 'é中😀', '\u007f', '\u2028', 'b e d']) {
      expect(scrubbedJson(s), s).toBe(reference(s));
      expect(scrubbedJson(s)).toBe(`"${s}"`);
    }
  });

  it('is JSON.stringify(scrubString(value)) for a value that is not a string (not quoted)', () => {
    for (const v of [42, true, null]) expect(scrubbedJson(v as never)).toBe(JSON.stringify(scrubString(v as never)));
  });

  it('escapes every character JSON.stringify escapes, anywhere in the string', () => {
    for (const c of ESCAPED) {
      for (const s of [c, `a${c}`, `${c}b`, `a${c}b`]) {
        expect(scrubbedJson(s), JSON.stringify(s)).toBe(reference(s));
        expect(JSON.parse(scrubbedJson(s))).toBe(JSON.parse(JSON.stringify(s)));
      }
    }
  });

  it('redacts every secret shape, anywhere in the string, and writes none of it', () => {
    for (const [shape, secret] of SECRETS) {
      for (const s of [shape, `x ${shape}`, `${shape} y`, `agent ${shape} "q"`]) {
        const out = scrubbedJson(s);
        expect(out, s).toBe(reference(s));
        expect(out, s).not.toContain(secret);
      }
    }
  });

  it('is JSON.stringify(scrubString(s)) for generated strings (secrets, escapes, unicode mixed)', () => {
    const piece = fc.oneof(
      fc.constantFrom(
        ...SECRETS.map(([shape]) => shape),
        ...ESCAPED,
        'eyJ',
        'EYJ',
        'bear',
        'basi',
        'dpo',
        '?',
        '&',
        '=',
        't',
        'code',
        ' ',
        'é',
        '😀',
        '://',
        '@',
        ':',
      ),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }),
    );
    fc.assert(
      fc.property(fc.string({ unit: piece, maxLength: 12 }), (s) => {
        expect(scrubbedJson(s)).toBe(reference(s));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('the audit line’s principal text', () => {
  const state = (principal: unknown, id = 'r1'): RequestState =>
    ({
      id,
      startedAt: 0,
      method: 'GET',
      path: '/p',
      route: { name: 'r' },
      principal,
      checks: [],
      policy: { authorize: [], approval: [] },
      decision: 'allow',
      status: 200,
    }) as unknown as RequestState;
  /** The audit fields as the pino path writes them (scrub hook, then JSON), from `,"audit"…` on. */
  const viaPino = (s: RequestState) => {
    const json = JSON.stringify(scrub(auditFields(s, undefined, 1)));
    return `,${json.slice(1, -1)}`;
  };

  it('is written once per principal object and stays that principal’s: a reused principal and different ones', () => {
    const serialize = createAuditLineSerializer();
    const alice = { agent: 'agent-a', user: 'alice', actors: [], scopes: [] };
    const bob = { agent: 'agent-b', user: 'bob', actors: [], scopes: [] };
    const machine = { agent: 'agent-m', user: null, actors: [], scopes: [] };
    const secret = { agent: `agent ${JWT}`, user: 'Bearer abcdefgh12345678', actors: [], scopes: [] };
    for (const p of [alice, bob, alice, machine, secret, bob, secret, machine, alice]) {
      for (const id of ['r1', 'r2']) {
        const line = serialize(state(p, id), undefined, 1);
        expect(line).toBe(viaPino(state(p, id)));
        expect(line).not.toContain(JWT);
        expect(line).not.toContain('abcdefgh12345678');
      }
    }
    // An equal principal in another object gets the same text.
    expect(serialize(state({ ...alice }), undefined, 1)).toBe(serialize(state(alice), undefined, 1));
  });
});
