import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import { AUDIT_LINE_FIELDS, auditFields, createAuditLineSerializer } from './audit-line.js';
import { createAudit } from './audit.js';
import { createLogger, lineFraming, SECRET_FIELD_NAMES, type Logger } from './logger.js';
import { createDisabledMetrics } from './metrics.js';

/** A Warden logger whose lines stay in memory. */
function captured(level = 'debug', base?: Record<string, string | number>) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level, destination, base }), lines };
}

/** A line without its time (two lines written a millisecond apart differ there), after checking the time is ISO text. */
function parsed(line: string): Record<string, unknown> {
  expect(line.endsWith('\n')).toBe(true);
  expect(line.indexOf('\n')).toBe(line.length - 1);
  const record = JSON.parse(line) as Record<string, unknown>;
  expect(new Date(record.time as string).toISOString()).toBe(record.time);
  delete record.time;
  return record;
}

/** The line the pino path writes for `state` (the scrub hook over auditFields) and the line written as text, each parsed. */
const pinoSide = captured('info', { worker: 2 });
const textSide = captured('info', { worker: 2 });
const framing = lineFraming(textSide.logger, 'info', 'request')!;
const writeText = (fields: string) => framing.write(framing.head(Date.now()) + fields + framing.tail);
// One serializer for every case, as for a config generation: its memo of repeated values fills (past its bound) and answers again.
const serialize = createAuditLineSerializer();
function bothLines(state: RequestState, err: WardenError | undefined, latencyMs: number) {
  pinoSide.lines.length = 0;
  textSide.lines.length = 0;
  pinoSide.logger.info(auditFields(state, err, latencyMs), 'request');
  writeText(serialize(state, err, latencyMs));
  expect(pinoSide.lines).toHaveLength(1);
  expect(textSide.lines).toHaveLength(1);
  return { viaPino: parsed(pinoSide.lines[0]), asText: parsed(textSide.lines[0]), text: textSide.lines[0] };
}

/**
 * Lone surrogates as a UTF-8 reader sees them. The text escapes one (`\ud800`,
 * as JSON.stringify and pino's path for strings over 100 characters do); pino's
 * path for shorter strings writes it raw, and encoding to UTF-8 makes it U+FFFD.
 * Either way it is no secret and breaks no line.
 */
function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(/\p{Cs}/gu, '\ufffd');
  if (Array.isArray(value)) return value.map(wellFormed);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, wellFormed(v)]));
  return value;
}

const state = (over: Partial<RequestState> = {}): RequestState =>
  ({
    id: 'req-1',
    startedAt: Date.now(),
    method: 'POST',
    path: '/pay/acc-"7"',
    route: { name: 'pay' },
    principal: { agent: 'agent-ü', user: 'alice' },
    checks: [{ user: 'user:alice', relation: 'can_pay', object: 'account:acc-"7"', allowed: true, engine: 'embedded' }],
    policy: { authorize: [], approval: [] },
    decision: 'allow',
    status: 200,
    ...over,
  }) as unknown as RequestState;

describe('audit line text', () => {
  it('has no field named like a secret, so it censors none by name (the scrub hook would censor such a field)', () => {
    for (const f of AUDIT_LINE_FIELDS) expect(SECRET_FIELD_NAMES, f).not.toContain(f);
    expect(Object.keys(auditFields(state({ reason: 'r', cut: 'agent', approvalId: 'a', mcp: { method: 'tools/call', tool: 't' } }), undefined, 1))).toEqual([
      ...AUDIT_LINE_FIELDS,
    ]);
  });

  it('is the line pino writes: same framing, fields, order and message', () => {
    const err = new WardenError('upstream_unavailable', 'no upstream', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') });
    const { viaPino, asText, text } = bothLines(state({ reason: 'upstream_unavailable', status: 502, decision: 'error' }), err, 7);
    expect(asText).toEqual(viaPino);
    expect(Object.keys(asText)).toEqual(Object.keys(viaPino));
    expect(asText).toMatchObject({ level: 'info', service: 'warden', worker: 2, audit: true, error: 'connect ECONNREFUSED 127.0.0.1:1', msg: 'request' });
    expect(text.startsWith('{"level":"info","time":"')).toBe(true);
  });

  it('says when the answer was cut, and by whom, after the status', () => {
    for (const cut of ['agent', 'upstream'] as const) {
      const { viaPino, asText, text } = bothLines(state({ status: 200, cut }), undefined, 4);
      expect(asText).toEqual(viaPino);
      expect(Object.keys(asText)).toEqual(Object.keys(viaPino));
      expect(text).toContain(`"status":200,"cut":"${cut}"`);
    }
    // An agent that left before any answer: no status, still the cut.
    const early = bothLines(state({ status: undefined, cut: 'agent' }), undefined, 4);
    expect(early.asText).toEqual(early.viaPino);
    expect(early.asText).not.toHaveProperty('status');
  });

  it('leaves out what is absent, as pino does (no principal, no user, no checks, no decision)', () => {
    const { viaPino, asText } = bothLines(state({ principal: undefined, checks: [], decision: undefined, status: undefined, route: undefined }), undefined, 0);
    expect(asText).toEqual(viaPino);
    expect(asText).not.toHaveProperty('agent');
    expect(asText.route).toBe('-');
    const machine = bothLines(state({ principal: { agent: 'a', user: null } as never }), undefined, 0);
    expect(machine.asText).toEqual(machine.viaPino);
    expect(machine.asText).not.toHaveProperty('user');
  });

  it('scrubs tokens wherever they appear: path, agent, checks, the error cause', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl';
    const s = state({
      path: `/cb?code=abcdef123&x=1`,
      principal: { agent: `agent ${jwt}`, user: 'u' } as never,
      checks: [{ user: `user:${jwt}`, relation: 'r', object: 'o', allowed: false, engine: 'embedded' }],
    });
    const err = new WardenError('internal', 'x', { cause: new Error('upstream said Bearer abcdefgh12345678') });
    const { viaPino, asText, text } = bothLines(s, err, 3);
    expect(asText).toEqual(viaPino);
    for (const secret of [jwt, 'abcdef123', 'abcdefgh12345678']) expect(text).not.toContain(secret);
  });

  it('parses as JSON equal to the pino line for random requests (quotes, control characters, unicode, lone surrogates, secrets)', () => {
    const piece = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.constantFrom(
          '"',
          '\\',
          '\n',
          '\r',
          '\t',
          '\b',
          '\f',
          '\u0000',
          '\u0007',
          '\u001f',
          '\u007f',
          '\u2028',
          '\ud800',
          '\udfff',
          'é',
          '中',
          '😀',
          ' ',
          '?',
          '&',
          '=',
          '/',
          'a',
          'Z',
          '0',
        ),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'Bearer abcdefgh12345678',
          ' basic QWxhZGRpbjpvcGVu',
          'DPoP zzzzzzzzzz',
          'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln',
          '?access_token=s3cret',
          '&code=xyz',
          '?t=abc',
          'x'.repeat(90),
        ),
      },
      { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    );
    const text = fc.string({ unit: piece, maxLength: 16 });
    const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const check = fc.record({ user: text, relation: text, object: text, allowed: fc.constantFrom(true, false, null), engine: fc.constant('embedded') });
    const request = fc.record({
      id: text,
      method: fc.oneof(fc.constantFrom('GET', 'POST', 'DELETE'), text),
      path: text,
      route: maybe(fc.record({ name: text })),
      principal: maybe(fc.record({ agent: text, user: fc.option(text, { nil: null }) })),
      mcp: maybe(fc.record({ method: fc.constant('tools/call'), tool: maybe(text) })),
      decision: maybe(fc.constantFrom('allow', 'deny', 'pending', 'error')),
      reason: maybe(text),
      status: maybe(fc.integer({ min: 0, max: 999 })),
      approvalId: maybe(text),
      checks: fc.array(check, { maxLength: 3 }),
    });
    const cause = fc.oneof(
      fc.constant(undefined),
      text.map((m) => new Error(m)),
      text,
      fc.constant({}),
      fc.integer().map((n) => ({ message: n })),
    );
    const error = maybe(fc.record({ status: fc.constantFrom(400, 403, 500, 502, 503), cause }));
    const latency = fc.oneof(fc.nat({ max: 120_000 }), fc.constantFrom(NaN, Infinity));
    fc.assert(
      fc.property(request, error, latency, (r, e, ms) => {
        const err = e && new WardenError('upstream_unavailable', 'x', { status: e.status, cause: e.cause });
        const { viaPino, asText } = bothLines(state(r as unknown as Partial<RequestState>), err, ms);
        expect(wellFormed(asText)).toEqual(wellFormed(viaPino));
        expect(Object.keys(asText)).toEqual(Object.keys(viaPino));
      }),
      { numRuns: 1500 },
    );
  });
});

describe('the audit step writes the line', () => {
  const lineOf = (logger: Logger, lines: string[], decisionLog = false) => {
    const audit = createAudit({ logger, metrics: createDisabledMetrics() }, decisionLog ? ({ record() {} } as never) : undefined);
    audit(state({ startedAt: Date.now() - 5 }));
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it('as text into a Warden logger, at info (debug with the decision log on), setting the level a batching destination reads', () => {
    const { logger, lines } = captured('info');
    expect(lineOf(logger, lines)).toMatchObject([{ level: 'info', audit: true, route: 'pay', msg: 'request' }]);
    const debug = captured('debug');
    expect(lineOf(debug.logger, debug.lines, true)).toMatchObject([{ level: 'debug', audit: true }]);
    const quiet = captured('info');
    expect(lineOf(quiet.logger, quiet.lines, true)).toEqual([]);

    const written: Array<{ level: number | undefined; line: string }> = [];
    const batching = {
      [Symbol.for('pino.metadata')]: true,
      lastLevel: 0,
      write(line: string) {
        written.push({ level: batching.lastLevel, line });
        return true;
      },
    };
    const viaBatch = createLogger({ level: 'info', destination: batching });
    viaBatch.warn('before');
    createAudit({ logger: viaBatch, metrics: createDisabledMetrics() })(state());
    expect(written.map((w) => w.level)).toEqual([40, 30]);
    expect(JSON.parse(written[1].line)).toMatchObject({ audit: true, level: 'info' });
  });

  it('through pino into a logger Warden did not make (its framing is unknown)', () => {
    const lines: string[] = [];
    const foreign = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    expect(lineFraming(foreign, 'info', 'request')).toBeUndefined();
    expect(lineOf(foreign, lines)).toMatchObject([{ level: 30, audit: true, route: 'pay', msg: 'request' }]);
  });
});
