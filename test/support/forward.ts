/** Driving src/proxy/forward.ts's `Proxy` directly, as the pipeline does, for the proxy's own tests. */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WardenError } from '../../src/core/errors.js';
import type { ForwardRequest, Proxy, UpstreamTarget } from '../../src/proxy/forward.js';

/** The forwarding facts every proxy test uses: agent on loopback, Warden's host 'warden', a fixed request id and traceparent. */
export const TEST_FORWARDING_INFO = {
  clientIp: '127.0.0.1',
  host: 'warden',
  upstreamHost: 'upstream',
  proto: 'http',
  requestId: 'req-1',
  traceparent: '00-' + '1'.repeat(32) + '-' + '2'.repeat(16) + '-01',
} as const;

/**
 * Forward one request through `proxy`; resolves with the error the proxy
 * reported (undefined when the answer went out), after answering that error
 * as plain text when nothing had been sent yet (the pipeline's part).
 */
export function forwardOnce(
  proxy: Proxy,
  state: ForwardRequest,
  req: IncomingMessage,
  res: ServerResponse,
  target: UpstreamTarget,
): Promise<WardenError | undefined> {
  return new Promise((resolve) => {
    proxy.forward(state, req, res, target, { ...TEST_FORWARDING_INFO }, (err) => {
      if (err && !res.headersSent && !res.destroyed) {
        res.writeHead(err.status ?? 500, { 'content-type': 'text/plain' });
        res.end(err.message);
      }
      resolve(err);
    });
  });
}
