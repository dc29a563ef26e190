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
    const config = route.config;
    state.route = config;
    state.routeIndex = route.index;
    state.params = route.pattern.match(state.segments) ?? {};
    // Fresh arrays per request: stages add to them (MCP tool rules, budget approvals).
    state.policy = {
      // `authorize: []` (authenticated only) contributes no group, so the stage is skipped.
      authorize: config.authorize?.checks.length ? [config.authorize] : [],
      approval: config.approval?.length ? config.approval.map((rule, i) => ({ rule, source: `routes[${route.index}].approval[${i}]` })) : [],
      credentials: config.credentials,
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
