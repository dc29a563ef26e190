/** Route matching: the first route whose pattern and methods fit; it sets the request's starting policy. */

import { WardenError } from '../core/errors.js';
import { checkQuery } from '../http/query-guard.js';
import type { CompiledRoute } from './compile.js';
import type { RequestState } from './context.js';
import type { RouteTable } from './route-table.js';

/** Match `state` against the table (first match in route order); throws not_found / method_not_allowed. */
export function matchRoute(table: RouteTable, state: RequestState): CompiledRoute {
  const { route, allowed } = table.find(state.segments, state.method);
  if (route) {
    const params = route.pattern.match(state.segments) ?? {};
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
    throw new WardenError('method_not_allowed', `method ${state.method} is not allowed on this path`, {
      reason: 'method',
      headers: { Allow: [...allowed].sort().join(', ') },
    });
  }
  throw new WardenError('not_found', 'no route matches this path', { reason: 'no_route' });
}
