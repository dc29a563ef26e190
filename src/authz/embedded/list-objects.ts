/**
 * List objects. Answers are the candidates whose check is allowed; whether the
 * call fails on a condition that cannot be evaluated follows the server's
 * reverse expansion instead: OpenFGA walks from the user through the tuples
 * that connect it to the target relation and fails when a condition on one of
 * *those* tuples cannot be evaluated, while conditions on tuples that never
 * connect to the user do not matter.
 */

import { Outcome, resolveCheck, type CheckScope } from './check.js';
import type { CompactTupleIndex } from './compact-index.js';
import { FgaError, FGA_ERROR } from './errors.js';

/**
 * Walks backwards from the user over tuples that can lead to `type#relation`
 * (the model graph says which relations can) and returns the first condition
 * evaluation error met on the way, if any — where the server's reverse
 * expansion would read, and fail on, the same tuple.
 */
function reverseWalkError(scope: CheckScope, type: string, relation: string): FgaError | undefined {
  const { ts, ids, nodes } = scope;
  const target = ts.relation(type, relation);
  if (!target) return undefined;
  const typeName = (node: number): string => ids.typeNames[nodes.type(node)] ?? '';
  const relevant = (objectType: string, rel: string): boolean => target.reachableFrom.has(`${objectType}#${rel}`);
  const indexes = [scope.contextual, scope.stored].filter((x): x is CompactTupleIndex => x !== undefined);
  const visited = new Set<number>();
  const queue: [node: number, rel: number][] = [];
  let error: FgaError | undefined;

  /** Queues `node#rel` when row `t` leads towards the target and its condition holds. */
  const follow = (index: CompactTupleIndex, t: number, node: number, rel: number): void => {
    if (rel < 0 || !relevant(typeName(node), ids.relNames[rel])) return;
    const c = index.condition(t);
    if (c !== undefined) {
      const cond = ts.conditions.get(c.name);
      if (!cond) return;
      try {
        if (!cond.evaluate(scope.context, c.context)) return;
      } catch (err) {
        if (!(err instanceof FgaError)) throw err;
        error ??= err;
        return;
      }
    }
    queue.push([node, rel]);
  };
  /** Every row whose user is `userNode[#userRel]`, with the row's own object and relation. */
  const fromUser = (userNode: number, userRel: number): void => {
    for (const index of indexes) for (const t of index.withUser(userNode, userRel)) follow(index, t, index.tObj[t], index.tRel[t]);
  };

  const user = scope.user;
  fromUser(scope.userNode, scope.userRel);
  if (!user.isUserset && !user.isWildcard) fromUser(nodes.lookup(`${user.type}:*`), 0);
  if (user.isUserset) queue.push([scope.userNode, scope.userRel]);

  while (queue.length > 0 && error === undefined) {
    const [node, rel] = queue.pop() as [number, number];
    const key = node * ids.relCount + rel;
    if (visited.has(key)) continue;
    visited.add(key);
    const objectType = typeName(node);
    // Usersets: tuples granting `node#rel` as a user.
    fromUser(node, rel);
    // Computed usersets on the same object.
    for (const other of ts.computedFrom.get(objectType)?.get(ids.relNames[rel]) ?? []) {
      if (relevant(objectType, other)) queue.push([node, ids.rel(other)]);
    }
    // Tuple-to-userset: parents pointing at `node` through a tupleset relation.
    for (const index of indexes) {
      for (const t of index.withUser(node, 0)) {
        const tupleset = ids.relNames[index.tRel[t]];
        for (const rule of ts.ttuRules.get(typeName(index.tObj[t])) ?? []) {
          if (rule.tupleset === tupleset && rule.computed === ids.relNames[rel]) follow(index, t, index.tObj[t], ids.rel(rule.relation));
        }
      }
    }
  }
  return error;
}

/** Lists the objects of `type` for which `relation` holds for the scope's user (sorted, at most `maxResults`). */
export function listObjects(scope: CheckScope, type: string, relation: string, maxResults: number): string[] {
  const walkError = reverseWalkError(scope, type, relation);
  if (walkError) throw walkError;
  const { ids, nodes } = scope;
  const typeId = ids.type(type);
  const typeOfNode = (node: number): number => nodes.type(node);
  const candidates = new Set<string>();
  for (const node of scope.stored.objectsOfType(typeId, typeOfNode)) candidates.add(nodes.name(node));
  for (const node of scope.contextual?.objectsOfType(typeId, typeOfNode) ?? []) candidates.add(nodes.name(node));
  // `document:1#viewer` is itself a viewer of document:1 (and of whatever relations are
  // computed from viewer), with or without tuples on document:1.
  if (scope.user.isUserset && scope.user.type === type) candidates.add(scope.user.object);
  const rel = ids.rel(relation);
  const out: string[] = [];
  for (const object of [...candidates].sort()) {
    scope.path.length = 0;
    try {
      if (resolveCheck(scope, nodes.id(object), rel, 0) === Outcome.True) {
        out.push(object);
        if (out.length >= maxResults) break;
      }
    } catch (err) {
      // A condition the walk from the user never reached does not connect this object to the user.
      if (!(err instanceof FgaError) || err.code !== FGA_ERROR.validation) throw err;
    } finally {
      scope.path.length = 0;
    }
  }
  return out;
}
