/**
 * Who is in the browser: the encrypted session cookie Warden sets after a
 * person signs in (identity.login, or the dev issuer's login in development),
 * CSRF tokens bound to that session, and the short-lived sign-in transaction
 * cookie. Every browser-facing page (connect, review, console) asks
 * `sessions.current(c)` and never trusts a link alone. Design note:
 * docs/login.md.
 *
 * Cookies are AES-256-GCM sealed with a key derived (HKDF) from
 * `identity.login.session.secret`; the cookie's purpose is the associated
 * data, so a sign-in transaction cookie can never pass as a session. Sessions
 * expire after `session.ttl` and are revoked server-side on logout (the store
 * remembers the session id until it would have expired anyway).
 */

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { WardenError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/store.js';

/** The person signed in to this browser. */
export interface SignedInPerson {
  /** The person's user id (the IdP claim `identity.login.user_claim`, default `sub`); the same id agent tokens act for. */
  readonly sub: string;
  /** Who vouched for the person: the login IdP's issuer, or the dev issuer. */
  readonly issuer: string;
  /** A small subset of the ID token's claims (name, email, groups, ...), for display and roles. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** How the person signed in. */
  readonly via: 'oidc' | 'dev';
  /** Random id of this session (revocation key); never shown in pages. */
  readonly sessionId: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
}

/** What a completed sign-in vouches for. */
export interface VerifiedSignIn {
  sub: string;
  issuer: string;
  claims: Record<string, unknown>;
  via: 'oidc' | 'dev';
}

export interface Sessions {
  /** How people sign in here: `oidc` (identity.login), `dev` (dev issuer), or null (nobody can). */
  readonly mode: 'oidc' | 'dev' | null;
  /** Path prefix of Warden's public URL ('' at the root). */
  readonly basePath: string;
  /**
   * The signed-in person of this request, or null. Rejects `store_unavailable` when revocation cannot be checked.
   * The answer is kept for the request; `fresh` looks again (a long-lived stream asking whether its session still holds).
   */
  current(c: Context, options?: { fresh?: boolean }): Promise<SignedInPerson | null>;
  /** Start a fresh session (new id: no fixation) and set its cookie. */
  signIn(c: Context, who: VerifiedSignIn): SignedInPerson;
  /** Revoke the session server-side (best effort when the store is down) and clear the cookie. */
  signOut(c: Context, person: SignedInPerson | null): Promise<void>;
  /** A CSRF token for a form that acts as `person` for `purpose` (e.g. `logout`, `connect`). */
  csrfToken(person: SignedInPerson, purpose: string): string;
  checkCsrf(person: SignedInPerson, purpose: string, token: unknown): boolean;
  /** `return_to` as a same-origin path under `<basePath>/.warden/`, or null when it is anything else. */
  safeReturnTo(value: unknown): string | null;
  /** Where to send a browser that must sign in first, coming back to `returnTo`. */
  loginPath(returnTo: string): string;
  /** False for a cross-site or cross-origin form post (Sec-Fetch-Site / Origin). */
  isSameOriginPost(c: Context): boolean;
  /** The sign-in transaction cookie (state, nonce, PKCE verifier, return_to): sealed, short-lived, this browser only. */
  setTransaction(c: Context, tx: Record<string, unknown>, ttlMs: number): void;
  readTransaction(c: Context): Record<string, unknown> | null;
  clearTransaction(c: Context): void;
}

export interface SessionOptions {
  mode: 'oidc' | 'dev' | null;
  /** Key material: `session.secret`, or a secret derived from the dev issuer key. */
  secret: string | Buffer | null;
  ttlMs: number;
  publicUrl: string;
  store: Store;
  logger: Logger;
  now?: () => number;
}

const COOKIE_VERSION = 'v1';
const MAX_CLAIMS_JSON = 1500;
const MAX_CLAIM_JSON = 400;
// Registered and protocol claims: the session keeps what describes the person, not the token.
const DROPPED_CLAIMS = new Set([
  'iss',
  'aud',
  'exp',
  'iat',
  'nbf',
  'nonce',
  'at_hash',
  'c_hash',
  's_hash',
  'auth_time',
  'azp',
  'jti',
  'sid',
  'acr',
  'amr',
  'typ',
  'sub',
]);

/** Keep a bounded subset of an ID token's claims for the session cookie. */
export function sessionClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let size = 2;
  for (const [k, v] of Object.entries(claims)) {
    if (DROPPED_CLAIMS.has(k) || v === undefined) continue;
    const json = JSON.stringify(v);
    if (json === undefined || json.length > MAX_CLAIM_JSON) continue;
    const add = k.length + json.length + 4;
    if (size + add > MAX_CLAIMS_JSON) continue;
    out[k] = v;
    size += add;
  }
  return out;
}

/** Sealing with AES-256-GCM under an HKDF-derived key; the purpose is bound as associated data. */
export function createCookieSealer(secret: string | Buffer) {
  const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  const encKey = Buffer.from(hkdfSync('sha256', ikm, 'warden/session/v1', 'cookie encryption', 32));
  const macKey = Buffer.from(hkdfSync('sha256', ikm, 'warden/session/v1', 'csrf', 32));
  return {
    seal(purpose: string, payload: unknown): string {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', encKey, iv);
      cipher.setAAD(Buffer.from(`warden-cookie:${COOKIE_VERSION}:${purpose}`));
      const ct = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
      return `${COOKIE_VERSION}.${Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64url')}`;
    },
    /** The payload, or null for anything that was not sealed by us for this purpose (tampered, swapped, truncated). */
    open(purpose: string, value: string | undefined): unknown {
      if (!value || value.length > 4096 || !value.startsWith(`${COOKIE_VERSION}.`)) return null;
      const raw = Buffer.from(value.slice(COOKIE_VERSION.length + 1), 'base64url');
      if (raw.length < 12 + 16 + 2) return null;
      try {
        const decipher = createDecipheriv('aes-256-gcm', encKey, raw.subarray(0, 12));
        decipher.setAAD(Buffer.from(`warden-cookie:${COOKIE_VERSION}:${purpose}`));
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        const text = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8');
        return JSON.parse(text) as unknown;
      } catch {
        return null;
      }
    },
    mac(data: string): string {
      return createHmac('sha256', macKey).update(data, 'utf8').digest('base64url');
    },
  };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

interface SessionPayload {
  sid: string;
  sub: string;
  iss: string;
  via: 'oidc' | 'dev';
  claims: Record<string, unknown>;
  iat: number;
  exp: number;
}

function isSessionPayload(v: unknown): v is SessionPayload {
  const p = v as SessionPayload | null;
  return (
    !!p &&
    typeof p === 'object' &&
    typeof p.sid === 'string' &&
    typeof p.sub === 'string' &&
    p.sub.length > 0 &&
    typeof p.iss === 'string' &&
    (p.via === 'oidc' || p.via === 'dev') &&
    typeof p.iat === 'number' &&
    typeof p.exp === 'number' &&
    !!p.claims &&
    typeof p.claims === 'object'
  );
}

const revokedKey = (sid: string) => `session:revoked:${sid}`;

/** Build the session service of one config generation. */
export function createSessions(options: SessionOptions): Sessions {
  const now = options.now ?? Date.now;
  const base = new URL(options.publicUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const secure = base.protocol === 'https:';
  // `__Host-` cookies are Secure, host-only and Path=/ (RFC 6265bis §4.1.3.2); over plain
  // http (development) the cookies stay on Warden's own prefix instead.
  const sessionCookie = secure ? '__Host-warden_session' : 'warden_session';
  const txCookie = secure ? '__Host-warden_signin' : 'warden_signin';
  const cookiePath = secure ? '/' : `${basePath}/.warden`;
  const sealer = options.secret !== null && options.mode !== null ? createCookieSealer(options.secret) : null;
  const cache = new WeakMap<Request, Promise<SignedInPerson | null>>();

  function personOf(p: SessionPayload): SignedInPerson {
    return Object.freeze({
      sub: p.sub,
      issuer: p.iss,
      via: p.via,
      claims: Object.freeze({ ...p.claims }),
      sessionId: p.sid,
      issuedAt: p.iat,
      expiresAt: p.exp,
    });
  }

  async function lookup(c: Context): Promise<SignedInPerson | null> {
    if (!sealer) return null;
    const payload = sealer.open('session', getCookie(c, sessionCookie));
    if (!isSessionPayload(payload)) return null;
    // A session of another sign-in method (config changed from dev to oidc) is not honoured.
    if (payload.via !== options.mode) return null;
    const t = now();
    if (payload.exp <= t || payload.iat > t + 60_000) return null;
    // Logout is server-side: a copied cookie dies with the session. Fail closed when the store cannot say.
    if ((await options.store.get(revokedKey(payload.sid))) !== null) return null;
    return personOf(payload);
  }

  return {
    mode: sealer ? options.mode : null,
    basePath,

    current(c, opts) {
      let hit = opts?.fresh ? undefined : cache.get(c.req.raw);
      if (!hit) cache.set(c.req.raw, (hit = lookup(c)));
      return hit;
    },

    signIn(c, who) {
      if (!sealer) throw new WardenError('forbidden', 'sign-in is not configured', { reason: 'login_not_configured' });
      const iat = now();
      const payload: SessionPayload = {
        sid: randomBytes(16).toString('base64url'),
        sub: who.sub,
        iss: who.issuer,
        via: who.via,
        claims: sessionClaims(who.claims),
        iat,
        exp: iat + options.ttlMs,
      };
      setCookie(c, sessionCookie, sealer.seal('session', payload), {
        httpOnly: true,
        secure,
        sameSite: 'Lax',
        path: cookiePath,
        maxAge: Math.max(1, Math.floor(options.ttlMs / 1000)),
      });
      const person = personOf(payload);
      cache.set(c.req.raw, Promise.resolve(person));
      return person;
    },

    async signOut(c, person) {
      deleteCookie(c, sessionCookie, { path: cookiePath, secure, httpOnly: true, sameSite: 'Lax' });
      cache.set(c.req.raw, Promise.resolve(null));
      if (!person) return;
      const left = person.expiresAt - now();
      if (left <= 0) return;
      try {
        await options.store.set(revokedKey(person.sessionId), '1', { ttlMs: left + 60_000 });
      } catch (err) {
        // The cookie is gone from this browser; a copy of it lives until its TTL. Say so.
        options.logger.warn({ err, user: person.sub }, 'logout: the session could not be revoked in the store; it expires at its TTL');
      }
    },

    csrfToken(person, purpose) {
      if (!sealer) throw new WardenError('internal', 'no session key');
      return sealer.mac(`csrf|${person.sessionId}|${purpose}`);
    },

    checkCsrf(person, purpose, token) {
      if (!sealer || typeof token !== 'string' || token.length === 0 || token.length > 128) return false;
      return safeEqual(token, sealer.mac(`csrf|${person.sessionId}|${purpose}`));
    },

    safeReturnTo(value) {
      return safeReturnTo(value, basePath);
    },

    loginPath(returnTo) {
      return `${basePath}/.warden/login?return_to=${encodeURIComponent(returnTo)}`;
    },

    isSameOriginPost(c) {
      // Browsers that send Sec-Fetch-Site say it reliably (scripts cannot set it). They send
      // `Origin: null` for forms on no-referrer pages, so Origin decides only without it.
      const site = c.req.header('sec-fetch-site');
      if (site !== undefined) return site === 'same-origin' || site === 'none';
      const origin = c.req.header('origin');
      if (origin !== undefined) return origin === base.origin;
      return true;
    },

    setTransaction(c, tx, ttlMs) {
      if (!sealer) throw new WardenError('forbidden', 'sign-in is not configured', { reason: 'login_not_configured' });
      setCookie(c, txCookie, sealer.seal('signin', { ...tx, exp: now() + ttlMs }), {
        httpOnly: true,
        secure,
        // The IdP sends the browser back with a top-level GET from its own site.
        sameSite: 'Lax',
        path: cookiePath,
        maxAge: Math.max(1, Math.floor(ttlMs / 1000)),
      });
    },

    readTransaction(c) {
      if (!sealer) return null;
      const tx = sealer.open('signin', getCookie(c, txCookie)) as Record<string, unknown> | null;
      if (!tx || typeof tx !== 'object' || typeof tx.exp !== 'number' || tx.exp <= now()) return null;
      return tx;
    },

    clearTransaction(c) {
      deleteCookie(c, txCookie, { path: cookiePath, secure, httpOnly: true, sameSite: 'Lax' });
    },
  };
}

/**
 * `value` when it is a path on this Warden under `<basePath>/.warden/` (an
 * optional query, no fragment), else null: no scheme, no `//host`, no
 * backslashes, no encoded separators or dot segments, no control characters.
 * After sign-in the browser only ever goes back to Warden's own pages.
 */
export function safeReturnTo(value: unknown, basePath: string): string | null {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return null;
  if (!value.startsWith(`${basePath}/.warden/`)) return null;
  if (/[\\\u0000-\u001f\u007f\s#]/.test(value)) return null;
  const q = value.indexOf('?');
  const path = q === -1 ? value : value.slice(0, q);
  if (path.includes('//') || /%(2f|5c|2e|00)/i.test(path) || /(^|\/)\.\.?(\/|$)/.test(path)) return null;
  let parsed: URL;
  try {
    parsed = new URL(value, 'http://warden.invalid');
  } catch {
    return null;
  }
  // What a browser resolves must be exactly what we checked.
  if (parsed.origin !== 'http://warden.invalid' || parsed.pathname + parsed.search !== value) return null;
  return value;
}

/** A random nonce/state (256 bits). */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}
