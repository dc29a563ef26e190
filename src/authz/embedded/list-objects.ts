/**
 * List objects. Answers are the candidates whose check is allowed; whether the
 * call fails on a condition that cannot be evaluated follows the server's
 * reverse expansion instead: OpenFGA walks from the user through the tuples
 * that connect it to the target relation and fails when a condition on one of
 * *those* tuples cannot be evaluated, while conditions on tuples that never
 * connect to the user do not matter.
 */

import { Outcome, resolveCheck, type CheckScope } from './check.js';
import { FgaError, FGA_ERROR } from './errors.js';
import { typeOf } from './ids.js';
import type { IndexedTuple, TupleIndex } from './tuple-index.js';

const NONE: readonly IndexedTuple[] = [];

/**
 * Walks backwards from the user over tuples that can lead to `type#relation`
 * (the model graph says which relations can) and returns the first condition
 * evaluation error met on the way, if any — where the server's reverse
 * expansion would read, and fail on, the same tuple.
 */
function reverseWalkError(scope: CheckScope, type: string, relation: string): FgaError | undefined {
  const ts = scope.ts;
  const target = ts.relation(type, relation);
  if (!target) return undefined;
  const relevant = (objectType: string, rel: string): boolean => target.reachableFrom.has(`${objectType}#${rel}`);
  const tuplesWithUser = (user: string): readonly (readonly IndexedTuple[])[] => [
    scope.contextual?.withUser(user) ?? NONE,
    scope.stored.withUser(user) ?? NONE,
  ];
  const visited = new Set<string>();
  const queue: [object: string, relation: string][] = [];
  let error: FgaError | undefined;

  /** Queues `object#rel` when the tuple leads towards the target and its condition holds. */
  const follow = (t: IndexedTuple, object: string, rel: string): void => {
    if (!relevant(typeOf(object), rel)) return;
    if (t.conditionName !== '') {
      const cond = ts.conditions.get(t.conditionName);
      if (!cond) return;
      try {
        if (!cond.evaluate(scope.context, t.conditionContext)) return;
      } catch (err) {
        if (!(err instanceof FgaError)) throw err;
        error ??= err;
        return;
      }
    }
    queue.push([object, rel]);
  };

  const user = scope.user;
  for (const list of tuplesWithUser(user.user)) for (const t of list) follow(t, t.object, t.relation);
  if (!user.isUserset && !user.isWildcard) {
    for (const list of tuplesWithUser(`${user.type}:*`)) for (const t of list) follow(t, t.object, t.relation);
  }
  if (user.isUserset) queue.push([user.object, user.relation]);

  while (queue.length > 0 && error === undefined) {
    const [object, rel] = queue.pop() as [string, string];
    const key = `${object}#${rel}`;
    if (visited.has(key)) continue;
    visited.add(key);
    const objectType = typeOf(object);
    // Usersets: tuples granting `object#rel` as a user.
    for (const list of tuplesWithUser(key)) for (const t of list) follow(t, t.object, t.relation);
    // Computed usersets on the same object.
    for (const other of ts.computedFrom.get(objectType)?.get(rel) ?? []) {
      if (relevant(objectType, other)) queue.push([object, other]);
    }
    // Tuple-to-userset: parents pointing at `object` through a tupleset relation.
    for (const list of tuplesWithUser(object)) {
      for (const t of list) {
        for (const rule of ts.ttuRules.get(typeOf(t.object)) ?? []) {
          if (rule.tupleset === t.relation && rule.computed === rel) follow(t, t.object, rule.relation);
        }
      }
    }
  }
  return error;
}

/** Lists the objects of `type` for which `relation` holds for the scope's user (sorted, at most `maxResults`). */
export function listObjects(scope: CheckScope, type: string, relation: string, stored: TupleIndex, maxResults: number): string[] {
  const walkError = reverseWalkError(scope, type, relation);
  if (walkError) throw walkError;
  const candidates = new Set<string>(stored.objectsOfType(type) ?? []);
  for (const o of scope.contextual?.objectsOfType(type) ?? []) candidates.add(o);
  // `document:1#viewer` is itself a viewer of document:1 (and of whatever relations are
  // computed from viewer), with or without tuples on document:1.
  if (scope.user.isUserset && scope.user.type === type) candidates.add(scope.user.object);
  const out: string[] = [];
  for (const object of [...candidates].sort()) {
    scope.visited.clear();
    try {
      if (resolveCheck(scope, object, relation, 0) === Outcome.True) {
        out.push(object);
        if (out.length >= maxResults) break;
      }
    } catch (err) {
      // A condition the walk from the user never reached does not connect this object to the user.
      if (!(err instanceof FgaError) || err.code !== FGA_ERROR.validation) throw err;
    } finally {
      scope.visited.clear();
    }
  }
  return out;
}
