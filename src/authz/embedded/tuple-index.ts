/**
 * Relationship tuples indexed for the lookups a check makes: by object, then
 * relation, then exact user; with the userset and wildcard users of each
 * object#relation kept in their own lists so a check never scans unrelated
 * tuples. Built once per policy load (stored tuples) or per request
 * (contextual tuples, usually a handful).
 */

import type { TupleKey } from '../authorizer.js';
import { isTypedWildcard, isValidUserset, splitObjectRelation, typeOf } from './ids.js';

/** A tuple with its user pre-split, as the evaluator reads it. */
export interface IndexedTuple {
  readonly object: string;
  readonly relation: string;
  readonly user: string;
  /** `group:x` of `group:x#member`, or the user itself. */
  readonly userObject: string;
  /** `member` of `group:x#member`, else empty. */
  readonly userRelation: string;
  readonly userType: string;
  readonly conditionName: string;
  readonly conditionContext: Readonly<Record<string, unknown>> | undefined;
  readonly source: TupleKey;
}

/** The tuples of one object#relation. */
export interface Bucket {
  readonly byUser: Map<string, IndexedTuple>;
  /** Users of the form `type:id#relation`. */
  readonly usersets: IndexedTuple[];
  /** Users of the form `type:*`. */
  readonly wildcards: IndexedTuple[];
  /** Every tuple, in insertion order (tupleset reads). */
  readonly all: IndexedTuple[];
}

/** An index of tuples. */
export interface TupleIndex {
  readonly size: number;
  bucket(object: string, relation: string): Bucket | undefined;
  /** Object ids (`type:id`) that appear as a tuple's object, per type. */
  objectsOfType(type: string): ReadonlySet<string> | undefined;
  /** Tuples whose user is exactly `user` (reverse lookups for list objects). */
  withUser(user: string): readonly IndexedTuple[] | undefined;
}

/** Pre-splits a tuple's user. */
export function indexTuple(t: TupleKey): IndexedTuple {
  const [userObject, userRelation] = splitObjectRelation(t.user);
  return {
    object: t.object,
    relation: t.relation,
    user: t.user,
    userObject,
    userRelation: isValidUserset(t.user) ? userRelation : '',
    userType: typeOf(userObject),
    conditionName: t.condition?.name ?? '',
    conditionContext: t.condition?.context,
    source: t,
  };
}

/**
 * Builds an index. A later tuple with the same object, relation and user
 * replaces an earlier one (OpenFGA keys tuples without their condition).
 */
export function buildTupleIndex(tuples: Iterable<IndexedTuple>): TupleIndex {
  const byObject = new Map<string, Map<string, Bucket>>();
  const byType = new Map<string, Set<string>>();
  const byUser = new Map<string, IndexedTuple[]>();
  let size = 0;
  for (const t of tuples) {
    let relations = byObject.get(t.object);
    if (!relations) {
      relations = new Map();
      byObject.set(t.object, relations);
      const type = typeOf(t.object);
      let set = byType.get(type);
      if (!set) {
        set = new Set();
        byType.set(type, set);
      }
      set.add(t.object);
    }
    let bucket = relations.get(t.relation);
    if (!bucket) {
      bucket = { byUser: new Map(), usersets: [], wildcards: [], all: [] };
      relations.set(t.relation, bucket);
    }
    const previous = bucket.byUser.get(t.user);
    if (previous) {
      const replace = (list: IndexedTuple[] | undefined): void => {
        const i = list ? list.indexOf(previous) : -1;
        if (i !== -1) (list as IndexedTuple[])[i] = t;
      };
      replace(bucket.all);
      replace(bucket.usersets);
      replace(bucket.wildcards);
      replace(byUser.get(t.user));
    } else {
      size++;
      const list = byUser.get(t.user);
      if (list) list.push(t);
      else byUser.set(t.user, [t]);
      bucket.all.push(t);
      if (t.userRelation !== '') bucket.usersets.push(t);
      else if (isTypedWildcard(t.user)) bucket.wildcards.push(t);
    }
    bucket.byUser.set(t.user, t);
  }
  return {
    size,
    bucket: (object, relation) => byObject.get(object)?.get(relation),
    objectsOfType: (type) => byType.get(type),
    withUser: (user) => byUser.get(user),
  };
}
