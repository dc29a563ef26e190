/**
 * The embedded engine's step budget (`checkWithin`) and the decision cache's
 * use of it: a check that resolves in a few steps is answered without the
 * cache (no key, no entry), a costlier one goes through the cache as before,
 * and either way the answer (or error) is exactly `check`'s.
 */

import { describe, expect, it } from 'vitest';
import type { TupleKey } from '../../src/authz/authorizer.js';
import { withDecisionCache } from '../../src/authz/cache.js';
import { parseModelDsl } from '../../src/authz/model.js';
import { CHEAP_CHECK_STEPS, createEmbeddedAuthorizer, createEmbeddedEngine, fgaCodeOf } from '../../src/authz/embedded/index.js';
import { isWardenError } from '../../src/core/errors.js';
import { seededRandom } from '../support/random.js';

const MODEL = parseModelDsl(`model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define blocked: [user]
    define viewer: [user, group#member] or viewer from parent
    define can_read: viewer but not blocked
`);

const t = (object: string, relation: string, user: string): TupleKey => ({ object, relation, user });

/** A small deterministic pseudo-random generator (mulberry32). */
const rng = seededRandom;

const USERS = ['user:a', 'user:b', 'user:c', 'user:d'];
const GROUPS = ['group:1', 'group:2', 'group:3', 'group:4', 'group:5'];
const FOLDERS = ['folder:1', 'folder:2', 'folder:3'];
const DOCS = ['doc:1', 'doc:2', 'doc:3'];

function randomTuples(seed: number, n: number): TupleKey[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const out = new Map<string, TupleKey>();
  while (out.size < n) {
    const k = r();
    let tuple: TupleKey;
    if (k < 0.35) tuple = t(pick(GROUPS), 'member', r() < 0.5 ? pick(USERS) : r() < 0.2 ? 'user:*' : `${pick(GROUPS)}#member`);
    else if (k < 0.55) tuple = t(pick(FOLDERS), 'viewer', r() < 0.5 ? pick(USERS) : `${pick(GROUPS)}#member`);
    else if (k < 0.75) tuple = t(pick(DOCS), 'parent', pick(FOLDERS));
    else if (k < 0.9) tuple = t(pick(DOCS), 'viewer', r() < 0.5 ? pick(USERS) : `${pick(GROUPS)}#member`);
    else tuple = t(pick(DOCS), 'blocked', pick(USERS));
    if (tuple.user === `${tuple.object}#${tuple.relation}`) continue;
    out.set(`${tuple.object}#${tuple.relation}@${tuple.user}`, tuple);
  }
  return [...out.values()];
}

/** `fn`'s answer, or its OpenFGA error code. */
function outcome(fn: () => boolean | undefined): boolean | undefined | string {
  try {
    return fn();
  } catch (err) {
    return `error ${fgaCodeOf(err)}`;
  }
}

describe('embedded engine: checkWithin (step budget)', () => {
  it('is check whenever it answers, and answers exactly when the budget covers the steps check took', () => {
    let compared = 0;
    let cut = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const engine = createEmbeddedEngine({ model: MODEL, tuples: randomTuples(seed, 8 + (seed % 25)) });
      for (const user of [...USERS, 'group:1#member']) {
        for (const [relation, objects] of [
          ['member', GROUPS],
          ['viewer', FOLDERS],
          ['viewer', DOCS],
          ['can_read', DOCS],
        ] as const) {
          for (const object of objects) {
            const request = { user, relation, object };
            const want = outcome(() => engine.check(request));
            const steps = engine.lastSteps;
            expect(steps, `${object}#${relation}@${user}`).toBeGreaterThan(0);
            for (const limit of [0, 1, 2, 3, 5, 8, steps - 1, steps, steps + 1, CHEAP_CHECK_STEPS]) {
              if (limit < 0) continue;
              const got = outcome(() => engine.checkWithin(request, limit));
              const where = `seed ${seed}: ${object}#${relation}@${user} within ${limit} (check took ${steps})`;
              if (limit >= steps) expect(got, where).toBe(want);
              else {
                expect(got, where).toBeUndefined();
                cut++;
              }
              compared++;
            }
            // The budget never leaks into the next check.
            expect(outcome(() => engine.check(request))).toBe(want);
          }
        }
      }
    }
    expect(compared).toBeGreaterThan(10_000);
    expect(cut).toBeGreaterThan(1_000);
  });

  it('an error past the budget is not the answer (undefined); within the budget it is thrown', () => {
    // A chain of 30 groups: resolving it exceeds the depth limit (25), error 2002.
    const tuples = [t('group:0', 'member', 'user:a')];
    for (let i = 1; i <= 30; i++) tuples.push(t(`group:${i}`, 'member', `group:${i - 1}#member`));
    const engine = createEmbeddedEngine({ model: MODEL, tuples });
    const request = { user: 'user:z', relation: 'member', object: 'group:30' };
    expect(outcome(() => engine.check(request))).toBe('error 2002');
    expect(engine.checkWithin(request, 5)).toBeUndefined();
    expect(outcome(() => engine.checkWithin(request, 10_000))).toBe('error 2002');
    // A union whose first operand errors within the budget and whose second
    // (costly) operand allows: past the budget the error is not the answer either.
    const wide = [...tuples, t('doc:x', 'viewer', 'group:30#member'), t('folder:39', 'viewer', 'user:z')];
    for (let i = 0; i < 40; i++) wide.push(t('doc:x', 'parent', `folder:${i}`));
    const union = createEmbeddedEngine({ model: MODEL, tuples: wide });
    const read = { user: 'user:z', relation: 'viewer', object: 'doc:x' };
    expect(union.check(read)).toBe(true);
    const steps = union.lastSteps;
    expect(steps).toBeGreaterThan(40);
    expect(outcome(() => union.checkWithin(read, 30))).toBeUndefined();
    expect(union.checkWithin(read, steps)).toBe(true);
    // Request validation is not part of the budget: refused at once.
    expect(outcome(() => engine.checkWithin({ user: 'user:a', relation: 'nope', object: 'doc:1' }, 0))).toBe('error 2000');
  });
});

describe('decision cache in front of the embedded engine', () => {
  // doc:wide has 40 parent folders and user:a views only the last one: well over CHEAP_CHECK_STEPS.
  const tuples = [t('doc:cheap', 'viewer', 'user:a')];
  for (let i = 0; i < 40; i++) tuples.push(t('doc:wide', 'parent', `folder:${i}`));
  tuples.push(t('folder:39', 'viewer', 'user:a'));

  it('answers cheap checks without the cache and caches costly ones, with the engine’s answers', () => {
    const authorizer = createEmbeddedAuthorizer({ model: MODEL, tuples });
    const cache = withDecisionCache(authorizer, { ttlMs: 60_000, maxEntries: 100 });
    const cheap = { user: 'user:a', relation: 'can_read', object: 'doc:cheap' };
    const wide = { user: 'user:a', relation: 'can_read', object: 'doc:wide' };
    const wideDenied = { user: 'user:b', relation: 'can_read', object: 'doc:wide' };
    authorizer.evaluator.check(wide);
    expect(authorizer.evaluator.lastSteps).toBeGreaterThan(CHEAP_CHECK_STEPS);
    expect(cache.batchCheckSync!([cheap, wide, wideDenied])).toEqual([true, true, false]);
    expect(cache.stats()).toMatchObject({ misses: 2, hits: 0, size: 2 });
    expect(cache.batchCheckSync!([cheap, wide, wideDenied])).toEqual([true, true, false]);
    expect(cache.stats()).toMatchObject({ misses: 2, hits: 2, size: 2 });
    // The async API agrees.
    return expect(cache.batchCheck([cheap, wide, wideDenied])).resolves.toEqual([true, true, false]);
  });

  it('a closed engine fails closed on the cheap path too', async () => {
    const authorizer = createEmbeddedAuthorizer({ model: MODEL, tuples });
    const cache = withDecisionCache(authorizer, { ttlMs: 60_000, maxEntries: 100 });
    await authorizer.close();
    let error: unknown;
    try {
      cache.batchCheckSync!([{ user: 'user:a', relation: 'can_read', object: 'doc:cheap' }]);
    } catch (err) {
      error = err;
    }
    expect(isWardenError(error) && error.code).toBe('authz_unavailable');
  });
});
