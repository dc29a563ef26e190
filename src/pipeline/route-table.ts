/**
 * The route table compiled into a trie, so finding a route costs the same with
 * 2 routes or 2,000 (#17). Semantics are exactly the linear scan's: the route
 * chosen is the lowest-indexed one whose pattern fits the path AND whose
 * methods allow the request; when some pattern fits but no route allows the
 * method, the answer is 405 rather than 404.
 *
 * Layout: one node per segment position. A node has literal children (keyed
 * by the exact decoded segment: the first in a slot of its own, any others in
 * a Map, since most nodes of a large table have one), one `any` child
 * (`:param` and `*` both take exactly one segment of any value), the routes
 * that end here, and the routes whose trailing `**` starts here (they fit any
 * remaining segments, zero included); a list no route needs is null, not an
 * empty array (a table of 2,000 routes has ~6,000 nodes for a whole config
 * generation). Route lists are kept in ascending index order, so a walk can
 * stop early in a list once it reaches an index no better than the best found.
 */

import type { CompiledRoute } from './compile.js';

interface Entry {
  readonly index: number;
  readonly methods: ReadonlySet<string> | null;
}

interface Node {
  /** The first literal child's segment ('' when none: a literal segment is never empty). */
  literal: string;
  /** Its node. */
  literalNode: Node | null;
  /** Every other literal child. */
  literals: Map<string, Node> | null;
  any: Node | null;
  /** Routes whose pattern ends exactly at this depth. */
  end: Entry[] | null;
  /** Routes whose `**` begins at this depth. */
  rest: Entry[] | null;
}

function node(): Node {
  return { literal: '', literalNode: null, literals: null, any: null, end: null, rest: null };
}

/** The literal child of `n` for `segment`. */
function literalChild(n: Node, segment: string): Node | undefined {
  if (n.literalNode !== null && n.literal === segment) return n.literalNode;
  return n.literals?.get(segment);
}

function addLiteralChild(n: Node, segment: string): Node {
  const had = literalChild(n, segment);
  if (had) return had;
  const child = node();
  if (n.literalNode === null) {
    n.literal = segment;
    n.literalNode = child;
  } else (n.literals ??= new Map()).set(segment, child);
  return child;
}

export interface RouteLookup {
  /** The chosen route, or undefined. */
  route: CompiledRoute | undefined;
  /** Some pattern fits the path but no fitting route allows the method. */
  methodMismatch: boolean;
  /** Then: every method the fitting routes allow (the 405's Allow, RFC 9110 §15.5.6). */
  allowed?: ReadonlySet<string>;
}

export interface RouteTable {
  readonly routes: readonly CompiledRoute[];
  find(segments: readonly string[], method: string): RouteLookup;
}

/** Split a pattern source the way `compilePattern` does. */
function patternParts(source: string): string[] {
  const parts = source.split('/').slice(1);
  if (parts.length && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Compile routes (already validated) into a trie that keeps first-match order. */
export function compileRouteTable(routes: readonly CompiledRoute[]): RouteTable {
  const root = node();
  // By index, whatever order the array is in: first match means lowest index.
  const byIndex: CompiledRoute[] = [];
  const sorted = [...routes].sort((a, b) => a.index - b.index);
  for (const route of sorted) {
    byIndex[route.index] = route;
    const entry: Entry = { index: route.index, methods: route.methods };
    let at = root;
    const parts = patternParts(route.pattern.source);
    let rest = false;
    for (const part of parts) {
      if (part === '**') {
        rest = true;
        break;
      }
      if (part === '*' || part.startsWith(':')) at = at.any ??= node();
      else at = addLiteralChild(at, part);
    }
    // A list of one is built as such: push into [] would reserve room for 17.
    if (rest) at.rest = at.rest ? [...at.rest, entry] : [entry];
    else at.end = at.end ? [...at.end, entry] : [entry];
  }

  // Walk state, reset per lookup (lookups are synchronous, never re-entered).
  let best = Infinity;
  let allowed: Set<string> | undefined;
  let method = '';
  let segs: readonly string[] = [];

  function take(list: Entry[]): void {
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      if (e.index >= best) return;
      if (e.methods === null || e.methods.has(method)) {
        best = e.index;
        return;
      }
      // Until a route is found every fitting entry is visited, so this is complete when none is.
      allowed ??= new Set();
      for (const m of e.methods) allowed.add(m);
    }
  }

  function walk(n: Node, depth: number): void {
    if (n.rest !== null) take(n.rest);
    if (depth === segs.length) {
      if (n.end !== null) take(n.end);
      return;
    }
    const lit = literalChild(n, segs[depth]);
    if (lit) walk(lit, depth + 1);
    if (n.any) walk(n.any, depth + 1);
  }

  return {
    routes,
    find(segments, m) {
      best = Infinity;
      allowed = undefined;
      method = m;
      segs = segments;
      walk(root, 0);
      segs = [];
      const found = allowed;
      allowed = undefined;
      if (best !== Infinity) return { route: byIndex[best], methodMismatch: false };
      return found ? { route: undefined, methodMismatch: true, allowed: found } : { route: undefined, methodMismatch: false };
    },
  };
}

/** The plain scan in order (the reference the property test compares against). */
export function findRouteLinear(routes: readonly CompiledRoute[], segments: readonly string[], method: string): RouteLookup {
  let allowed: Set<string> | undefined;
  for (const route of routes) {
    if (!route.pattern.match(segments)) continue;
    if (route.methods && !route.methods.has(method)) {
      allowed ??= new Set();
      for (const m of route.methods) allowed.add(m);
      continue;
    }
    return { route, methodMismatch: false };
  }
  return allowed ? { route: undefined, methodMismatch: true, allowed } : { route: undefined, methodMismatch: false };
}
