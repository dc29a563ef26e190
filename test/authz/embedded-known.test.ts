/**
 * The embedded authorizer's remembered cheap answers (`checkIfKnown`): a check
 * the engine answered cheaply is answered again by one lookup, without
 * evaluating; what is remembered is exactly what was evaluated (allow and
 * deny), a malformed request never borrows a valid check's answer, checks with
 * context or contextual tuples are never remembered, the memory is bounded,
 * and a closed engine fails closed. Through the decision cache's synchronous
 * path (the authorize stage), a remembered answer still counts as one engine
 * observation and never as a cache lookup.
 */

import { describe, expect, it } from 'vitest';
import type { CheckRequest, TupleKey } from '../../src/authz/authorizer.js';
import { withDecisionCache } from '../../src/authz/cache.js';
import { parseModelDsl } from '../../src/authz/model.js';
import { withCheckTiming } from '../../src/authz/timed.js';
import { createEmbeddedAuthorizer, FGA_ERROR, fgaCodeOf, KNOWN_ANSWERS } from '../../src/authz/embedded/index.js';
import { isWardenError } from '../../src/core/errors.js';
import { createMetrics } from '../../src/observability/metrics.js';

const MODEL = parseModelDsl(`model
  schema 1.1
type user
type doc
  relations
    define viewer: [user, user with weekday]
    define can_read: viewer
condition weekday(day: string) {
  day != "sunday"
}
`);

const t = (object: string, relation: string, user: string): TupleKey => ({ object, relation, user });
const TUPLES = [t('doc:1', 'viewer', 'user:a'), { ...t('doc:2', 'viewer', 'user:a'), condition: { name: 'weekday' } }];

/** The authorizer, and how many times its evaluator ran. */
function counted() {
  const authorizer = createEmbeddedAuthorizer({ model: MODEL, tuples: TUPLES });
  const evaluator = authorizer.evaluator;
  const calls = { n: 0 };
  const checkWithin = evaluator.checkWithin.bind(evaluator);
  (evaluator as { checkWithin: typeof checkWithin }).checkWithin = (request, steps) => {
    calls.n++;
    return checkWithin(request, steps);
  };
  return { authorizer, calls };
}

const allowed: CheckRequest = { user: 'user:a', relation: 'can_read', object: 'doc:1' };
const denied: CheckRequest = { user: 'user:b', relation: 'can_read', object: 'doc:1' };

/** The thrown error's OpenFGA code (or `none`). */
function thrownCode(fn: () => unknown): number | string | undefined {
  try {
    fn();
    return 'none';
  } catch (err) {
    return fgaCodeOf(err);
  }
}

describe('embedded authorizer: remembered cheap answers', () => {
  it('answers a repeated check (allowed and denied) from memory, without evaluating, with what was evaluated', () => {
    const { authorizer, calls } = counted();
    expect(authorizer.checkIfKnown(allowed)).toBeUndefined();
    expect(authorizer.checkIfKnown(denied)).toBeUndefined();
    expect(authorizer.checkIfCheap(allowed)).toBe(true);
    expect(authorizer.checkIfCheap(denied)).toBe(false);
    expect(calls.n).toBe(2);
    // Fresh but equal strings (as each request renders them) find the same answers.
    expect(authorizer.checkIfKnown({ user: 'user:' + 'a', relation: 'can_' + 'read', object: 'doc:' + '1' })).toBe(true);
    expect(authorizer.checkIfKnown({ ...denied })).toBe(false);
    expect(authorizer.checkIfKnown(allowed)).toBe(true);
    expect(calls.n).toBe(2);
    // Another check is not known.
    expect(authorizer.checkIfKnown({ ...allowed, object: 'doc:2' })).toBeUndefined();
    expect(authorizer.checkIfKnown({ ...allowed, relation: 'viewer' })).toBeUndefined();
  });

  it('never remembers a check with context or contextual tuples (they can change its answer)', () => {
    const { authorizer } = counted();
    const weekday = { user: 'user:a', relation: 'can_read', object: 'doc:2', context: { day: 'monday' } };
    const sunday = { ...weekday, context: { day: 'sunday' } };
    expect(authorizer.checkIfCheap(weekday)).toBe(true);
    expect(authorizer.checkIfKnown(weekday)).toBeUndefined();
    expect(authorizer.checkIfKnown(sunday)).toBeUndefined();
    expect(authorizer.checkIfCheap(sunday)).toBe(false);
    const contextual = { ...denied, contextualTuples: [t('doc:1', 'viewer', 'user:b')] };
    expect(authorizer.checkIfCheap(contextual)).toBe(true);
    expect(authorizer.checkIfKnown(contextual)).toBeUndefined();
    // ...nor lets such a check's answer stand in for the plain one.
    expect(authorizer.checkIfKnown(denied)).toBeUndefined();
    expect(authorizer.checkIfCheap(denied)).toBe(false);
  });

  it('a malformed request never borrows a valid check’s answer: it is evaluated and refused', () => {
    const { authorizer } = counted();
    const cache = withDecisionCache(authorizer, { ttlMs: 60_000, maxEntries: 100 });
    expect(cache.batchCheckSync!([allowed])).toEqual([true]);
    expect(authorizer.checkIfKnown(allowed)).toBe(true);
    // Each spells the remembered check's fields with the boundaries moved (or a separator inside a field).
    const forged: CheckRequest[] = [
      { user: 'user:a', relation: 'can_rea', object: 'ddoc:1' },
      { user: 'ser:a', relation: 'can_read', object: 'doc:1u' },
      { user: 'doc:1 user:a', relation: 'can_read', object: '' },
      { user: 'user:a', relation: 'can_read doc:1', object: '' },
      { user: '1 user:a', relation: 'can_read', object: 'doc:' },
      { user: 'user:a', relation: 'can_read#doc:1', object: '' },
      { user: 'doc:1#user:a', relation: 'can_read', object: '' },
      { user: 'doc:1:user:a', relation: 'can_read', object: '' },
    ];
    for (const request of forged) {
      expect(authorizer.checkIfKnown(request)).toBeUndefined();
      expect(thrownCode(() => cache.batchCheckSync!([request]))).toBe(FGA_ERROR.validation);
    }
    // Non-string fields are never looked up.
    expect(authorizer.checkIfKnown({ user: undefined, relation: 'can_read', object: 'doc:1' } as unknown as CheckRequest)).toBeUndefined();
  });

  it(`keeps at most ${KNOWN_ANSWERS} answers: past that it forgets and evaluates again`, () => {
    const { authorizer, calls } = counted();
    authorizer.checkIfCheap(allowed);
    for (let i = 0; i < KNOWN_ANSWERS; i++) authorizer.checkIfCheap({ user: `user:u${i}`, relation: 'can_read', object: 'doc:1' });
    expect(calls.n).toBe(KNOWN_ANSWERS + 1);
    expect(authorizer.checkIfKnown(allowed)).toBeUndefined();
    // The newest one is still known.
    expect(authorizer.checkIfKnown({ user: `user:u${KNOWN_ANSWERS - 1}`, relation: 'can_read', object: 'doc:1' })).toBe(false);
  });

  it('a closed engine knows nothing and fails closed, even for a check it remembered', async () => {
    const { authorizer } = counted();
    const cache = withDecisionCache(authorizer, { ttlMs: 60_000, maxEntries: 100 });
    expect(cache.batchCheckSync!([allowed])).toEqual([true]);
    await authorizer.close();
    expect(authorizer.checkIfKnown(allowed)).toBeUndefined();
    let error: unknown;
    try {
      cache.batchCheckSync!([allowed]);
    } catch (err) {
      error = err;
    }
    expect(isWardenError(error) && error.code).toBe('authz_unavailable');
  });
});

describe('decision cache (synchronous path) in front of remembered answers', () => {
  it('evaluates a repeated cheap check once; each check is one engine observation and no cache lookup', () => {
    const { authorizer, calls } = counted();
    const metrics = createMetrics();
    const cache = withDecisionCache(withCheckTiming(authorizer, metrics), { ttlMs: 60_000, maxEntries: 100, metrics });
    for (let i = 0; i < 5; i++) expect(cache.batchCheckSync!([{ ...allowed }, { ...denied }])).toEqual([true, false]);
    expect(calls.n).toBe(2);
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 0, size: 0 });
    const text = metrics.render();
    expect(text).toMatch(/^warden_authz_check_duration_seconds_count\{engine="embedded"\} 10$/m);
    expect(text).not.toMatch(/^warden_authz_cache_total\{[^}]*\} [1-9]/m);
  });
});
