/**
 * Checks on the raw HTTP message before anything else looks at it: the
 * smuggling and confusion cases Node's parser lets through.
 */

import type { IncomingMessage } from 'node:http';
import { WardenError } from '../core/errors.js';
import { isValidHost, METHOD_OVERRIDE_HEADERS } from '../proxy/headers.js';

/** Headers a message may carry at most once, each with its bit (a request's seen set is one number, not a Set per request). */
const SINGLE = new Map(
  ['host', 'authorization', 'content-length', 'transfer-encoding', 'content-type', 'mcp-session-id', 'warden-approval'].map((n, i) => [n, 1 << i]),
);
const HOST = SINGLE.get('host')!;
const OVERRIDES = new Set(METHOD_OVERRIDE_HEADERS);

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

const bad = (why: string) => new WardenError('bad_request', why, { reason: 'bad_message' });

/** Throws `bad_request` for messages that two parsers could read differently. */
export function precheck(req: IncomingMessage): void {
  const raw = req.rawHeaders;
  let seen = 0;
  let cl = false;
  let te = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const bit = SINGLE.get(name);
    if (bit !== undefined) {
      if ((seen & bit) !== 0) throw bad(`duplicate ${name} header`);
      seen |= bit;
      if (name === 'content-length') cl = true;
      // `Host: evil.com/x?` must not reach anything that builds URLs from it (X-Forwarded-Host, links).
      if (name === 'host' && !isValidHost(raw[i + 1])) throw bad('malformed Host header');
      if (name === 'transfer-encoding') {
        te = true;
        if (raw[i + 1].trim().toLowerCase() !== 'chunked') throw bad('only Transfer-Encoding: chunked is accepted');
      }
    } else if (OVERRIDES.has(name)) {
      throw bad(`method override header ${name} is not accepted`);
    }
    // Node rejects CR/LF and NUL in values, but not every control character.
    // Authorization is exempt from the scan (a JWT is long): it is never
    // forwarded, and where it is used it must match the strict bearer syntax.
    if (name !== 'authorization' && CONTROL.test(raw[i + 1])) throw bad(`control character in ${name} header`);
  }
  if (cl && te) throw bad('both Content-Length and Transfer-Encoding');
  if ((seen & HOST) === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) throw bad('missing Host header');
}
