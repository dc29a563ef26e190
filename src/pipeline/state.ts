/** A new request state: the canonical request, nothing decided yet. */

import type { IncomingHttpHeaders } from 'node:http';
import type { CanonicalTarget } from './canonical.js';
import type { RequestState } from './context.js';
import { newRequestId } from './request-id.js';
import { NO_PARAMS } from './routes.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Before a route matches, a request has no parameters and no policy. Shared
 * and frozen: matching replaces both (match.ts), so a request allocates
 * neither twice, and anything that wrote to them before a match would throw.
 */
const NO_POLICY: RequestState['policy'] = Object.freeze({ authorize: Object.freeze([]) as never[], approval: Object.freeze([]) as never[] });

export interface NewStateInit {
  method: string;
  target: CanonicalTarget;
  headers: IncomingHttpHeaders;
  clientIp: string;
  requestId?: string;
}

/**
 * The state of one request; an inbound X-Request-Id is kept when it is well formed.
 * Every field a stage, the proxy or the audit step may set later is present
 * from the start (undefined): the object keeps one shape for its whole life,
 * with every field stored in the object itself. (Fields added one by one after
 * creation each moved the object to a new hidden class and grew a separate
 * property array, several allocations per request on the pass-through path.)
 * state.test.ts checks that this list covers RequestState.
 */
export function newState(init: NewStateInit): RequestState {
  const inbound = init.requestId ?? (init.headers['x-request-id'] as string | undefined);
  return {
    id: inbound && REQUEST_ID.test(inbound) ? inbound : newRequestId(),
    startedAt: Date.now(),
    method: init.method,
    path: init.target.path,
    segments: init.target.segments,
    query: init.target.query,
    headers: init.headers,
    clientIp: init.clientIp,
    params: NO_PARAMS,
    policy: NO_POLICY,
    upstreamHeaders: [],
    checks: [],
    route: undefined,
    routeIndex: undefined,
    principal: undefined,
    token: undefined,
    body: undefined,
    json: undefined,
    mcp: undefined,
    responseHook: undefined,
    responseHead: undefined,
    responseBuffer: undefined,
    signal: undefined,
    releasing: undefined,
    upstreamAuthorization: undefined,
    forwardOnlyHeaders: undefined,
    approvalId: undefined,
    limitTrace: undefined,
    afterApprove: undefined,
    onSettled: undefined,
    approval: undefined,
    assertionHeaders: undefined,
    responseHeaders: undefined,
    streamedBody: undefined,
    shadow: undefined,
    shadowMode: undefined,
    decision: undefined,
    reason: undefined,
    status: undefined,
    cut: undefined,
    upstreamStartedAt: undefined,
    upstreamHeadersAt: undefined,
  };
}
