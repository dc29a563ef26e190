import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import { decisionRecord } from './record.js';
import { createRecordSerializer } from './record-json.js';

/** Each character class JSON.stringify escapes, and text it leaves alone. */
const PIECES = ['"', '\\', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\ud800', '\udfff', '😀', 'é', '中', '\u007f', '\u2028', 'a', '/', ' ', '-'];

describe('decision record text: strings written without JSON.stringify when nothing needs escaping', () => {
  it('is JSON.stringify(decisionRecord(…)) with escapable characters in every string field', () => {
    const text = fc.string({ unit: fc.oneof(fc.constantFrom(...PIECES), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 8 });
    const request = fc.record({
      id: text,
      method: text,
      path: text,
      query: text,
      route: fc.record({ name: text }),
      params: fc.dictionary(text, text, { maxKeys: 2 }),
      principal: fc.record({
        agent: text,
        user: fc.option(text, { nil: null }),
        actors: fc.array(text, { maxLength: 2 }),
        issuer: text,
        scopes: fc.array(text, { maxLength: 2 }),
      }),
      mcp: fc.record({ method: text, tool: text }),
      decision: text,
      reason: text,
      approvalId: text,
      checks: fc.array(
        fc.record({ user: text, relation: text, object: text, allowed: fc.boolean(), engine: text, model: text, consistency: text, error: text }),
        { maxLength: 2 },
      ),
      credentials: text,
    });
    const serialize = createRecordSerializer();
    fc.assert(
      fc.property(request, text, (r, code) => {
        const s = {
          ...r,
          startedAt: 0,
          routeIndex: 0,
          headers: {},
          principal: { ...r.principal, claims: {}, expiresAt: 0 },
          policy: { authorize: [], approval: [], credentials: { kind: r.credentials } },
          status: 500,
        } as unknown as RequestState;
        const err = new WardenError('internal', 'x', { status: 500 });
        (err as { code: string }).code = code;
        for (const st of [s, { ...s, decision: 'allow' } as RequestState]) {
          expect(serialize(st, err, 1)).toBe(JSON.stringify(decisionRecord(st, err, 1)));
        }
      }),
      { numRuns: 2000 },
    );
  });
});
