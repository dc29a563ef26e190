/**
 * The embedded engine's tricky cases, each stated the way OpenFGA's
 * `internal/graph/check.go` resolves it: cycles, the depth limit, wildcards and
 * usersets, exclusion and intersection with errors, model-graph pruning,
 * contextual tuples, type restrictions, and the Authorizer wrapper.
 */

import { describe, expect, it } from 'vitest';
import type { TupleKey } from '../../src/authz/authorizer.js';
import { isWardenError } from '../../src/core/errors.js';
import { parseModelDsl } from '../../src/authz/model.js';
import {
  createEmbeddedAuthorizer,
  createEmbeddedEngine,
  DEFAULT_MAX_STEPS,
  fgaCodeOf,
  FGA_ERROR,
  type EmbeddedEngine,
} from '../../src/authz/embedded/index.js';

const t = (object: string, relation: string, user: string, condition?: TupleKey['condition']): TupleKey =>
  condition ? { object, relation, user, condition } : { object, relation, user };

/** A schema 1.1 model with `type user` and the given further types. */
function model(types: string): string {
  return `model\n  schema 1.1\ntype user\n${types}`;
}

function engine(dsl: string, tuples: TupleKey[] = [], maxDepth?: number): EmbeddedEngine {
  return createEmbeddedEngine({ model: parseModelDsl(dsl), tuples, maxDepth });
}

function codeOf(fn: () => unknown): number | undefined | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return fgaCodeOf(err);
  }
}

const GROUPS = model(`type group
  relations
    define member: [user, group#member]
type doc
  relations
    define viewer: [user, group#member]
`);

describe('cycles', () => {
  it('a userset cycle is a deny, not an error or a hang', () => {
    const e = engine(GROUPS, [t('group:a', 'member', 'group:b#member'), t('group:b', 'member', 'group:a#member'), t('group:b', 'member', 'user:bob')]);
    expect(e.check({ user: 'user:anne', relation: 'member', object: 'group:a' })).toBe(false);
    expect(e.check({ user: 'user:bob', relation: 'member', object: 'group:a' })).toBe(true);
  });

  it('a subtracted operand that cycles through other relations denies the whole exclusion', () => {
    // As the server answers (checked against OpenFGA v1.18.1): the cycle flag makes `but not` deny.
    const e = engine(
      model(`type folder
  relations
    define blocked: [user, doc#blocked]
type doc
  relations
    define blocked: [user, folder#blocked]
    define viewer: [user] but not blocked
`),
      [
        t('doc:1', 'viewer', 'user:anne'),
        t('doc:1', 'blocked', 'folder:1#blocked'),
        t('folder:1', 'blocked', 'doc:1#blocked'),
        t('doc:3', 'viewer', 'user:anne'),
      ],
    );
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' })).toBe(false);
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:3' })).toBe(true);
  });

  it('a self-recursive relation that cycles is a plain deny (OpenFGA resolves it with its recursive strategy)', () => {
    const usersets = engine(
      model(`type doc
  relations
    define blocked: [user, doc#blocked]
    define viewer: [user] but not blocked
`),
      [t('doc:1', 'viewer', 'user:anne'), t('doc:1', 'blocked', 'doc:2#blocked'), t('doc:2', 'blocked', 'doc:1#blocked')],
    );
    expect(usersets.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' })).toBe(true);
    const parents = engine(
      model(`type folder
  relations
    define parent: [folder]
    define blocked: [user] or blocked from parent
    define viewer: [user] but not blocked
`),
      [t('folder:1', 'viewer', 'user:anne'), t('folder:1', 'parent', 'folder:2'), t('folder:2', 'parent', 'folder:1')],
    );
    expect(parents.check({ user: 'user:anne', relation: 'viewer', object: 'folder:1' })).toBe(true);
  });

  it('a userset is a member of itself (self-defining), even without tuples', () => {
    const e = engine(GROUPS);
    expect(e.check({ user: 'group:x#member', relation: 'member', object: 'group:x' })).toBe(true);
    expect(e.check({ user: 'group:y#member', relation: 'member', object: 'group:x' })).toBe(false);
    expect(e.listObjects({ user: 'group:x#member', relation: 'member', type: 'group' })).toEqual(['group:x']);
  });
});

describe('resolution depth limit', () => {
  const chain = (length: number): TupleKey[] => {
    const out: TupleKey[] = [];
    for (let i = 0; i < length; i++) out.push(t(`group:g${i}`, 'member', `group:g${i + 1}#member`));
    out.push(t(`group:g${length}`, 'member', 'user:anne'));
    return out;
  };

  it('24 nested groups resolve; 25 exceed the default limit with code 2002', () => {
    expect(engine(GROUPS, chain(24)).check({ user: 'user:anne', relation: 'member', object: 'group:g0' })).toBe(true);
    expect(codeOf(() => engine(GROUPS, chain(25)).check({ user: 'user:anne', relation: 'member', object: 'group:g0' }))).toBe(FGA_ERROR.resolutionTooComplex);
  });

  it('computed usersets do not count towards the depth; maxDepth is configurable', () => {
    const e = engine(GROUPS, chain(3), 3);
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'member', object: 'group:g0' }))).toBe(FGA_ERROR.resolutionTooComplex);
    expect(e.check({ user: 'user:anne', relation: 'member', object: 'group:g1' })).toBe(true);
  });

  it('a branch that is too deep loses to a sibling that allows', () => {
    const tuples = [...chain(30), t('group:g0', 'member', 'user:anne')];
    expect(engine(GROUPS, tuples).check({ user: 'user:anne', relation: 'member', object: 'group:g0' })).toBe(true);
  });

  it('list objects fails with 2002 when a candidate is too deep', () => {
    expect(codeOf(() => engine(GROUPS, chain(30)).listObjects({ user: 'user:anne', relation: 'member', type: 'group' }))).toBe(FGA_ERROR.resolutionTooComplex);
  });
});

describe('resolution step budget', () => {
  // Groups two to a level, each a member of both groups of the level above: 2^levels paths from the top,
  // every one within the depth limit. OpenFGA v1.18.1 answers such a check in milliseconds (its recursive
  // strategy visits each group once); walking every path took 2^(levels+1) steps on the event loop.
  const lattice = (levels: number): TupleKey[] => {
    const out: TupleKey[] = [];
    for (let i = 0; i < levels; i++)
      for (const a of ['a', 'b']) for (const b of ['a', 'b']) out.push(t(`group:${a}${i}`, 'member', `group:${b}${i + 1}#member`));
    return out;
  };

  it('a check past the step budget fails with 2002 instead of walking every path (E.19)', () => {
    const e = engine(GROUPS, [...lattice(22), t('group:b22', 'member', 'user:anne')]);
    // A member is found on the first paths.
    expect(e.check({ user: 'user:anne', relation: 'member', object: 'group:a0' })).toBe(true);
    expect(codeOf(() => e.check({ user: 'user:mallory', relation: 'member', object: 'group:a0' }))).toBe(FGA_ERROR.resolutionTooComplex);
    // Past the budget each remaining sibling costs one step as the walk unwinds: a few per level.
    expect(e.lastSteps).toBeLessThan(DEFAULT_MAX_STEPS + 1_000);
  });

  it('a subtracted operand past the step budget fails the check (503), never counts as not blocked (E.19)', async () => {
    const dsl = model(`type group
  relations
    define member: [user, group#member]
type doc
  relations
    define blocked: [group#member]
    define viewer: [user] but not blocked
`);
    const tuples = [...lattice(22), t('doc:1', 'viewer', 'user:anne'), t('doc:1', 'blocked', 'group:a0#member')];
    const authorizer = createEmbeddedAuthorizer({ model: parseModelDsl(dsl), tuples });
    const outcome = await authorizer.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' }).then(
      (allowed) => `answered ${allowed}`,
      (err: unknown) => (isWardenError(err) ? `${err.code} ${err.reason}` : String(err)),
    );
    expect(outcome).toBe('authz_unavailable fga_2002');
  });
});

describe('wildcards', () => {
  const MODEL = model(`type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user:*, group#member]
    define editor: [user, user:*]
`);
  const e = engine(MODEL, [t('doc:1', 'viewer', 'user:*'), t('doc:1', 'editor', 'user:*'), t('group:eng', 'member', 'user:bob')]);

  it('user:* grants every user of that type', () => {
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' })).toBe(true);
    expect(e.check({ user: 'user:*', relation: 'viewer', object: 'doc:1' })).toBe(true);
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:2' })).toBe(false);
  });

  it('never stands for a userset user', () => {
    expect(e.check({ user: 'group:eng#member', relation: 'viewer', object: 'doc:1' })).toBe(false);
    expect(e.check({ user: 'group:eng#member', relation: 'editor', object: 'doc:1' })).toBe(false);
  });

  it('a wildcard tuple on a relation that does not allow it is refused at load', () => {
    expect(() => engine(MODEL, [t('group:eng', 'member', 'user:*')])).toThrow(/typed wildcard 'user:\*' is not an allowed type restriction/);
  });
});

describe('exclusion and intersection', () => {
  const MODEL = model(`type doc
  relations
    define allowed: [user]
    define blocked: [user, user with cond]
    define guarded: [user with cond]
    define viewer: allowed but not blocked
    define both: allowed and guarded
condition cond(x: int) {
  x < 10
}
`);

  it('base false denies; subtract true denies; base true and subtract false allows', () => {
    const e = engine(MODEL, [t('doc:1', 'allowed', 'user:anne'), t('doc:1', 'allowed', 'user:bob'), t('doc:1', 'blocked', 'user:bob')]);
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' })).toBe(true);
    expect(e.check({ user: 'user:bob', relation: 'viewer', object: 'doc:1' })).toBe(false);
    expect(e.check({ user: 'user:carl', relation: 'viewer', object: 'doc:1' })).toBe(false);
  });

  it('an error in the subtracted operand fails the check only when the base allows', () => {
    const e = engine(MODEL, [
      t('doc:1', 'allowed', 'user:anne'),
      t('doc:1', 'blocked', 'user:anne', { name: 'cond' }),
      t('doc:1', 'blocked', 'user:bob', { name: 'cond' }),
    ]);
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' }))).toBe(FGA_ERROR.validation);
    expect(e.check({ user: 'user:bob', relation: 'viewer', object: 'doc:1' })).toBe(false);
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1', context: { x: 50 } })).toBe(true);
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1', context: { x: 5 } })).toBe(false);
  });

  it('intersection: a false operand wins over an erroring one', () => {
    const e = engine(MODEL, [
      t('doc:1', 'guarded', 'user:anne', { name: 'cond' }),
      t('doc:1', 'guarded', 'user:bob', { name: 'cond' }),
      t('doc:1', 'allowed', 'user:bob'),
    ]);
    expect(e.check({ user: 'user:anne', relation: 'both', object: 'doc:1' })).toBe(false);
    expect(codeOf(() => e.check({ user: 'user:bob', relation: 'both', object: 'doc:1' }))).toBe(FGA_ERROR.validation);
    expect(e.check({ user: 'user:bob', relation: 'both', object: 'doc:1', context: { x: 1 } })).toBe(true);
  });
});

describe('tuple-to-userset and model-graph pruning', () => {
  const MODEL = model(`type employee
type folder
  relations
    define viewer: [user]
type team
  relations
    define member: [user]
type doc
  relations
    define parent: [folder with cond, team]
    define viewer: viewer from parent
condition cond(x: int) {
  x < 10
}
`);

  it('follows parents and skips parent types that lack the computed relation', () => {
    const e = engine(MODEL, [
      t('doc:1', 'parent', 'folder:f', { name: 'cond', context: { x: 1 } }),
      t('doc:1', 'parent', 'team:t'),
      t('folder:f', 'viewer', 'user:anne'),
    ]);
    expect(e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' })).toBe(true);
    expect(e.check({ user: 'user:bob', relation: 'viewer', object: 'doc:1' })).toBe(false);
  });

  it('a user type with no path to the relation is denied without evaluating conditions', () => {
    const e = engine(MODEL, [t('doc:1', 'parent', 'folder:f', { name: 'cond' })]);
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' }))).toBe(FGA_ERROR.validation);
    expect(e.check({ user: 'employee:eve', relation: 'viewer', object: 'doc:1' })).toBe(false);
  });
});

describe('request validation and contextual tuples', () => {
  const e = engine(GROUPS, [t('group:eng', 'member', 'user:anne')]);

  it('rejects malformed or unknown ids with 2000', () => {
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'member', object: 'project:x' }))).toBe(FGA_ERROR.validation);
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'owner', object: 'group:eng' }))).toBe(FGA_ERROR.validation);
    expect(codeOf(() => e.check({ user: 'a:b:c', relation: 'member', object: 'group:eng' }))).toBe(FGA_ERROR.validation);
    expect(codeOf(() => e.check({ user: 'user:an ne', relation: 'member', object: 'group:eng' }))).toBe(FGA_ERROR.validation);
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'member', object: 'group:*' }))).toBe(FGA_ERROR.validation);
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'member', object: 'group:eng', context: { k: 'a\u0000b' } }))).toBe(FGA_ERROR.validation);
  });

  it('list objects: 2021 for an unknown type, 2022 for an unknown relation', () => {
    expect(codeOf(() => e.listObjects({ user: 'user:anne', relation: 'member', type: 'project' }))).toBe(FGA_ERROR.typeNotFound);
    expect(codeOf(() => e.listObjects({ user: 'user:anne', relation: 'owner', type: 'group' }))).toBe(FGA_ERROR.relationNotFound);
    expect(e.listObjects({ user: 'user:anne', relation: 'member', type: 'group' })).toEqual(['group:eng']);
  });

  it('contextual tuples count for this request only', () => {
    const contextualTuples = [t('group:ops', 'member', 'user:bob'), t('doc:9', 'viewer', 'group:ops#member')];
    expect(e.check({ user: 'user:bob', relation: 'viewer', object: 'doc:9', contextualTuples })).toBe(true);
    expect(e.check({ user: 'user:bob', relation: 'viewer', object: 'doc:9' })).toBe(false);
    expect(e.listObjects({ user: 'user:bob', relation: 'viewer', type: 'doc', contextualTuples })).toEqual(['doc:9']);
  });

  it('a contextual tuple the model would not accept is 2027', () => {
    for (const bad of [
      t('project:x', 'member', 'user:bob'),
      t('group:x', 'owner', 'user:bob'),
      t('doc:1', 'viewer', 'user:*'),
      t('doc:1', 'viewer', 'group:x#owner'),
      t('doc:1', 'viewer', 'team:x'),
    ]) {
      expect(codeOf(() => e.check({ user: 'user:bob', relation: 'member', object: 'group:eng', contextualTuples: [bad] }))).toBe(FGA_ERROR.invalidTuple);
    }
  });

  it('more than 100 contextual tuples are refused', () => {
    const many = Array.from({ length: 101 }, (_, i) => t(`group:g${i}`, 'member', 'user:bob'));
    expect(codeOf(() => e.check({ user: 'user:bob', relation: 'member', object: 'group:eng', contextualTuples: many }))).toBe(FGA_ERROR.validation);
  });
});

describe('list objects and conditions', () => {
  const MODEL = model(`type group
  relations
    define member: [user]
type doc
  relations
    define viewer: [user, user with cond, group#member with cond]
condition cond(x: int) {
  x < 10
}
`);

  it('fails only on a condition it meets walking from the user, like the server', () => {
    const e = engine(MODEL, [t('group:x', 'member', 'user:bob'), t('doc:1', 'viewer', 'group:x#member', { name: 'cond' }), t('doc:2', 'viewer', 'user:anne')]);
    // The unevaluable tuple is bob's way in, not anne's: her list is unaffected.
    expect(e.listObjects({ user: 'user:anne', relation: 'viewer', type: 'doc' })).toEqual(['doc:2']);
    expect(codeOf(() => e.listObjects({ user: 'user:bob', relation: 'viewer', type: 'doc' }))).toBe(FGA_ERROR.validation);
    expect(e.listObjects({ user: 'user:bob', relation: 'viewer', type: 'doc', context: { x: 1 } })).toEqual(['doc:1']);
    // A check of doc:1 reads the conditioned userset tuple whoever asks.
    expect(codeOf(() => e.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' }))).toBe(FGA_ERROR.validation);
  });
});

describe('stored tuples and type restrictions', () => {
  it('refuses a tuple the model does not allow, or ignores it when asked to', () => {
    const model = parseModelDsl(GROUPS);
    const bad = t('doc:1', 'viewer', 'group:eng');
    expect(() => createEmbeddedEngine({ model, tuples: [bad] })).toThrow(/tuple 1 \(doc:1#viewer@group:eng\): type 'group' is not an allowed type restriction/);
    const lenient = createEmbeddedEngine({ model, tuples: [bad, t('doc:1', 'viewer', 'user:anne')], invalidTuples: 'ignore' });
    expect(lenient.tupleCount).toBe(1);
    expect(lenient.ignoredTuples.map((x) => x.tuple)).toEqual([bad]);
    expect(lenient.check({ user: 'user:anne', relation: 'viewer', object: 'doc:1' })).toBe(true);
  });

  it('refuses duplicate tuples', () => {
    expect(() => engine(GROUPS, [t('group:a', 'member', 'user:x'), t('group:a', 'member', 'user:x')])).toThrow(/appears twice/);
  });

  it('refuses a conditioned tuple whose relation does not allow the condition, or unknown context keys', () => {
    const dsl = model(`type doc
  relations
    define viewer: [user, user with cond]
condition cond(x: int) {
  x < 10
}
`);
    expect(() => engine(dsl, [t('doc:1', 'viewer', 'user:a', { name: 'nope' })])).toThrow(/undefined condition/);
    expect(() => engine(dsl, [t('doc:1', 'viewer', 'user:a', { name: 'cond', context: { y: 1 } })])).toThrow(/invalid context parameter: y/);
    expect(() => engine(dsl, [t('doc:1', 'viewer', 'user:a', { name: 'cond', context: { x: 'ten' } })])).toThrow(/failed to convert/);
  });
});

describe('the Authorizer wrapper', () => {
  const authorizer = createEmbeddedAuthorizer({
    model: parseModelDsl(GROUPS),
    tuples: [t('group:eng', 'member', 'user:anne'), t('doc:1', 'viewer', 'group:eng#member'), t('doc:2', 'viewer', 'user:bob')],
  });

  it('batchCheck answers in request order', async () => {
    const requests = [
      { user: 'user:anne', relation: 'viewer', object: 'doc:1' },
      { user: 'user:bob', relation: 'viewer', object: 'doc:1' },
      { user: 'user:bob', relation: 'viewer', object: 'doc:2' },
      { user: 'user:anne', relation: 'viewer', object: 'doc:2' },
      { user: 'user:anne', relation: 'member', object: 'group:eng' },
      { user: 'user:bob', relation: 'member', object: 'group:eng' },
    ];
    const expected = [true, false, true, false, true, false];
    expect(await authorizer.batchCheck(requests)).toEqual(expected);
    expect(await authorizer.batchCheck([...requests].reverse())).toEqual([...expected].reverse());
    for (const [i, r] of requests.entries()) expect(await authorizer.check(r)).toBe(expected[i]);
  });

  it('fails closed: evaluation errors become 503 authz_unavailable carrying the OpenFGA code', async () => {
    const err = await authorizer.check({ user: 'user:anne', relation: 'owner', object: 'doc:1' }).catch((e: unknown) => e);
    expect(isWardenError(err, 'authz_unavailable')).toBe(true);
    expect((err as { reason: string }).reason).toBe('fga_2000');
    expect(fgaCodeOf(err)).toBe(2000);
    await expect(
      authorizer.batchCheck([
        { user: 'user:anne', relation: 'viewer', object: 'doc:1' },
        { user: 'x', relation: 'viewer', object: 'doc:1' },
      ]),
    ).rejects.toMatchObject({
      code: 'authz_unavailable',
    });
  });

  it('reports the model relations and answers list objects', async () => {
    expect([...(authorizer.relations().get('doc') ?? [])]).toEqual(['viewer']);
    expect(authorizer.relations().get('user')?.size).toBe(0);
    expect(await authorizer.listObjects({ user: 'user:anne', relation: 'viewer', type: 'doc' })).toEqual(['doc:1']);
  });

  it('refuses an invalid model as config_invalid, and refuses calls after close', async () => {
    expect(() => createEmbeddedAuthorizer({ model: parseModelDsl(GROUPS), tuples: [t('doc:1', 'viewer', 'doc:2')] })).toThrow(
      expect.objectContaining({ code: 'config_invalid' }),
    );
    const a = createEmbeddedAuthorizer({ model: parseModelDsl(GROUPS) });
    await a.ready();
    await a.close();
    await expect(a.check({ user: 'user:x', relation: 'member', object: 'group:y' })).rejects.toMatchObject({ code: 'authz_unavailable' });
  });
});
