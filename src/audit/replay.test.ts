import { describe, expect, it } from 'vitest';
import type { EvaluationResult } from '../gateway/evaluator.js';
import type { DecisionRecord } from './record.js';
import { changeOf, parseAllowFilter, recordedOutcome } from './replay.js';

const rec = (r: Partial<DecisionRecord>): DecisionRecord => ({
  time: 't',
  id: 'i',
  route: 'r',
  decision: 'allow',
  status: 200,
  latency_ms: 1,
  method: 'GET',
  path: '/',
  ...r,
});
const now = (r: Partial<EvaluationResult>): EvaluationResult => ({ outcome: 'allow', status: 200, checks: [], ...r });

describe('replay: what a record was', () => {
  it('takes what enforce mode would have done on a shadow route', () => {
    expect(recordedOutcome(rec({ mode: 'shadow', shadow: { outcome: 'would_deny', code: 'forbidden' } }))).toEqual({ outcome: 'deny', code: 'forbidden' });
    expect(recordedOutcome(rec({ mode: 'shadow', shadow: { outcome: 'would_hold' } }))).toMatchObject({ outcome: 'hold' });
    expect(recordedOutcome(rec({ mode: 'shadow', shadow: { outcome: 'allow' } }))).toEqual({ outcome: 'allow' });
  });

  it('counts approvals as holds, and post-policy failures as allowed', () => {
    expect(recordedOutcome(rec({ approval: { id: 'a', outcome: 'approved' } }))).toMatchObject({ outcome: 'hold' });
    expect(recordedOutcome(rec({ decision: 'deny', code: 'approval_denied', status: 403 }))).toMatchObject({ outcome: 'hold' });
    expect(recordedOutcome(rec({ decision: 'deny', code: 'connection_required', status: 403 }))).toEqual({ outcome: 'allow' });
    expect(recordedOutcome(rec({ decision: 'error', error: 'upstream_unavailable', status: 502 }))).toEqual({ outcome: 'allow' });
  });

  it('does not judge what policy did not decide, and says why', () => {
    expect(recordedOutcome(rec({ decision: 'deny', code: 'rate_limited', status: 429 }))).toEqual({ skip: expect.stringContaining('rate_limited') });
    expect(recordedOutcome(rec({ decision: 'deny', code: 'bad_request', status: 400 }))).toEqual({ skip: expect.stringContaining('raw request') });
    expect(recordedOutcome(rec({ decision: 'deny', code: 'forbidden', reason: 'tool_not_pinned', status: 403 }))).toEqual({
      skip: expect.stringContaining('pinning'),
    });
    expect(recordedOutcome(rec({ decision: 'error', error: 'authz_unavailable', status: 503 }))).toEqual({
      skip: expect.stringContaining('authz_unavailable'),
    });
    // Records written before `code` existed: the status names it.
    expect(recordedOutcome(rec({ decision: 'deny', status: 404 }))).toEqual({ outcome: 'deny', code: 'not_found', status: 404 });
  });
});

describe('replay: changes and filters', () => {
  it('names each kind of change', () => {
    expect(changeOf({ outcome: 'allow' }, now({ outcome: 'deny', code: 'forbidden' }))).toBe('allow->deny');
    expect(changeOf({ outcome: 'deny', code: 'forbidden' }, now({}))).toBe('deny->allow');
    expect(changeOf({ outcome: 'deny', code: 'forbidden' }, now({ outcome: 'hold' }))).toBe('new-hold');
    expect(changeOf({ outcome: 'hold' }, now({ outcome: 'deny', code: 'forbidden' }))).toBe('dropped-hold');
    expect(changeOf({ outcome: 'deny', code: 'forbidden', status: 403 }, now({ outcome: 'deny', code: 'not_found', status: 404 }))).toBe('code');
    expect(changeOf({ outcome: 'deny', code: 'forbidden', status: 403 }, now({ outcome: 'deny', code: 'forbidden', status: 403 }))).toBeUndefined();
    expect(changeOf({ outcome: 'allow' }, now({ outcome: 'error', code: 'authz_unavailable' }))).toBe('error');
  });

  it('parses --allow and refuses unknown keys and changes', () => {
    expect(parseAllowFilter('route=payments|refunds,change=deny->allow')).toEqual({
      source: 'route=payments|refunds,change=deny->allow',
      route: ['payments', 'refunds'],
      change: ['deny->allow'],
    });
    expect(() => parseAllowFilter('colour=red')).toThrow(/unknown key colour/);
    expect(() => parseAllowFilter('change=sideways')).toThrow(/unknown change sideways/);
    expect(() => parseAllowFilter('route')).toThrow(/key=value/);
  });
});
