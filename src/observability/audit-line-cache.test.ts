import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import { auditFields, createAuditLineSerializer } from './audit-line.js';
import { createAudit } from './audit.js';
import { createLogger, lineFraming, scrub, scrubbedJsonContent, scrubString } from './logger.js';
import { createDisabledMetrics } from './metrics.js';

/**
 * The audit line's kept texts (route and method, principal, decision/reason/status, latency and tail, the line's head
 * per millisecond) and its cheaper scan of request ids and paths: each must give the text the pino path writes, whatever
 * came before it.
 */

const JWT = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl';

const base = (over: Record<string, unknown> = {}): RequestState =>
  ({
    id: '3f1c2a9e-5b7d-4e21-9c3a-000000000001',
    startedAt: 0,
    method: 'GET',
    path: '/api/items/42',
    route: { name: 'api' },
    principal: { agent: 'agent-a', user: 'alice', actors: [], scopes: [] },
    checks: [{ user: 'user:alice', relation: 'can_read', object: 'item:42', allowed: true, engine: 'embedded' }],
    policy: { authorize: [], approval: [] },
    decision: 'allow',
    status: 200,
    ...over,
  }) as unknown as RequestState;

/** The audit fields as the pino path writes them (scrub hook, then JSON), from `,"audit"…` on. */
const viaPino = (s: RequestState, err: WardenError | undefined, ms: number) => `,${JSON.stringify(scrub(auditFields(s, err, ms))).slice(1, -1)}`;

describe('scrubbedJsonContent (request ids and paths)', () => {
  const reference = (s: string) => JSON.stringify(scrubString(s)).slice(1, -1);

  it('redacts a JWT made only of characters that need no escaping (an inbound X-Request-Id may be one)', () => {
    for (const s of [JWT, `req.${JWT}`, `/a/${JWT}/b`, `${JWT}:1`]) {
      expect(scrubbedJsonContent(s), s).toBe(reference(s));
      expect(scrubbedJsonContent(s)).not.toContain('c2lnbmF0dXJl');
    }
  });

  it('redacts a scheme and token, and a query secret, next to plain text', () => {
    for (const s of ['/x/Bearer abcdefgh12345678', '/x/basic\tQWxhZGRpbjpvcGVu', '/cb?code=c0de5ecret', '/x&t=t5ecret']) {
      expect(scrubbedJsonContent(s), s).toBe(reference(s));
      expect(scrubbedJsonContent(s)).toMatch(/redacted/);
    }
  });

  it('is JSON.stringify(scrubString(s)) without its quotes for generated strings', () => {
    const piece = fc.oneof(
      {
        weight: 5,
        arbitrary: fc.constantFrom('a', 'Z', '0', '_', '.', ':', '/', '=', '@', '+', ',', '~', '-', 'e', 'y', 'J', 'eyJ', 'EYJ', 'eyj'),
      },
      { weight: 2, arbitrary: fc.constantFrom(' ', '\t', '\u00a0', '\u2028', '?', '&', '"', '\\', '\n', '\u0000', '\ud800', 'é', '😀') },
      { weight: 2, arbitrary: fc.constantFrom(JWT, 'Bearer', 'basic', 'DPoP', 'abcdefgh12345678', 'code=', 'access_token=', 't=', 'https://', 'u:p@') },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }) },
    );
    fc.assert(
      fc.property(fc.string({ unit: piece, maxLength: 14 }), (s) => {
        expect(scrubbedJsonContent(s)).toBe(reference(s));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('the audit line after other lines (texts kept from the requests before)', () => {
  const err = new WardenError('upstream_unavailable', 'x', { status: 502, cause: new Error(`upstream said Bearer abcdefgh12345678`) });
  /** One field changed at a time, then back: a text kept under too narrow a key shows the value before. */
  const steps: Array<[Record<string, unknown>, WardenError | undefined, number]> = [
    [{}, undefined, 1],
    [{}, undefined, 1],
    [{ route: { name: 'other' } }, undefined, 1],
    [{ method: 'POST' }, undefined, 1],
    [{ path: `/api/items/${JWT}` }, undefined, 1],
    [{ id: JWT }, undefined, 1],
    [{ id: 'req-"quoted"' }, undefined, 1],
    [{ path: '/x?access_token=s3cret&y=1' }, undefined, 1],
    [{ decision: 'deny' }, undefined, 1],
    [{ decision: 'deny', status: 403 }, undefined, 1],
    [{ decision: 'deny', status: 403, reason: 'forbidden' }, undefined, 1],
    [{ decision: 'deny', status: 403, reason: `Bearer abcdefgh12345678` }, undefined, 1],
    [{ decision: undefined }, undefined, 1],
    [{ status: undefined }, undefined, 1],
    [{ status: 201 }, undefined, 1],
    [{ principal: { agent: 'agent-b', user: 'bob', actors: [], scopes: [] } }, undefined, 1],
    [{ principal: { agent: `agent ${JWT}`, user: 'alice', actors: [], scopes: [] } }, undefined, 1],
    [{ principal: undefined }, undefined, 1],
    [{ principal: { agent: 'agent-a', user: null, actors: [], scopes: [] } }, undefined, 1],
    [{ mcp: { method: 'tools/call', tool: 'read_file' } }, undefined, 1],
    [{ mcp: { method: 'tools/call', tool: `t ${JWT}` } }, undefined, 1],
    [{ mcp: { method: 'tools/call', tool: 'read_file' }, decision: 'deny', status: 403 }, undefined, 1],
    [{ mcp: { method: 'tools/call', tool: 'write_file' } }, undefined, 1],
    [{ mcp: { method: 'tools/list' } }, undefined, 1],
    [{ approvalId: 'ap-1' }, undefined, 1],
    [{ checks: [] }, undefined, 1],
    [{ checks: [{ user: `user:${JWT}`, relation: 'r', object: 'o', allowed: false, engine: 'embedded' }] }, undefined, 1],
    [{}, undefined, 0],
    [{}, undefined, 999],
    [{}, undefined, 1000],
    [{}, undefined, 12.5],
    [{}, undefined, NaN],
    [{}, undefined, -3],
    [{ decision: 'error', status: 502 }, err, 7],
    [{}, undefined, 7],
    [{}, undefined, 1],
  ];

  it('is the pino path’s text after each change and back, with no tail and with one', () => {
    for (const tail of ['', ',"msg":"request"}\n']) {
      const serialize = createAuditLineSerializer(tail);
      for (const [over, e, ms] of steps) {
        for (const head of ['', '{"level":"info"']) {
          const s = base(over);
          const line = serialize(s, e, ms, head);
          expect(line, JSON.stringify(over)).toBe(head + viaPino(s, e, ms) + tail);
          expect(line).not.toContain('c2lnbmF0dXJl');
          expect(line).not.toContain('abcdefgh12345678');
          expect(line).not.toContain('s3cret');
        }
      }
    }
  });

  it('is the pino path’s text for generated sequences of requests that share some fields with the one before', () => {
    const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
    const request = fc.record({
      id: pick('r1', JWT, 'r"2'),
      method: pick('GET', 'POST'),
      path: pick('/a', '/a?t=x', `/b/${JWT}`),
      route: pick({ name: 'a' }, { name: 'b' }),
      principal: pick(undefined, { agent: 'a', user: 'u' }, { agent: 'b', user: null }),
      mcp: pick(undefined, { method: 'tools/call', tool: 't' }, { method: 'tools/call', tool: 'u' }, { method: 'tools/call', tool: `t ${JWT}` }),
      decision: pick(undefined, 'allow', 'deny'),
      reason: pick(undefined, 'r1', 'Basic QWxhZGRpbjpvcGVu'),
      status: pick(undefined, 200, 403),
      checks: pick([], [{ user: 'user:u', relation: 'r', object: 'o', allowed: true }]),
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(request, pick(0, 1, 2, 1500, NaN)), { minLength: 1, maxLength: 12 }), (requests) => {
        const serialize = createAuditLineSerializer('!');
        for (const [r, ms] of requests) {
          const s = base(r);
          expect(serialize(s, undefined, ms, '^')).toBe('^' + viaPino(s, undefined, ms) + '!');
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('the audit line’s check texts (user and relation kept from the check before)', () => {
  it('is the pino path’s text for generated checks in sequence: schemes before the space, tokens, escapes, other answers', () => {
    const piece = fc.constantFrom(
      'user:alice',
      'can_read',
      'item:42',
      'viewer',
      'x',
      'Bearer',
      'xbasic',
      'DPOP',
      'eyJ',
      JWT,
      'abcdefgh12345678',
      ' ',
      '?t=1',
      '"',
      'é',
      'h://u:p@h',
    );
    const part = fc.string({ unit: piece, minLength: 1, maxLength: 3 });
    const check = fc.record({ user: part, relation: part, object: part, allowed: fc.constantFrom(true, false, null), engine: fc.constant('embedded') });
    fc.assert(
      fc.property(fc.array(fc.array(check, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 8 }), (lines) => {
        const serialize = createAuditLineSerializer();
        for (const checks of lines) {
          const s = base({ checks });
          expect(serialize(s, undefined, 1)).toBe(viaPino(s, undefined, 1));
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('redacts a token after a scheme that ends the user or the relation, after a clean check with the same object', () => {
    const serialize = createAuditLineSerializer();
    const check = (user: string, relation: string, object: string) => base({ checks: [{ user, relation, object, allowed: true, engine: 'embedded' }] });
    for (const s of [
      check('user:alice', 'can_read', 'abcdefgh12345678'),
      check('user:alice', 'can_write', 'abcdefgh12345678'),
      check('user:bob', 'can_write', 'abcdefgh12345678'),
      check('user:Bearer', 'abcdefgh12345678', 'abcdefgh12345678'),
      check('user:alice', 'basic', 'abcdefgh12345678'),
      check('user:alice', 'can_read', JWT),
    ]) {
      const line = serialize(s, undefined, 1);
      expect(line).toBe(viaPino(s, undefined, 1));
    }
    expect(serialize(check('user:alice', 'basic', 'abcdefgh12345678'), undefined, 1)).not.toContain('abcdefgh12345678');
    expect(serialize(check('user:alice', 'can_read', JWT), undefined, 1)).not.toContain('c2lnbmF0dXJl');
  });
});

describe('the line’s head per millisecond', () => {
  it('is the level, the time of `now` and the bindings, for times in one millisecond, the next, the next second and back', () => {
    const logger = createLogger({ level: 'info', destination: { write() {} }, base: { worker: 3 } });
    const framing = lineFraming(logger, 'info', 'request')!;
    const t0 = Date.UTC(2026, 10, 30, 18, 0, 59, 998);
    for (const now of [t0, t0, t0 + 1, t0 + 2, t0 + 1002, t0, t0 - 86_400_000]) {
      const line = framing.head(now) + ',"audit":true' + framing.tail;
      expect(JSON.parse(line)).toEqual({ level: 'info', time: new Date(now).toISOString(), service: 'warden', worker: 3, audit: true, msg: 'request' });
    }
    // Bindings set later are on the next line, as pino writes them (in the same millisecond too).
    expect(JSON.parse(framing.head(t0) + framing.tail)).not.toHaveProperty('zone');
    logger.setBindings({ zone: 'z1' });
    expect(JSON.parse(framing.head(t0) + framing.tail)).toMatchObject({ worker: 3, zone: 'z1' });
  });

  it('through the audit step: one line per request, each with its own time, scrubbed', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const audit = createAudit({ logger, metrics: createDisabledMetrics() });
    const before = Date.now();
    audit(base({ startedAt: before, id: JWT }));
    audit(base({ startedAt: before, path: `/x/Bearer abcdefgh12345678` }));
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      const r = JSON.parse(l) as Record<string, unknown>;
      expect(Date.parse(r.time as string)).toBeGreaterThanOrEqual(before);
      expect(r).toMatchObject({ level: 'info', service: 'warden', audit: true, route: 'api', msg: 'request' });
      expect(l).not.toContain('c2lnbmF0dXJl');
      expect(l).not.toContain('abcdefgh12345678');
    }
  });
});
