/**
 * What one embedded engine carries from a check to the next: the user and
 * relation that last passed validation (not validated again while they
 * repeat) and the scope of the last check without context or contextual
 * tuples (reused for the same user). Neither may change an answer, an error
 * or its message: a long-lived engine must say exactly what a fresh engine
 * says for every request of a random sequence mixing valid and malformed
 * fields, stored and unknown users, usersets, wildcards, context, contextual
 * tuples and list-objects calls.
 */

import { describe, expect, it } from 'vitest';
import type { CheckRequest, TupleKey } from '../../src/authz/authorizer.js';
import { parseModelDsl } from '../../src/authz/model.js';
import { createEmbeddedEngine, fgaCodeOf, type EmbeddedEngine } from '../../src/authz/embedded/index.js';
import { seededRandom } from '../support/random.js';

const MODEL = parseModelDsl(`model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type doc
  relations
    define parent: [folder]
    define viewer: [user, user:*, group#member, user with office] or viewer from parent
    define can_read: viewer
type folder
  relations
    define viewer: [user, group#member]
condition office(ip: ipaddress, cidr: string) {
  ip.in_cidr(cidr)
}
`);

const t = (object: string, relation: string, user: string, condition?: TupleKey['condition']): TupleKey =>
  condition ? { object, relation, user, condition } : { object, relation, user };

const TUPLES: TupleKey[] = [
  t('group:1', 'member', 'user:a'),
  t('group:2', 'member', 'group:1#member'),
  t('group:3', 'member', 'user:*'),
  t('folder:1', 'viewer', 'group:2#member'),
  t('doc:1', 'parent', 'folder:1'),
  t('doc:2', 'viewer', 'user:b'),
  t('doc:3', 'viewer', 'user:*'),
  t('doc:4', 'viewer', 'user:c', { name: 'office', context: { cidr: '10.0.0.0/8' } }),
];

const USERS = [
  'user:a',
  'user:b',
  'user:c',
  'user:zz', // not a stored node
  'user:*',
  'group:1#member',
  'group:9#member', // a userset whose object is not stored
  'group:1#nope',
  'unknown:x',
  'nouser',
  'user a',
  '',
  'u',
];
const RELATIONS = ['can_read', 'viewer', 'member', 'parent', 'nope', 'bad#rel', '', 'vie wer'];
const OBJECTS = ['doc:1', 'doc:2', 'doc:3', 'doc:4', 'doc:new', 'folder:1', 'group:2', 'group:8', 'group:9', 'doc:*', 'bad', 'unknown:1', 'doc: 1', 'd'];
const CONTEXTS = [undefined, undefined, undefined, { ip: '10.1.2.3' }, { ip: '192.168.0.1' }, {}];
const CONTEXTUAL = [undefined, undefined, undefined, [t('doc:new', 'viewer', 'user:zz')], [t('folder:1', 'viewer', 'user:b')], []];

/** What a call says: its answer, or its error's code and message. */
function said(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (err) {
    return { code: fgaCodeOf(err), message: (err as Error).message };
  }
}

const engine = (): EmbeddedEngine => createEmbeddedEngine({ model: MODEL, tuples: TUPLES });

describe('embedded engine: what a check carries to the next', () => {
  for (const seed of [1, 2, 3]) {
    it(`a long-lived engine answers (and refuses) exactly as a fresh one, seed ${seed}`, () => {
      const r = seededRandom(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
      // Runs of the same user and relation (as a route's checks are) with now and then another field.
      const long = engine();
      let user = pick(USERS);
      let relation = pick(RELATIONS);
      let compared = 0;
      for (let i = 0; i < 600; i++) {
        if (r() < 0.3) user = pick(USERS);
        if (r() < 0.3) relation = pick(RELATIONS);
        const request: CheckRequest = { user, relation, object: pick(OBJECTS) };
        const context = r() < 0.25 ? pick(CONTEXTS) : undefined;
        const contextual = r() < 0.25 ? pick(CONTEXTUAL) : undefined;
        if (context !== undefined) request.context = context;
        if (contextual !== undefined) request.contextualTuples = contextual;
        const kind = r();
        if (kind < 0.1) {
          const list = { user, relation, type: pick(['doc', 'folder', 'group']), context, contextualTuples: contextual };
          expect(
            said(() => long.listObjects(list)),
            JSON.stringify(list),
          ).toEqual(said(() => engine().listObjects(list)));
        } else if (kind < 0.3) {
          const steps = Math.floor(r() * 6);
          expect(
            said(() => long.checkWithin(request, steps)),
            JSON.stringify(request),
          ).toEqual(said(() => engine().checkWithin(request, steps)));
        } else {
          expect(
            said(() => long.check(request)),
            JSON.stringify(request),
          ).toEqual(said(() => engine().check(request)));
        }
        compared++;
      }
      expect(compared).toBe(600);
    });
  }

  it('a valid user and relation, then a malformed or unknown field beside them: refused with the fresh engine’s message', () => {
    const long = engine();
    expect(long.check({ user: 'user:a', relation: 'can_read', object: 'doc:1' })).toBe(true);
    for (const request of [
      { user: 'user:a', relation: 'can_read', object: 'doc: 1' },
      { user: 'user:a', relation: 'can_read', object: 'unknown:1' },
      { user: 'user:a', relation: 'can_read', object: 'group:2' }, // group defines no can_read
      { user: 'user:a', relation: 'nope', object: 'doc:1' },
      { user: 'user a', relation: 'can_read', object: 'doc:1' },
      { user: 'unknown:x', relation: 'can_read', object: 'doc:1' },
    ]) {
      const fresh = said(() => engine().check(request));
      expect(fresh).toMatchObject({ code: 2000 });
      expect(said(() => long.check(request))).toEqual(fresh);
      // ...and the valid check still answers after it.
      expect(long.check({ user: 'user:a', relation: 'can_read', object: 'doc:1' })).toBe(true);
    }
  });

  it('the same user with and without context or contextual tuples, and unknown users, each in its own scope', () => {
    const long = engine();
    const zz = { user: 'user:zz', relation: 'can_read', object: 'doc:new' };
    expect(long.check(zz)).toBe(false);
    expect(long.check({ ...zz, contextualTuples: [t('doc:new', 'viewer', 'user:zz')] })).toBe(true);
    expect(long.check(zz)).toBe(false);
    const c = { user: 'user:c', relation: 'can_read', object: 'doc:4' };
    expect(long.check({ ...c, context: { ip: '10.0.0.1' } })).toBe(true);
    expect(long.check({ ...c, context: { ip: '11.0.0.1' } })).toBe(false);
    expect(said(() => long.check(c))).toEqual(said(() => engine().check(c)));
    expect(long.check({ ...c, context: { ip: '10.0.0.1' } })).toBe(true);
    // A userset of an object the index never stored is a member of itself, and of nothing else.
    const g9 = { user: 'group:9#member', relation: 'member', object: 'group:9' };
    expect(long.check(g9)).toBe(true);
    expect(long.check({ ...g9, object: 'group:8' })).toBe(false);
    expect(long.check(g9)).toBe(true);
    // A wildcard tuple reaches a user the index never stored.
    expect(long.check({ user: 'user:zz', relation: 'can_read', object: 'doc:3' })).toBe(true);
    expect(long.check({ user: 'user:a', relation: 'can_read', object: 'doc:3' })).toBe(true);
    expect(long.check({ user: 'user:a', relation: 'can_read', object: 'doc:2' })).toBe(false);
    expect(long.check({ user: 'user:b', relation: 'can_read', object: 'doc:2' })).toBe(true);
  });
});
