/**
 * Binds an `Mcp-Session-Id` to the principal whose request created it, so a
 * session handle leaked to (or guessed by) another agent or user is useless.
 * Bindings live in the store with a sliding TTL.
 */

import { WardenError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import type { Store } from '../store/store.js';
import { sha256Hex } from '../core/canonical-json.js';

/** Who owns a session: issuer, agent and user (null user = machine token; null principal = public route). */
export interface SessionOwner {
  iss: string | null;
  agent: string | null;
  user: string | null;
}

export interface SessionBindings {
  /** Throws `not_found` (unknown session) or `forbidden` (owned by someone else). */
  check(route: string, sessionId: string, principal: Principal | undefined): Promise<void>;
  /** Bind a new session; throws `forbidden` when it is already bound to someone else. */
  bind(route: string, sessionId: string, principal: Principal | undefined): Promise<void>;
  unbind(route: string, sessionId: string): Promise<void>;
}

// Visible ASCII per the MCP transport; no comma, which is how duplicate headers get joined.
const SESSION_ID = /^[\x21-\x2b\x2d-\x7e]{1,512}$/;

/** Validate an `Mcp-Session-Id` request header value; undefined when absent. */
export function sessionIdFrom(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header) || !SESSION_ID.test(header)) {
    throw new WardenError('bad_request', 'invalid Mcp-Session-Id header', { reason: 'invalid_session_id' });
  }
  return header;
}

/** The owner recorded for `principal`. */
export function ownerOf(principal: Principal | undefined): SessionOwner {
  return { iss: principal?.issuer ?? null, agent: principal?.agent ?? null, user: principal?.user ?? null };
}

function sameOwner(a: SessionOwner, b: SessionOwner): boolean {
  return a.iss === b.iss && a.agent === b.agent && a.user === b.user;
}

/** Session bindings over `store`; `ttlMs` is extended when a session is used past half its life. */
export function createSessionBindings(store: Store, ttlMs: number, now: () => number = Date.now): SessionBindings {
  // The id is hashed: keys stay short and the store never holds a usable handle.
  const key = (route: string, sessionId: string) => `mcp:session:${encodeURIComponent(route)}:${sha256Hex(sessionId)}`;

  return {
    async check(route, sessionId, principal) {
      const raw = await store.get(key(route, sessionId));
      if (raw === null) {
        throw new WardenError('not_found', 'unknown or expired MCP session; initialize a new one', { reason: 'unknown_session' });
      }
      const stored = JSON.parse(raw) as SessionOwner & { exp: number };
      if (!sameOwner(stored, ownerOf(principal))) {
        throw new WardenError('forbidden', 'this MCP session belongs to another agent or user', { reason: 'session_principal_mismatch' });
      }
      if (stored.exp - now() < ttlMs / 2) {
        const next = JSON.stringify({ ...stored, exp: now() + ttlMs });
        await store.compareAndSet(key(route, sessionId), raw, next, { ttlMs });
      }
    },
    async bind(route, sessionId, principal) {
      const owner = ownerOf(principal);
      const value = JSON.stringify({ ...owner, exp: now() + ttlMs });
      if (await store.set(key(route, sessionId), value, { ttlMs, ifAbsent: true })) return;
      const raw = await store.get(key(route, sessionId));
      if (raw === null || !sameOwner(JSON.parse(raw) as SessionOwner, owner)) {
        throw new WardenError('forbidden', 'the upstream returned a session id bound to another principal', { reason: 'session_conflict' });
      }
    },
    async unbind(route, sessionId) {
      await store.del(key(route, sessionId));
    },
  };
}
