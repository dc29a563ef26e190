/**
 * The check resolver: OpenFGA's `internal/graph/check.go` (default strategy),
 * evaluated depth-first and synchronously. See DESIGN.md beside this file for
 * the rules copied from the server and why each one matters.
 */

import { FgaError, FGA_ERROR } from './errors.js';
import { typeOf, type UserParts } from './ids.js';
import type { IndexedTuple, TupleIndex } from './tuple-index.js';
import type { RelationDef, Rewrite, TypeSystem } from './typesystem.js';

/** Outcome of one sub-check: denied, allowed, or denied because the path came back to itself. */
export const Outcome = {
  False: 0,
  True: 1,
  /** False with OpenFGA's `CycleDetected` flag: it makes a subtracted operand deny. */
  Cycle: 2,
} as const;

/** One of the `Outcome` values. */
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** Everything one top-level check (or list-objects candidate) evaluates against. */
export interface CheckScope {
  readonly ts: TypeSystem;
  readonly stored: TupleIndex;
  /** Contextual tuples of the request (consulted before stored ones), if any. */
  readonly contextual: TupleIndex | undefined;
  readonly context: Readonly<Record<string, unknown>> | undefined;
  readonly user: UserParts;
  /** Model-graph label of the user: `user`, or `group#member` for a userset. */
  readonly userLabel: string;
  /** `user:*` for a non-userset user (wildcards can reach it), else undefined. */
  readonly wildcardLabel: string | undefined;
  readonly maxDepth: number;
  /** `object#relation` keys on the current path (the user is fixed for the whole check). */
  readonly visited: Set<string>;
}

const EMPTY: readonly IndexedTuple[] = [];

/**
 * Whether `tuple`'s condition holds. Throws FgaError 2000 when it cannot be
 * evaluated (missing parameter, wrong type).
 */
function conditionHolds(scope: CheckScope, tuple: IndexedTuple): boolean {
  if (tuple.conditionName === '') return true;
  const cond = scope.ts.conditions.get(tuple.conditionName);
  if (!cond) throw new FgaError(FGA_ERROR.validation, `condition ${tuple.conditionName} was not found`);
  return cond.evaluate(scope.context, tuple.conditionContext);
}

/** Resolves `object#relation@user` (OpenFGA's ResolveCheck); `depth` counts dispatches on this path. */
export function resolveCheck(scope: CheckScope, object: string, relation: string, depth: number): Outcome {
  if (depth === scope.maxDepth) {
    throw new FgaError(FGA_ERROR.resolutionTooComplex, 'Authorization Model resolution required too many rewrite rules to be resolved to a decision');
  }
  const key = object + '#' + relation;
  if (scope.visited.has(key)) return Outcome.Cycle;
  const user = scope.user;
  // A userset is a member of itself (`document:1#viewer` is a viewer of document:1).
  if (user.isUserset && relation === user.relation && object === user.object) return Outcome.True;
  const def = scope.ts.relation(typeOf(object), relation);
  if (!def) throw new Error(`relation '${relation}' undefined for object type '${typeOf(object)}'`);
  // The model graph says this user type can never reach this relation: skip reading tuples.
  if (!def.reachableFrom.has(scope.userLabel) && (scope.wildcardLabel === undefined || !def.reachableFrom.has(scope.wildcardLabel))) {
    return Outcome.False;
  }
  scope.visited.add(key);
  try {
    return checkRewrite(scope, object, def, def.rewrite, depth);
  } finally {
    scope.visited.delete(key);
  }
}

function checkRewrite(scope: CheckScope, object: string, def: RelationDef, rw: Rewrite, depth: number): Outcome {
  switch (rw.kind) {
    case 'this':
      return checkDirect(scope, object, def, depth);
    case 'computed':
      // A computed userset is the same object under another name: no dispatch, no depth.
      return resolveCheck(scope, object, rw.relation, depth);
    case 'ttu':
      return checkTupleToUserset(scope, object, def, rw.tupleset, rw.computed, depth);
    case 'union': {
      let cycle = false;
      let error: unknown;
      for (const child of rw.children) {
        try {
          const r = checkRewrite(scope, object, def, child, depth);
          if (r === Outcome.True) return Outcome.True;
          if (r === Outcome.Cycle) cycle = true;
        } catch (err) {
          error = err; // an allowing sibling still wins over an error
        }
      }
      if (error !== undefined) throw error;
      return cycle ? Outcome.Cycle : Outcome.False;
    }
    case 'intersection': {
      let error: unknown;
      for (const child of rw.children) {
        try {
          const r = checkRewrite(scope, object, def, child, depth);
          if (r !== Outcome.True) return r; // a denying operand wins over errors
        } catch (err) {
          if (error === undefined) error = err;
        }
      }
      if (error !== undefined) throw error;
      return Outcome.True;
    }
    case 'difference': {
      let baseError: unknown;
      try {
        const base = checkRewrite(scope, object, def, rw.base, depth);
        if (base !== Outcome.True) return base;
      } catch (err) {
        baseError = err;
      }
      try {
        const sub = checkRewrite(scope, object, def, rw.subtract, depth);
        // A subtracted operand that is allowed, or that cycled, denies.
        if (sub === Outcome.True) return Outcome.False;
        if (sub === Outcome.Cycle) return Outcome.Cycle;
      } catch (err) {
        if (baseError === undefined) throw err;
      }
      if (baseError !== undefined) throw baseError;
      return Outcome.True;
    }
  }
}

/** Direct assignment: the exact tuple, a `type:*` wildcard, and userset tuples, as one union. */
function checkDirect(scope: CheckScope, object: string, def: RelationDef, depth: number): Outcome {
  const user = scope.user;
  let cycle = false;
  let error: unknown;
  const directlyRelated = user.isUserset ? def.usersetRelationsByType.get(user.type)?.has(user.relation) === true : def.plainTypes.has(user.type);
  if (directlyRelated) {
    try {
      const tuple = scope.contextual?.find(object, def.name, user.user) ?? scope.stored.find(object, def.name, user.user);
      if (tuple !== undefined && conditionHolds(scope, tuple)) return Outcome.True;
    } catch (err) {
      error = err;
    }
  }
  // Wildcards never stand for usersets.
  if (!user.isUserset && def.wildcardTypes.has(user.type)) {
    try {
      if (publicWildcardHolds(scope, object, def)) return Outcome.True;
    } catch (err) {
      error = err;
    }
  }
  if (def.usersetRefs.size > 0) {
    try {
      const r = checkUsersetTuples(scope, object, def, depth);
      if (r === Outcome.True) return Outcome.True;
      if (r === Outcome.Cycle) cycle = true;
    } catch (err) {
      error = err;
    }
  }
  if (error !== undefined) throw error;
  return cycle ? Outcome.Cycle : Outcome.False;
}

/**
 * An iterator over tuples with OpenFGA's condition filter: condition errors
 * are swallowed once any tuple passed, and raised only when none did.
 */
function forEachPassing(
  scope: CheckScope,
  lists: readonly (readonly IndexedTuple[])[],
  accept: (t: IndexedTuple) => boolean,
  visit: (t: IndexedTuple) => boolean,
): void {
  let passed = false;
  let conditionError: unknown;
  for (const list of lists) {
    for (const t of list) {
      if (!accept(t)) continue;
      if (t.conditionName !== '') {
        try {
          if (!conditionHolds(scope, t)) continue;
        } catch (err) {
          conditionError = err;
          continue;
        }
      }
      passed = true;
      if (visit(t)) return;
    }
  }
  if (!passed && conditionError !== undefined) throw conditionError;
}

function publicWildcardHolds(scope: CheckScope, object: string, def: RelationDef): boolean {
  // `type:*` of the user's own type (the index's lists may hold other tuples too).
  const label = scope.wildcardLabel;
  let found = false;
  forEachPassing(
    scope,
    [scope.contextual?.wildcards(object, def.name) ?? EMPTY, scope.stored.wildcards(object, def.name)],
    (t) => t.user === label,
    () => {
      found = true;
      return true;
    },
  );
  return found;
}

/**
 * One hop per passing tuple (`relationOf(t)` on the tuple's user object; null
 * skips the tuple): True as soon as a hop resolves True, else Cycle when a hop
 * that is not self-recursive cycled, else False. An engine error is rethrown
 * only when no hop allowed.
 */
function anyHopAllows(
  scope: CheckScope,
  lists: readonly (readonly IndexedTuple[])[],
  accept: (t: IndexedTuple) => boolean,
  relationOf: (t: IndexedTuple) => string | null,
  def: RelationDef,
  depth: number,
): Outcome {
  let cycle = false;
  let error: unknown;
  let allowedOnce = false;
  forEachPassing(scope, lists, accept, (t) => {
    const relation = relationOf(t);
    if (relation === null) return false;
    try {
      const r = resolveCheck(scope, t.userObject, relation, depth + 1);
      if (r === Outcome.True) {
        allowedOnce = true;
        return true;
      }
      // A self-recursive hop (group#member → group#member, or `viewer from parent`
      // inside `viewer` with a parent of the same type) is resolved by OpenFGA's
      // recursive strategy, which tracks visited usersets instead of flagging cycles.
      if (r === Outcome.Cycle && (scope.user.isUserset || t.userType !== def.type || relation !== def.name)) cycle = true;
    } catch (err) {
      error = err;
    }
    return false;
  });
  if (allowedOnce) return Outcome.True;
  if (error !== undefined) throw error;
  return cycle ? Outcome.Cycle : Outcome.False;
}

function checkUsersetTuples(scope: CheckScope, object: string, def: RelationDef, depth: number): Outcome {
  const allowed = def.usersetRelationsByType;
  return anyHopAllows(
    scope,
    [scope.contextual?.usersets(object, def.name) ?? EMPTY, scope.stored.usersets(object, def.name)],
    (t) => t.userRelation !== '' && allowed.get(t.userType)?.has(t.userRelation) === true,
    (t) => t.userRelation,
    def,
    depth,
  );
}

function checkTupleToUserset(scope: CheckScope, object: string, def: RelationDef, tupleset: string, computed: string, depth: number): Outcome {
  return anyHopAllows(
    scope,
    [scope.contextual?.all(object, tupleset) ?? EMPTY, scope.stored.all(object, tupleset)],
    () => true,
    // Parents whose type lacks the computed relation are skipped, not errors.
    (t) => (scope.ts.relation(t.userType, computed) ? computed : null),
    def,
    depth,
  );
}
