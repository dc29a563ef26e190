/**
 * The embedded evaluator as a synchronous engine over one model and one set of
 * stored tuples: request validation with OpenFGA's error codes, contextual
 * tuples, check and list objects. `authorizer.ts` wraps it as an `Authorizer`.
 */

import type { CheckRequest, ListObjectsRequest, TupleKey } from '../authorizer.js';
import type { AuthorizationModel } from '../model.js';
import { Outcome, resolveCheck, type CheckScope } from './check.js';
import { CompactIndexBuilder, ModelIds, NodeOverlay, Nodes, type CompactTupleIndex } from './compact-index.js';
import { listObjects } from './list-objects.js';
import { FgaError, FGA_ERROR } from './errors.js';
import { apiListObjectsProblem, apiObjectProblem, apiRelationProblem, apiUserProblem, apiWriteTupleProblem, ownCopy, userParts } from './ids.js';
import { compileTypeSystem, type TypeSystem } from './typesystem.js';
import { objectProblem, relationOfTypeProblem, relationProblem, requestContextProblem, tupleString, tupleWriteProblem, userProblem } from './validate.js';

/** OpenFGA's default `--resolve-node-limit`. */
export const DEFAULT_MAX_DEPTH = 25;
/**
 * Resolution steps (object#relation visits) one check may take before it fails
 * with 2002, like a check the server cannot finish within its deadline. The
 * depth limit bounds a path, not how many paths there are: nested groups with
 * two parents each make 2^depth paths (2^24 steps, seconds of CPU on the event
 * loop, for one request the server answers in milliseconds), and an agent picks
 * which object is checked. About 0.1 s of CPU; an ordinary check takes tens.
 */
export const DEFAULT_MAX_STEPS = 1_000_000;
/** OpenFGA's default `--listObjects-max-results`. */
export const DEFAULT_MAX_LIST_OBJECTS = 1000;
/** OpenFGA's limit of contextual tuples per request. */
export const MAX_CONTEXTUAL_TUPLES = 100;

/** Options of `createEmbeddedEngine`. */
export interface EmbeddedEngineOptions {
  model: AuthorizationModel;
  /** Stored tuples: an array, or a reader's stream (consumed once, one tuple at a time). */
  tuples?: Iterable<TupleKey>;
  /** Resolution depth limit (dispatches along one path); default 25 like OpenFGA. */
  maxDepth?: number;
  /** Resolution steps one check may take before it fails with 2002; default `DEFAULT_MAX_STEPS`. */
  maxSteps?: number;
  /** List-objects result cap; default 1000 like OpenFGA. */
  maxListObjectsResults?: number;
  /**
   * `error` (default): a stored tuple the model would not accept for writing is
   * a load error, as OpenFGA's Write refuses it. `ignore`: such tuples are
   * skipped, as OpenFGA ignores tuples written under an older model.
   */
  invalidTuples?: 'error' | 'ignore';
  /** Largest object#relation whose exact-user lookup scans instead of bisecting (tests run both ways); default SMALL. */
  smallBucket?: number;
}

/** A compiled model plus its stored tuples, answering synchronously. */
export interface EmbeddedEngine {
  readonly typeSystem: TypeSystem;
  /** Stored tuples kept after validation. */
  readonly tupleCount: number;
  /** Stored tuples skipped under `invalidTuples: 'ignore'`, with the reason. */
  readonly ignoredTuples: readonly { tuple: TupleKey; reason: string }[];
  /** Throws FgaError (2000 invalid request, 2002 too deep or too many steps, 2027 invalid contextual tuple). */
  check(request: CheckRequest): boolean;
  /**
   * `check`, unless it takes more than `maxSteps` resolution steps: then
   * undefined (the partial evaluation is discarded, errors included). Request
   * validation errors are thrown as by `check`.
   */
  checkWithin(request: CheckRequest, maxSteps: number): boolean | undefined;
  /** Resolution steps of the last `check` or `checkWithin` (tests, tuning). */
  readonly lastSteps: number;
  /** Throws FgaError (2000, 2002, 2021 unknown type, 2022 unknown relation, 2027). */
  listObjects(request: ListObjectsRequest): string[];
}

/** A stored tuple the model refuses (only raised with `invalidTuples: 'error'`). */
export class InvalidStoredTupleError extends Error {
  readonly index: number;
  readonly tuple: TupleKey;
  /** The other refused tuples after this first one (every problem is reported at once). */
  more: InvalidStoredTupleError[] = [];

  constructor(index: number, tuple: TupleKey, reason: string) {
    super(`tuple ${index + 1} (${tupleString(tuple)}): ${reason}`);
    this.name = 'InvalidStoredTupleError';
    this.index = index;
    this.tuple = tuple;
  }
}

/** Row `t` of a stored index as a tuple again (for messages). */
function rowTuple(index: CompactTupleIndex, nodes: Nodes, ids: ModelIds, t: number): TupleKey {
  const userRel = index.tURel[t];
  const tuple: TupleKey = {
    user: nodes.names[index.tUser[t]] + (userRel === 0 ? '' : `#${ids.relNames[userRel]}`),
    relation: ids.relNames[index.tRel[t]],
    object: nodes.names[index.tObj[t]],
  };
  const condition = index.condition(t);
  if (condition) tuple.condition = { ...condition };
  return tuple;
}

/** `t` with its strings copied (see `ownCopy`). */
function ownTuple(t: TupleKey): TupleKey {
  // A refused tuple may hold anything (a number for a user, no object).
  const own = <T>(v: T): T => (typeof v === 'string' ? (ownCopy(v) as T) : v);
  const copy: TupleKey = { user: own(t.user), relation: own(t.relation), object: own(t.object) };
  if (t.condition) copy.condition = t.condition;
  return copy;
}

/** Validates and indexes the stored tuples; throws InvalidStoredTupleError (strict) listing every refused one. */
function buildStoredIndex(
  ts: TypeSystem,
  ids: ModelIds,
  tuples: Iterable<TupleKey>,
  strict: boolean,
  small: number | undefined,
): { stored: CompactTupleIndex; storedNodes: Nodes; ignored: { tuple: TupleKey; reason: string }[] } {
  const ignored: { tuple: TupleKey; reason: string }[] = [];
  const storedNodes = new Nodes(ids);
  const builder = new CompactIndexBuilder(ids, (name) => storedNodes.intern(name), { nodeCount: () => storedNodes.size });
  const refused: InvalidStoredTupleError[] = [];
  /** Input position of each refused tuple, ascending (to find the input position of an added one). */
  const refusedAt: number[] = [];
  let i = -1;
  for (const t of tuples) {
    i++;
    const problem =
      apiWriteTupleProblem(t.user, t.relation, t.object, t.condition?.name) ??
      tupleWriteProblem(ts, t)?.message ??
      // OpenFGA's Write refuses tuples that hold by definition (`group:x#member@group:x#member`).
      (t.user === `${t.object}#${t.relation}` ? 'cannot write a tuple that is implicit' : undefined);
    if (problem) {
      if (strict) refused.push(new InvalidStoredTupleError(i, t, problem));
      // Kept for the engine's life (logs, `warden validate`): copies, not views into the tuples file.
      else ignored.push({ tuple: ownTuple(t), reason: problem });
      refusedAt.push(i);
      continue;
    }
    builder.add(t.object, t.relation, t.user, t.condition);
  }
  const built = builder.done(small);
  // A repeated tuple replaces the earlier one (OpenFGA keys tuples without their condition); strict mode refuses it.
  if (strict && built.repeats.length > 0) {
    let r = 0;
    let skipped = 0;
    for (const row of built.repeats) {
      // Row numbers count added tuples only; skip the refused ones to get back to the input position.
      while (r < refusedAt.length && refusedAt[r] <= row + skipped) {
        skipped++;
        r++;
      }
      refused.push(new InvalidStoredTupleError(row + skipped, rowTuple(built.index, storedNodes, ids, row), 'the same tuple appears twice'));
    }
    refused.sort((a, b) => a.index - b.index);
  }
  if (refused.length) {
    const [first, ...more] = refused;
    first.more = more;
    throw first;
  }
  return { stored: built.index, storedNodes, ignored };
}

/**
 * Compiles `model` and indexes `tuples`. Throws when the model does not compile,
 * or (by default) when a tuple would be refused by OpenFGA's Write.
 */
export function createEmbeddedEngine(options: EmbeddedEngineOptions): EmbeddedEngine {
  const ts = compileTypeSystem(options.model);
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const stepBudget = options.maxSteps ?? DEFAULT_MAX_STEPS;
  const maxResults = options.maxListObjectsResults ?? DEFAULT_MAX_LIST_OBJECTS;
  const strict = (options.invalidTuples ?? 'error') === 'error';
  const ids = new ModelIds(ts);
  const small = options.smallBucket;
  // Built in a function of its own so that no closure of the engine keeps the input tuples alive.
  const { stored, storedNodes, ignored } = buildStoredIndex(ts, ids, options.tuples ?? [], strict, small);
  // One node overlay and one path reused by every call: evaluation is synchronous, so calls never interleave.
  const nodes = new NodeOverlay(storedNodes);
  const path: number[] = [];
  const budget = { steps: 0, limit: Infinity };

  const contextualIndex = (tuples: readonly TupleKey[] | undefined, conditionCode: 2000 | 2027): CompactTupleIndex | undefined => {
    if (!tuples || tuples.length === 0) return undefined;
    if (tuples.length > MAX_CONTEXTUAL_TUPLES) {
      throw new FgaError(FGA_ERROR.validation, `at most ${MAX_CONTEXTUAL_TUPLES} contextual tuples are allowed`);
    }
    for (const t of tuples) {
      const shape = apiWriteTupleProblem(t?.user, t?.relation, t?.object, t?.condition?.name);
      if (shape) throw new FgaError(FGA_ERROR.validation, `invalid contextual tuple: ${shape}`);
      const problem = tupleWriteProblem(ts, t);
      if (problem) {
        const code = problem.kind === 'invalid_condition' ? conditionCode : FGA_ERROR.invalidTuple;
        throw new FgaError(code, `Invalid tuple '${tupleString(t)}'. Reason: ${problem.message}`);
      }
    }
    const b = new CompactIndexBuilder(ids, (name) => nodes.id(name), undefined);
    for (const t of tuples) b.add(t.object, t.relation, t.user, t.condition);
    return b.done(small).index;
  };

  // The scope of the last check without context or contextual tuples whose user is a stored node. Every
  // field of such a scope is a function of the user string and the stored index (the request's own names
  // come after it), so the same user's next such check evaluates in it as it is.
  let plainScope: CheckScope | undefined;

  const scopeFor = (user: string, contextual: CompactTupleIndex | undefined, context: Record<string, unknown> | undefined): CheckScope => {
    const plain = contextual === undefined && context === undefined;
    if (plain && plainScope !== undefined && plainScope.user.user === user) return plainScope;
    const scope = buildScope(user, contextual, context);
    if (plain && scope.userNode < storedNodes.size) plainScope = scope;
    return scope;
  };

  const buildScope = (user: string, contextual: CompactTupleIndex | undefined, context: Record<string, unknown> | undefined): CheckScope => {
    const parts = userParts(user);
    return {
      ts,
      ids,
      nodes,
      stored,
      contextual,
      context,
      user: parts,
      userNode: nodes.id(parts.isUserset ? parts.object : parts.user),
      userRel: parts.isUserset ? ids.rel(parts.relation) : 0,
      wildcardNode: parts.isUserset ? -1 : nodes.lookup(`${parts.type}:*`),
      userLabel: parts.isUserset ? `${parts.type}#${parts.relation}` : parts.type,
      wildcardLabel: parts.isUserset ? undefined : `${parts.type}:*`,
      maxDepth,
      path,
      budget,
    };
  };

  // The user and relation of the last check that passed validation. What validation says of a field is a
  // function of its string and this engine's model, so the same string in the next check needs no second
  // look: a route's user and relation repeat from request to request, its object often does not.
  let validUser: string | undefined;
  let validRelation: string | undefined;

  /**
   * OpenFGA's validation of a check's tuple key (the API's field patterns, then ValidateUserObjectRelation),
   * in the server's order; a check skipped for a known-valid field would have passed. Throws FgaError 2000.
   */
  const validateKey = (user: string, relation: string, object: string): void => {
    const userKnown = validUser !== undefined && user === validUser;
    const relationKnown = validRelation !== undefined && relation === validRelation;
    const shape = (userKnown ? undefined : apiUserProblem(user)) ?? (relationKnown ? undefined : apiRelationProblem(relation)) ?? apiObjectProblem(object);
    if (shape) throw new FgaError(FGA_ERROR.validation, shape);
    const problem =
      (userKnown ? undefined : userProblem(ts, user)) ??
      objectProblem(ts, object) ??
      (relationKnown ? relationOfTypeProblem(ts, object, relation) : relationProblem(ts, object, relation));
    if (problem) throw new FgaError(FGA_ERROR.validation, `invalid relation: ${problem.message}`);
    validUser = user;
    validRelation = relation;
  };

  /** A check; undefined when it took more than `limit` steps (its outcome or error is not the answer then). */
  const evaluate = (request: CheckRequest, limit: number): boolean | undefined => {
    validateKey(request.user, request.relation, request.object);
    const ctxProblem = requestContextProblem(request.context);
    if (ctxProblem) throw new FgaError(FGA_ERROR.validation, `invalid context: ${ctxProblem}`);
    nodes.reset();
    path.length = 0;
    budget.steps = 0;
    budget.limit = limit;
    const contextual = contextualIndex(request.contextualTuples, FGA_ERROR.invalidTuple);
    const scope = scopeFor(request.user, contextual, request.context);
    let allowed: boolean;
    try {
      allowed = resolveCheck(scope, nodes.id(request.object), ids.rel(request.relation), 0) === Outcome.True;
    } catch (err) {
      if (budget.steps > limit) return undefined;
      throw err;
    } finally {
      path.length = 0;
      budget.limit = Infinity;
    }
    return budget.steps > limit ? undefined : allowed;
  };

  return {
    typeSystem: ts,
    tupleCount: stored.size,
    ignoredTuples: ignored,

    check(request) {
      const allowed = evaluate(request, stepBudget);
      // Past the budget every step answered False and the outcome is discarded: an error, never a guess.
      if (allowed === undefined) {
        throw new FgaError(
          FGA_ERROR.resolutionTooComplex,
          `Authorization Model resolution required more than ${stepBudget} steps to be resolved to a decision`,
        );
      }
      return allowed;
    },

    checkWithin(request, maxSteps) {
      return evaluate(request, maxSteps);
    },

    get lastSteps() {
      return budget.steps;
    },

    listObjects(request) {
      const shape = apiListObjectsProblem(request.user, request.relation, request.type);
      if (shape) throw new FgaError(FGA_ERROR.validation, shape);
      nodes.reset();
      path.length = 0;
      budget.steps = 0;
      budget.limit = Infinity;
      const contextual = contextualIndex(request.contextualTuples, FGA_ERROR.validation);
      const types = ts.types.get(request.type);
      if (!types) throw new FgaError(FGA_ERROR.typeNotFound, `type '${request.type}' not found`);
      if (!types.has(request.relation)) throw new FgaError(FGA_ERROR.relationNotFound, `relation '${request.type}#${request.relation}' not found`);
      const userIssue = userProblem(ts, request.user);
      if (userIssue) throw new FgaError(FGA_ERROR.validation, `invalid 'user' value: ${userIssue.message}`);
      const ctxProblem = requestContextProblem(request.context);
      if (ctxProblem) throw new FgaError(FGA_ERROR.validation, `invalid context: ${ctxProblem}`);

      return listObjects(scopeFor(request.user, contextual, request.context), request.type, request.relation, maxResults);
    },
  };
}
