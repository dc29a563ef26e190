/**
 * The admin listener's guard. Reachability is not authority: a browser on the
 * operator's machine can be made to send requests there (cross-site forms,
 * DNS rebinding). So every admin request must name the listener in `Host`
 * (a rebinding attacker's name never matches), state-changing requests must
 * not come from another site (`Origin`, `Sec-Fetch-Site`), and admin endpoints
 * require `server.admin_token` as a bearer secret (compared in constant time).
 * `/metrics` stays open unless `server.metrics_auth` is set.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { WardenError } from '../core/errors.js';
import { problemResponse } from './problem.js';

export interface AdminGuardOptions {
  /** `server.admin_listen` as configured (host:port). */
  listen: string;
  /** `server.admin_hosts`: extra host names the listener may be addressed by. */
  hosts: readonly string[];
  /** `server.admin_token`; without it, reads stay open and state changes are refused. */
  token?: string;
  /** `server.metrics_auth`: /metrics requires the token too. */
  metricsAuth: boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The host name of a Host header or URL authority (lowercased, brackets kept off IPv6), or null when malformed. */
export function hostName(authority: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/.exec(authority.trim());
  if (!m) return null;
  return m[1]
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
}

/** Whether `origin` (a serialized origin, or "null") names the authority `host` (a Host header). */
function sameAuthority(origin: string, host: string): boolean {
  if (origin === 'null') return false;
  try {
    return new URL(origin).host === new URL(`http://${host.trim()}`).host;
  } catch {
    return false;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** A refusal of the guard, rendered like every other Warden error. */
function problem(code: 'forbidden' | 'unauthenticated', detail: string, headers: Record<string, string> = {}): Response {
  return problemResponse(new WardenError(code, detail, { headers }));
}

/** Build the guard middleware (mounted first on the admin app). */
export function createAdminGuard(options: AdminGuardOptions): MiddlewareHandler {
  const listenHost = hostName(options.listen);
  const allowedNames = new Set(['localhost', ...options.hosts.map((h) => hostName(h) ?? h.toLowerCase())]);
  if (listenHost && !isIP(listenHost)) allowedNames.add(listenHost);
  const tokenDigest = options.token ? digest(options.token) : null;

  /** IP literals cannot be rebound; names must be ones the operator uses. */
  const hostAllowed = (name: string | null) => name !== null && (isIP(name) !== 0 || allowedNames.has(name));

  function tokenValid(authorization: string | undefined): boolean {
    if (!tokenDigest || !authorization) return false;
    const m = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!m) return false;
    return timingSafeEqual(digest(m[1]), tokenDigest);
  }

  return async function adminGuard(c, next) {
    if (!hostAllowed(hostName(c.req.header('host') ?? ''))) {
      return problem('forbidden', 'the Host header does not name this admin listener (add the name to server.admin_hosts)');
    }
    const method = c.req.method.toUpperCase();
    const changes = !SAFE_METHODS.has(method);
    if (changes) {
      const site = c.req.header('sec-fetch-site');
      if (site !== undefined && site !== 'same-origin' && site !== 'none') return problem('forbidden', 'cross-site request to the admin listener');
      const origin = c.req.header('origin');
      // A browser's Origin must be this very listener (its Host, already checked above): any other
      // origin, an IP literal of another machine included, is another site.
      if (origin !== undefined && !sameAuthority(origin, c.req.header('host') ?? '')) {
        return problem('forbidden', 'cross-site request to the admin listener');
      }
    }
    const path = new URL(c.req.url).pathname;
    const open = path === '/metrics' ? !options.metricsAuth : !changes && !tokenDigest;
    if (!open) {
      if (!tokenDigest) return problem('forbidden', 'state-changing admin endpoints need server.admin_token');
      if (!tokenValid(c.req.header('authorization'))) {
        return problem('unauthenticated', 'admin endpoints need Authorization: Bearer <server.admin_token>', {
          'www-authenticate': 'Bearer realm="warden-admin"',
        });
      }
    }
    await next();
  };
}
