/**
 * `Expect: 100-continue` (RFC 9110 §10.1.1): the client holds its body back
 * until the server answers `100 Continue` or gives a final answer. curl does
 * this for every body over 1 MiB, and so do other HTTP clients for uploads.
 *
 * Warden meets the expectation itself, as the server the client talks to:
 * it sends `100 Continue` only when something is about to read the body (the
 * body stage, or the forwarder streaming it upstream), that is once every
 * check that needs only the request head has passed. A request refused by its
 * head (no route, no or bad token, forbidden by a check on the path, rate
 * limited, a Content-Length over the limit) is answered without the client
 * ever sending its body; Node then closes that connection, whose unsent body
 * could otherwise follow. The expectation is never forwarded (see
 * proxy/headers.ts): undici cannot send one, and an HTTP/1.0 request's is
 * ignored, as the RFC says.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';

/** Requests whose client waits for `100 Continue`, with the response to send it on. */
const waiting = new WeakMap<IncomingMessage, ServerResponse>();

/** The client of `req` waits for `100 Continue` before it sends the body (the server's `checkContinue`). */
export function holdBody(req: IncomingMessage, res: ServerResponse): void {
  waiting.set(req, res);
}

/** Before reading `req`'s body: tell a client that waits for it to send it (once; a no-op for every other request). */
export function releaseBody(req: IncomingMessage): void {
  if (req.headers.expect === undefined) return;
  const res = waiting.get(req);
  if (res === undefined) return;
  waiting.delete(req);
  if (!res.headersSent && !res.writableEnded) res.writeContinue();
}
