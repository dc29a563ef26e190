import { describe, expect, it } from 'vitest';
import type { RequestState } from '../pipeline/context.js';
import { decisionRecord } from './record.js';
import { createRecordSerializer } from './record-json.js';

/** A request whose repeating strings (route, method, decision, check relation and engine, credential kind) are `v`. */
const state = (v: string): RequestState =>
  ({
    id: 'r',
    startedAt: 0,
    method: v,
    path: '/p',
    query: '',
    headers: {},
    route: { name: v },
    routeIndex: 0,
    params: {},
    policy: { authorize: [], approval: [], credentials: { kind: v } },
    checks: [{ user: 'user:a', relation: v, object: 'doc:1', allowed: true, engine: v }],
    decision: v,
    status: 200,
  }) as unknown as RequestState;

describe('decision record text: the cache of repeating strings', () => {
  it('stays the text of JSON.stringify past its bound, and for values seen before and after it filled', () => {
    const serialize = createRecordSerializer();
    // 1,000 distinct values (the cache keeps 256), escapable ones among them, then the first ones again.
    const values = Array.from({ length: 1000 }, (_, i) => (i % 7 === 0 ? `v"${i}\n` : `v${i}`));
    for (const v of [...values, ...values.slice(0, 300), 'allow', 'allow']) {
      const s = state(v);
      expect(serialize(s, undefined, 1)).toBe(JSON.stringify(decisionRecord(s, undefined, 1)));
    }
  });
});
