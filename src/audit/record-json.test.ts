import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import { compileRouteInputs } from './inputs.js';
import { decisionRecord } from './record.js';
import { createRecordSerializer } from './record-json.js';

const route = {
  name: 'pay',
  match: { path: '/pay/:account' },
  upstream: { url: 'http://127.0.0.1:1' },
  authorize: { mode: 'all', checks: [{ user: 'user:{user}', relation: 'can_pay', object: 'account:{path.account}', context: { amount: '{body.amount}' } }] },
  approval: [{ when: 'body.amount > 100 && request.headers["x-env"] == "prod"', message: 'Pay {claims.email}' }],
} as unknown as RouteConfig;

/** A request state as the pipeline leaves it; every optional part can be switched on. */
function state(over: Partial<RequestState> = {}): RequestState {
  return {
    id: 'req-1',
    startedAt: Date.UTC(2026, 10, 30, 1, 2, 3, 456),
    method: 'POST',
    path: '/pay/acc-"7"',
    query: '',
    headers: { 'x-env': 'prod', authorization: 'Bearer secret' },
    route: { name: 'pay' },
    routeIndex: 0,
    params: { account: 'acc-"7"' },
    principal: {
      agent: 'agent-ü',
      user: 'alice',
      actors: ['svc-a', 'svc-b'],
      issuer: 'https://idp.example',
      scopes: ['pay', 'read'],
      claims: { email: 'a@example.com', sub: 'alice' },
      expiresAt: 0,
    },
    policy: { authorize: [], approval: [], credentials: { kind: 'vault' } },
    checks: [
      { user: 'user:alice', relation: 'can_pay', object: 'account:acc-"7"', allowed: true, engine: 'openfga', model: '01HXYZ', cached: true },
      { user: 'user:{bad', relation: 'r', object: 'o:{x}', allowed: null, engine: 'embedded', error: 'refused: line\nbreak' },
    ],
    body: Buffer.from('{"amount":250}'),
    json: { amount: 250 },
    decision: 'allow',
    status: 200,
    ...over,
  } as unknown as RequestState;
}

describe('decision record text', () => {
  const inputs = compileRouteInputs([route]);
  const same = (s: RequestState, err?: WardenError, latency = 12) => {
    const text = createRecordSerializer(inputs)(s, err, latency);
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(decisionRecord(s, err, latency, inputs))));
    expect(text).toBe(JSON.stringify(decisionRecord(s, err, latency, inputs)));
    return JSON.parse(text) as Record<string, unknown>;
  };

  it('is the same text as JSON.stringify(decisionRecord(…)) for a full allow', () => {
    const r = same(state());
    expect(r.body_sha256).toBe(createHash('sha256').update('{"amount":250}').digest('hex'));
    expect(r.input).toEqual({ 'body.amount': 250, 'claims.email': 'a@example.com', 'headers.x-env': 'prod' });
    expect(JSON.stringify(r)).not.toContain('secret');
  });

  it('and for refusals, failures, holds, shadow, machine tokens and requests before a route matched', () => {
    same(state({ decision: 'deny', reason: 'check_denied', status: 403 }), new WardenError('forbidden', 'no'));
    same(state({ decision: 'error', status: 503 }), new WardenError('authz_unavailable', 'down'));
    same(state({ decision: 'pending', status: 202, approvalId: 'ap-1' }), new WardenError('approval_pending', 'held'));
    same(state({ approvalId: 'ap-2', query: 'a=1&b="2"' }));
    expect(same(state({ cut: 'agent' })).cut).toBe('agent');
    expect(same(state({ cut: 'upstream', status: 200 })).cut).toBe('upstream');
    expect(same(state({ cut: 'agent', status: undefined })).status).toBe(0);
    same(state({ shadowMode: true, shadow: { outcome: 'would_filter', tools: ['delete_file', 'write_file'] } }));
    same(state({ shadowMode: true }));
    same(state({ principal: { agent: 'bot', user: null, actors: [], issuer: 'i', scopes: [], claims: {}, expiresAt: 0 } as never }));
    same(
      state({
        principal: undefined,
        route: undefined,
        routeIndex: undefined,
        params: {},
        checks: [],
        body: undefined,
        json: undefined,
        decision: undefined,
        status: undefined,
      }),
    );
    same(
      state({
        mcp: { method: 'tools/call', tool: 'read_file', args: { path: 'x' } } as never,
        limitTrace: [{ kind: 'budget', policy: 'p', key: 'k', outcome: 'reserved', detail: { n: 1 } }],
      }),
    );
    // A streamed body's digest can be taken once: one hash for each side.
    const streamed = () => state({ body: undefined, streamedBody: createHash('sha256').update('streamed') });
    expect(createRecordSerializer(inputs)(streamed(), undefined, 3)).toBe(JSON.stringify(decisionRecord(streamed(), undefined, 3, inputs)));
  });

  it('shares the time text of one millisecond, and renders the next one anew', () => {
    const serialize = createRecordSerializer(inputs);
    const a = JSON.parse(serialize(state(), undefined, 1));
    const b = JSON.parse(serialize(state({ startedAt: Date.UTC(2026, 10, 30, 1, 2, 3, 457) }), undefined, 1));
    expect([a.time, b.time]).toEqual(['2026-11-30T01:02:03.456Z', '2026-11-30T01:02:03.457Z']);
  });

  it('writes the members of each principal when one serializer sees requests of many principals (their text is kept per principal object)', () => {
    const serialize = createRecordSerializer(inputs);
    const principals = [
      state().principal!,
      { agent: 'bot', user: null, actors: [], issuer: 'i', scopes: [], claims: {}, expiresAt: 0 },
      { agent: 'bot', user: 'bob "b"', actors: ['x'], issuer: 'i2', scopes: ['s'], claims: { email: 'b@example.com' }, expiresAt: 0 },
      { agent: 'bot', user: 'bob "b"', actors: [], issuer: 'i2', scopes: [], claims: {}, expiresAt: 0 },
    ];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, 1, 2, 3, -1), { minLength: 1, maxLength: 30 }), (order) => {
        for (const i of order) {
          const s = state(i < 0 ? { principal: undefined } : { principal: principals[i] as never });
          expect(serialize(s, undefined, 5)).toBe(JSON.stringify(decisionRecord(s, undefined, 5, inputs)));
        }
      }),
      { numRuns: 100 },
    );
  });
});
