/** Route matching: the first route whose pattern and methods fit; it sets the request's starting policy. */

import { WardenError } from '../core/errors.js';
import { checkQuery } from '../http/query-guard.js';
import type { CompiledRoute } from './compile.js';
import type { RequestState } from './context.js';

/** Match `state` against `routes` in order; throws not_found / method_not_allowed. */
export function matchRoute(routes: readonly CompiledRoute[], state: RequestState): CompiledRoute {
  const segments = state.segments;
  // Methods of the routes whose pattern fits but whose methods do not: the 405's Allow (RFC 9110 §15.5.6).
  let allowed: Set<string> | undefined;
  for (const route of routes) {
    const params = route.pattern.match(segments);
    if (!params) continue;
    if (route.methods && !route.methods.has(state.method)) {
      allowed ??= new Set();
      for (const m of route.methods) allowed.add(m);
      continue;
    }
    state.route = route.config;
    state.routeIndex = route.index;
    state.params = params;
    state.policy = {
      // `authorize: []` (authenticated only) contributes no group, so the stage is skipped.
      authorize: route.config.authorize?.checks.length ? [route.config.authorize] : [],
      approval: (route.config.approval ?? []).map((rule, i) => ({ rule, source: `routes[${route.index}].approval[${i}]` })),
      credentials: route.config.credentials,
    };
    if (route.queryReads !== null) checkQuery(state.query, route.queryReads);
    return route;
  }
  if (allowed) {
    throw new WardenError('method_not_allowed', `method ${state.method} is not allowed on this path`, { reason: 'method', headers: { Allow: [...allowed].sort().join(', ') } });
  }
  throw new WardenError('not_found', 'no route matches this path', { reason: 'no_route' });
}
