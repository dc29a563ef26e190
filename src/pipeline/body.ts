/** The `body` stage: buffer the request body (bounded) on routes where a later stage reads it. */

import type { IncomingMessage } from 'node:http';
import { WardenError } from '../core/errors.js';
import { readWhole } from '../http/body.js';
import { releaseBody } from '../http/continue.js';
import { namesForeignCharset } from '../http/prechecks.js';
import { parseJsonBody, readsAsJson } from '../http/strict-json.js';
import type { RequestState } from './context.js';
import type { Stage } from './stage.js';

/** The body of a request without one (zero bytes: nothing can change it). */
const NO_BODY = Buffer.alloc(0);

/** Build the stage; `limit` is `server.limits.body_bytes`. */
export function createBodyStage(limit: number): Stage {
  const tooLarge = () => new WardenError('payload_too_large', `request body exceeds ${limit} bytes`);

  /** Read the body and check it, in one promise (no async function around it). */
  function readBody(state: RequestState, req: IncomingMessage): Promise<void> {
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) > limit) return Promise.reject(tooLarge());
    releaseBody(req);
    // Past the limit reading stops; the error answer closes the connection.
    return readWhole(req, limit, tooLarge, (body) => checkBody(state, body));
  }

  function checkBody(state: RequestState, body: Buffer): void {
    state.body = body;
    if (body.length === 0) return;
    // Rules read this body: it must mean one thing to them, to the approver and to the upstream (#12 A.2).
    // JSON sent as text/plain is read too (an upstream may parse it whatever the type says), so CEL,
    // templates and a grant's binding see the values a JSON-typed copy would show them.
    const type = state.headers['content-type'] as string | undefined;
    if (state.route?.mcp || readsAsJson(type, body)) {
      // Read as UTF-8 here; an upstream that decodes the charset named (say `text/plain; charset=utf-7`,
      // where `+ACI-` is a quote) before parsing would read other values (prechecks: the JSON types).
      if (namesForeignCharset(type)) {
        throw new WardenError('bad_request', 'a body read as JSON must be UTF-8 (a charset other than utf-8 is refused)', { reason: 'bad_json' });
      }
      state.json = parseJsonBody(body);
    }
  }

  return {
    name: 'body',
    appliesTo: (route) => route.needsBody,
    run: (state, req) => {
      // Without a connection (`warden explain`) the caller supplied the body already.
      if (!req || state.body !== undefined) return undefined;
      // Neither Content-Length (or 0) nor Transfer-Encoding: the request has no body
      // (RFC 9112 §6.3, as Node's parser frames it); nothing to wait for, no promise.
      const cl = req.headers['content-length'];
      if ((cl === undefined || cl === '0') && req.headers['transfer-encoding'] === undefined) {
        state.body = NO_BODY;
        return undefined;
      }
      return readBody(state, req);
    },
  };
}
