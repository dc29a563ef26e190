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

/**
 * A JSON media type (`application/json`, `…+json`) that names a charset other
 * than UTF-8. Warden reads JSON as UTF-8 only (RFC 8259 §8.1), but some
 * upstreams decode the body in the charset named (Express's `express.json()`,
 * so the MCP SDK's own server app, takes any `utf-*`): in UTF-7 `+ACI-` is a
 * `"`, and a body whose rules saw one tool call or amount would carry another.
 */
function foreignJsonCharset(value: string): boolean {
  if (!/charset/i.test(value)) return false;
  const essence = value.split(';', 1)[0].trim().toLowerCase();
  if (essence !== 'application/json' && !essence.endsWith('+json')) return false;
  return namesForeignCharset(value);
}

/**
 * Whether a Content-Type value names a charset other than UTF-8 (quoted or
 * not, in any case). Parameters are split on every `;`, quoted or not, so a
 * parser that reads fewer of them finds no charset this one missed. The body
 * stage refuses a body it reads as JSON under any type that says so
 * (src/pipeline/body.ts); here, before routing, JSON types only.
 */
export function namesForeignCharset(value: string | undefined): boolean {
  if (value === undefined || !/charset/i.test(value)) return false;
  const parts = value.split(';');
  for (let i = 1; i < parts.length; i++) {
    const eq = parts[i].indexOf('=');
    if (eq < 0 || parts[i].slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const charset = parts[i].slice(eq + 1).trim();
    if ((charset.startsWith('"') ? charset.slice(1, -1) : charset).toLowerCase() !== 'utf-8') return true;
  }
  return false;
}

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
      else if (name === 'content-type' && foreignJsonCharset(raw[i + 1])) throw bad('a JSON body must be UTF-8 (a charset other than utf-8 is refused)');
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
