/**
 * The check resolver: OpenFGA's `internal/graph/check.go` (default strategy),
 * evaluated depth-first and synchronously. See DESIGN.md beside this file for
 * the rules copied from the server and why each one matters.
 *
 * Objects, users and relations are integer ids (compact-index.ts): a step
 * reads typed arrays and builds no strings; the path is a stack of
 * `node × relations + relation` numbers, scanned linearly (it is as long as the
 * current path, a few dozen entries at most).
 */

import { FgaError, FGA_ERROR } from './errors.js';
import { typeOf, type UserParts } from './ids.js';
import type { CompactTupleIndex, DefPlan, ModelIds, NodeOverlay, RewritePlan } from './compact-index.js';
import type { TypeSystem } from './typesystem.js';

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
  readonly ids: ModelIds;
  /** Node ids of the stored index plus this request's own names. */
  readonly nodes: NodeOverlay;
  readonly stored: CompactTupleIndex;
  /** Contextual tuples of the request (consulted before stored ones), if any. */
  readonly contextual: CompactTupleIndex | undefined;
  readonly context: Readonly<Record<string, unknown>> | undefined;
  readonly user: UserParts;
  /** Node of the user (`group:x` for `group:x#member`). */
  readonly userNode: number;
  /** Relation id of a userset user, else 0. */
  readonly userRel: number;
  /** Node of `type:*` for a non-userset user when some tuple names it, else -1. */
  readonly wildcardNode: number;
  /** Model-graph label of the user: `user`, or `group#member` for a userset. */
  readonly userLabel: string;
  /** `user:*` for a non-userset user (wildcards can reach it), else undefined. */
  readonly wildcardLabel: string | undefined;
  readonly maxDepth: number;
  /** `node × relCount + relation` keys on the current path (the user is fixed for the whole check). */
  readonly path: number[];
  /**
   * Resolution steps taken (`steps`) and allowed (`limit`; Infinity for a full
   * check). Past the limit every step answers False at once: the caller then
   * discards the outcome (and any error) and evaluates again without a limit.
   */
  readonly budget: { steps: number; limit: number };
}

/**
 * Whether row `t` of `index` satisfies its condition. Throws FgaError 2000 when
 * it cannot be evaluated (missing parameter, wrong type).
 */
function conditionHolds(scope: CheckScope, index: CompactTupleIndex, t: number): boolean {
  const c = index.condition(t);
  if (c === undefined) return true;
  const cond = scope.ts.conditions.get(c.name);
  if (!cond) throw new FgaError(FGA_ERROR.validation, `condition ${c.name} was not found`);
  return cond.evaluate(scope.context, c.context);
}

/** Resolves `node#rel@user` (OpenFGA's ResolveCheck); `depth` counts dispatches on this path. */
export function resolveCheck(scope: CheckScope, node: number, rel: number, depth: number): Outcome {
  if (++scope.budget.steps > scope.budget.limit) return Outcome.False;
  if (depth === scope.maxDepth) {
    throw new FgaError(FGA_ERROR.resolutionTooComplex, 'Authorization Model resolution required too many rewrite rules to be resolved to a decision');
  }
  const key = node * scope.ids.relCount + rel;
  const path = scope.path;
  for (let i = 0; i < path.length; i++) if (path[i] === key) return Outcome.Cycle;
  // A userset is a member of itself (`document:1#viewer` is a viewer of document:1).
  if (scope.userRel !== 0 && rel === scope.userRel && node === scope.userNode) return Outcome.True;
  const plan = scope.ids.plan(scope.nodes.type(node), rel);
  if (!plan) throw new Error(`relation '${scope.ids.relNames[rel]}' undefined for object type '${typeOf(scope.nodes.name(node))}'`);
  const def = plan.def;
  // The model graph says this user type can never reach this relation: skip reading tuples.
  if (!def.reachableFrom.has(scope.userLabel) && (scope.wildcardLabel === undefined || !def.reachableFrom.has(scope.wildcardLabel))) {
    return Outcome.False;
  }
  path.push(key);
  try {
    return checkRewrite(scope, node, rel, plan, plan.rewrite, depth);
  } finally {
    path.pop();
  }
}

/** `id`, the model's id of relation `name`; throws when no type defines it (-1). */
function relId(id: number, name: string): number {
  if (id < 0) throw new Error(`relation '${name}' is not defined by any type`);
  return id;
}

function checkRewrite(scope: CheckScope, node: number, rel: number, plan: DefPlan, rw: RewritePlan, depth: number): Outcome {
  switch (rw.kind) {
    case 'this':
      return checkDirect(scope, node, rel, plan, depth);
    case 'computed':
      // A computed userset is the same object under another name: no dispatch, no depth.
      return resolveCheck(scope, node, relId(rw.relId, rw.relation), depth);
    case 'ttu':
      return anyHopAllows(scope, node, plan, relId(rw.tuplesetId, rw.tupleset), rw.computedId, depth);
    case 'union': {
      let cycle = false;
      let error: unknown;
      for (const child of rw.children) {
        try {
          const r = checkRewrite(scope, node, rel, plan, child, depth);
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
          const r = checkRewrite(scope, node, rel, plan, child, depth);
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
        const base = checkRewrite(scope, node, rel, plan, rw.base, depth);
        if (base !== Outcome.True) return base;
      } catch (err) {
        baseError = err;
      }
      try {
        const sub = checkRewrite(scope, node, rel, plan, rw.subtract, depth);
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
function checkDirect(scope: CheckScope, node: number, rel: number, plan: DefPlan, depth: number): Outcome {
  const def = plan.def;
  const user = scope.user;
  let cycle = false;
  let error: unknown;
  const directlyRelated = user.isUserset ? def.usersetRelationsByType.get(user.type)?.has(user.relation) === true : def.plainTypes.has(user.type);
  if (directlyRelated) {
    try {
      // A contextual tuple takes the place of the stored one.
      let index = scope.contextual;
      let t = index === undefined ? -1 : index.find(node, rel, scope.userNode, scope.userRel);
      if (t < 0) {
        index = scope.stored;
        t = index.find(node, rel, scope.userNode, scope.userRel);
      }
      if (t >= 0 && conditionHolds(scope, index as CompactTupleIndex, t)) return Outcome.True;
    } catch (err) {
      error = err;
    }
  }
  // Wildcards never stand for usersets.
  if (!user.isUserset && scope.wildcardNode >= 0 && def.wildcardTypes.has(user.type)) {
    try {
      if (publicWildcardHolds(scope, node, rel)) return Outcome.True;
    } catch (err) {
      error = err;
    }
  }
  if (def.usersetRefs.size > 0) {
    try {
      const r = anyHopAllows(scope, node, plan, rel, -1, depth);
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
 * `type:*` of the user's own type, contextual and stored, with OpenFGA's
 * condition filter: condition errors are swallowed once any tuple passed, and
 * raised only when none did.
 */
function publicWildcardHolds(scope: CheckScope, node: number, rel: number): boolean {
  let conditionError: unknown;
  for (let k = 0; k < 2; k++) {
    const index = k === 0 ? scope.contextual : scope.stored;
    if (index === undefined) continue;
    const t = index.find(node, rel, scope.wildcardNode, 0);
    if (t < 0) continue;
    try {
      if (conditionHolds(scope, index, t)) return true;
    } catch (err) {
      conditionError = err;
    }
  }
  if (conditionError !== undefined) throw conditionError;
  return false;
}

/**
 * One hop per passing tuple, contextual tuples first: with `computed < 0`, the
 * userset tuples of `node#rel` (each hop to the userset, when the relation
 * allows that userset type); else the tuples of tupleset `rel` (each hop to
 * `parent#computed`, skipping parents whose type lacks it). True as soon as a
 * hop resolves True, else Cycle when a hop that is not self-recursive cycled,
 * else False. Condition errors are swallowed once any tuple passed; an engine
 * error is rethrown only when no hop allowed.
 */
function anyHopAllows(scope: CheckScope, node: number, plan: DefPlan, rel: number, computed: number, depth: number): Outcome {
  const usersets = computed === -1;
  const allowed = plan.usersetAllowed;
  const relCount = scope.ids.relCount;
  const ids = scope.ids;
  const nodes = scope.nodes;
  let cycle = false;
  let error: unknown;
  let conditionError: unknown;
  let passed = false;
  for (let k = 0; k < 2; k++) {
    const index = k === 0 ? scope.contextual : scope.stored;
    if (index === undefined) continue;
    const b = index.bucket(node, rel);
    if (b < 0) continue;
    const list = usersets ? index.byUser : index.order;
    const tUser = index.tUser;
    const tURel = index.tURel;
    for (let i = usersets ? index.usersetStart(b) : index.start(b), end = index.end(b); i < end; i++) {
      const t = list[i];
      const userNode = tUser[t];
      const userType = nodes.type(userNode);
      let hopRel: number;
      if (usersets) {
        hopRel = tURel[t];
        if (userType < 0 || allowed[userType * relCount + hopRel] !== 1) continue;
      } else hopRel = computed;
      if (index.tCond[t] >= 0) {
        try {
          if (!conditionHolds(scope, index, t)) continue;
        } catch (err) {
          conditionError = err;
          continue;
        }
      }
      passed = true;
      // Parents whose type lacks the computed relation are skipped, not errors.
      if (!usersets && (hopRel < 0 || ids.def(userType, hopRel) === undefined)) continue;
      try {
        const r = resolveCheck(scope, userNode, hopRel, depth + 1);
        if (r === Outcome.True) return Outcome.True;
        // A self-recursive hop (group#member → group#member, or `viewer from parent`
        // inside `viewer` with a parent of the same type) is resolved by OpenFGA's
        // recursive strategy, which tracks visited usersets instead of flagging cycles.
        if (r === Outcome.Cycle && (scope.user.isUserset || userType !== plan.typeId || hopRel !== plan.relId)) {
          cycle = true;
        }
      } catch (err) {
        error = err;
      }
    }
  }
  if (!passed && conditionError !== undefined) throw conditionError;
  if (error !== undefined) throw error;
  return cycle ? Outcome.Cycle : Outcome.False;
}
