/** A new request state: the canonical request, nothing decided yet. */

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CanonicalTarget } from './canonical.js';
import type { RequestState } from './context.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface NewStateInit {
  method: string;
  target: CanonicalTarget;
  headers: IncomingHttpHeaders;
  clientIp: string;
  requestId?: string;
}

/** The state of one request; an inbound X-Request-Id is kept when it is well formed. */
export function newState(init: NewStateInit): RequestState {
  const inbound = init.requestId ?? (init.headers['x-request-id'] as string | undefined);
  return {
    id: inbound && REQUEST_ID.test(inbound) ? inbound : randomUUID(),
    startedAt: Date.now(),
    method: init.method,
    path: init.target.path,
    segments: init.target.segments,
    query: init.target.query,
    headers: init.headers,
    clientIp: init.clientIp,
    params: {},
    policy: { authorize: [], approval: [] },
    upstreamHeaders: [],
    checks: [],
  };
}
