/**
 * Relationship tuples indexed for the lookups a check makes: by relation, then
 * object (one Map per relation, not one per object), then exact user; the
 * userset and wildcard users of a large object#relation are kept in their own
 * lists so a check never scans unrelated tuples. Built once per policy load
 * (stored tuples, up to a million or so) or per request (contextual tuples,
 * usually a handful).
 *
 * Memory is what limits the embedded engine's size, so the layout is compact:
 * an object#relation with at most SMALL tuples is one plain array (searched
 * linearly; most objects have one or two tuples per relation), a larger one a
 * `LargeBucket` with a Map by user; repeated strings (types, userset objects)
 * are shared; the reverse indexes that only list objects needs (objects per
 * type, tuples per user) are built on first use.
 */

import type { TupleKey } from '../authorizer.js';
import { isTypedWildcard, isValidUserset, splitObjectRelation, typeOf } from './ids.js';

/** A tuple with its user pre-split, as the evaluator reads it. */
export class IndexedTuple {
  constructor(
    readonly object: string,
    readonly relation: string,
    readonly user: string,
    /** `group:x` of `group:x#member`, or the user itself. */
    readonly userObject: string,
    /** `member` of `group:x#member`, else empty. */
    readonly userRelation: string,
    readonly userType: string,
    readonly conditionName: string,
    readonly conditionContext: Readonly<Record<string, unknown>> | undefined,
    /** Position in the index's insertion order (replacements keep the first position). */
    public seq: number,
  ) {}
}

/** Up to this many tuples, an object#relation is a plain array searched linearly. */
export const SMALL = 8;

/** The tuples of one large object#relation. */
class LargeBucket {
  readonly byUser = new Map<string, IndexedTuple>();
  /** Users of the form `type:id#relation`. */
  readonly usersets: IndexedTuple[] = [];
  /** Users of the form `type:*`. */
  readonly wildcards: IndexedTuple[] = [];

  constructor(
    /** Every tuple, in insertion order (tupleset reads). */
    readonly all: IndexedTuple[],
  ) {
    for (const t of all) this.place(t);
  }

  place(t: IndexedTuple): void {
    this.byUser.set(t.user, t);
    if (t.userRelation !== '') this.usersets.push(t);
    else if (isTypedWildcard(t.user)) this.wildcards.push(t);
  }
}

type Entry = readonly IndexedTuple[] | LargeBucket;

const EMPTY: readonly IndexedTuple[] = Object.freeze([]);

/** An index of tuples. */
export interface TupleIndex {
  readonly size: number;
  /** The tuple `object#relation@user`, if stored. */
  find(object: string, relation: string, user: string): IndexedTuple | undefined;
  /**
   * Tuples of `object#relation` that may have a userset user (`type:id#rel`):
   * exactly those for a large bucket, every tuple for a small one, so callers
   * filter on `userRelation !== ''`.
   */
  usersets(object: string, relation: string): readonly IndexedTuple[];
  /** Tuples of `object#relation` that may have a `type:*` user (same caveat: callers filter). */
  wildcards(object: string, relation: string): readonly IndexedTuple[];
  /** Every tuple of `object#relation`, in insertion order. */
  all(object: string, relation: string): readonly IndexedTuple[];
  /** Object ids (`type:id`) that appear as a tuple's object, per type, in order of first appearance. */
  objectsOfType(type: string): ReadonlySet<string> | undefined;
  /** Tuples whose user is exactly `user` (reverse lookups for list objects). */
  withUser(user: string): readonly IndexedTuple[] | undefined;
}

/** Builds an index one tuple at a time (see `buildTupleIndex`). */
export interface TupleIndexBuilder {
  /**
   * Adds `t`. A tuple with the same object, relation and user as an earlier
   * one replaces it in place (OpenFGA keys tuples without their condition);
   * the earlier tuple is returned then.
   */
  add(t: TupleKey): IndexedTuple | undefined;
  /** The finished index (the builder must not be used afterwards). */
  done(): TupleIndex;
}

/**
 * Creates a builder; strings repeated across tuples (types, userset objects
 * and relations) are stored once. `small` (default SMALL) is the largest
 * object#relation kept as a plain array (tests set it to 0 and to a large
 * number to run the same cases on both layouts).
 */
export function tupleIndexBuilder(small = SMALL): TupleIndexBuilder {
  const byRelation = new Map<string, Map<string, Entry>>();
  const order: IndexedTuple[] = [];
  const strings = new Map<string, string>();
  const shared = (s: string): string => {
    const known = strings.get(s);
    if (known !== undefined) return known;
    strings.set(s, s);
    return s;
  };

  const indexed = (t: TupleKey, seq: number): IndexedTuple => {
    const user = t.user;
    const [userObject, userRelation] = splitObjectRelation(user);
    const isUserset = isValidUserset(user);
    return new IndexedTuple(
      t.object,
      t.relation,
      user,
      userObject === user ? user : shared(userObject),
      isUserset ? shared(userRelation) : '',
      shared(typeOf(userObject)),
      t.condition?.name ?? '',
      t.condition?.context,
      seq,
    );
  };

  return {
    add(t) {
      let objects = byRelation.get(t.relation);
      if (!objects) {
        objects = new Map();
        byRelation.set(t.relation, objects);
      }
      const entry = objects.get(t.object);
      if (entry === undefined) {
        const it = indexed(t, order.length);
        order.push(it);
        objects.set(t.object, small === 0 ? new LargeBucket([it]) : [it]);
        return undefined;
      }
      if (entry instanceof LargeBucket) {
        const previous = entry.byUser.get(t.user);
        if (previous) {
          const it = indexed(t, previous.seq);
          replaceIn(entry.all, previous, it);
          replaceIn(entry.usersets, previous, it);
          replaceIn(entry.wildcards, previous, it);
          entry.byUser.set(t.user, it);
          order[previous.seq] = it;
          return previous;
        }
        const it = indexed(t, order.length);
        order.push(it);
        entry.all.push(it);
        entry.place(it);
        return undefined;
      }
      const list = entry as IndexedTuple[];
      for (let i = 0; i < list.length; i++) {
        const previous = list[i];
        if (previous.user === t.user) {
          const it = indexed(t, previous.seq);
          list[i] = it;
          order[previous.seq] = it;
          return previous;
        }
      }
      const it = indexed(t, order.length);
      order.push(it);
      // Exact-size arrays while small (push would reserve room for 16 more).
      const next = list.concat(it);
      objects.set(t.object, next.length > small ? new LargeBucket(next) : next);
      return undefined;
    },

    done() {
      strings.clear();
      let byType: Map<string, Set<string>> | undefined;
      let byUser: Map<string, IndexedTuple[]> | undefined;
      const entry = (object: string, relation: string): Entry | undefined => byRelation.get(relation)?.get(object);
      return {
        size: order.length,
        find(object, relation, user) {
          const e = entry(object, relation);
          if (e === undefined) return undefined;
          if (e instanceof LargeBucket) return e.byUser.get(user);
          for (const t of e as readonly IndexedTuple[]) if (t.user === user) return t;
          return undefined;
        },
        usersets(object, relation) {
          const e = entry(object, relation);
          return e === undefined ? EMPTY : e instanceof LargeBucket ? e.usersets : (e as readonly IndexedTuple[]);
        },
        wildcards(object, relation) {
          const e = entry(object, relation);
          return e === undefined ? EMPTY : e instanceof LargeBucket ? e.wildcards : (e as readonly IndexedTuple[]);
        },
        all(object, relation) {
          const e = entry(object, relation);
          return e === undefined ? EMPTY : e instanceof LargeBucket ? e.all : (e as readonly IndexedTuple[]);
        },
        objectsOfType(type) {
          if (!byType) {
            byType = new Map();
            for (const t of order) {
              const ty = typeOf(t.object);
              let set = byType.get(ty);
              if (!set) {
                set = new Set();
                byType.set(ty, set);
              }
              set.add(t.object);
            }
          }
          return byType.get(type);
        },
        withUser(user) {
          if (!byUser) {
            byUser = new Map();
            for (const t of order) {
              const list = byUser.get(t.user);
              if (list) list.push(t);
              else byUser.set(t.user, [t]);
            }
          }
          return byUser.get(user);
        },
      };
    },
  };
}

function replaceIn(list: IndexedTuple[], previous: IndexedTuple, next: IndexedTuple): void {
  const i = list.indexOf(previous);
  if (i !== -1) list[i] = next;
}

/**
 * Builds an index. A later tuple with the same object, relation and user
 * replaces an earlier one (OpenFGA keys tuples without their condition).
 */
export function buildTupleIndex(tuples: Iterable<TupleKey>, small = SMALL): TupleIndex {
  const builder = tupleIndexBuilder(small);
  for (const t of tuples) builder.add(t);
  return builder.done();
}
