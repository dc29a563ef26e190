/**
 * The assertion service of one config generation: the signing key, the public
 * key set, and signed assertions per (principal, route settings, approval),
 * reused for half their lifetime unless `jti: per_request` asks for a fresh
 * signature every time.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import type { AssertionSettings, Config } from '../../config/schema.js';
import { WardenError } from '../../core/errors.js';
import type { Principal } from '../../core/principal.js';
import { buildClaims, type AllowedCheck } from './claims.js';
import type { ApprovalEvidence } from '../../pipeline/context.js';
import { loadDevAssertionKey, parseAssertionKey, type AssertionKey, type PublicJwk } from './keys.js';
import { compileAssertionPlan, type AssertionPlan, type RouteAssertion } from './settings.js';
import { createSigner, type SignFn } from './signer.js';

export interface AssertionRequest {
  /** The request id, and whether Warden generated it (an agent-chosen id never becomes a jti). */
  requestId: string;
  requestIdGenerated: boolean;
  approval?: ApprovalEvidence;
  authz?: readonly AllowedCheck[];
}

export interface AssertionService {
  readonly issuer: string;
  readonly plan: AssertionPlan;
  /** Kid of the key that signs. */
  readonly signingKid: string;
  /** Every published key: active, next and retiring. */
  jwks(): { keys: PublicJwk[] };
  /** A signed assertion for this request (synchronous; cached unless per_request or approved). */
  assertion(settings: RouteAssertion, principal: Principal, request: AssertionRequest): string;
}

interface Cached {
  readonly token: string;
  /** Epoch ms after which a new assertion is signed. */
  readonly reuseUntil: number;
}

/** Entries per principal before its slot map is reset (routes × distinct authz check sets). */
const MAX_SLOTS_PER_PRINCIPAL = 256;

/** Load the keys named in the config (or the development key) and build the service; null when assertions are not used. */
export async function createAssertionService(
  config: Config,
  options: { publicUrl: string; dataDir: string; env?: NodeJS.ProcessEnv },
): Promise<AssertionService | null> {
  const settings: AssertionSettings = config.identity.assertion;
  const plan = compileAssertionPlan(config.routes);
  if (!plan.used && settings.keys.length === 0) return null;
  const env = options.env ?? process.env;

  let keys: AssertionKey[];
  if (settings.keys.length > 0) {
    keys = settings.keys.map((k) => {
      try {
        return parseAssertionKey(k);
      } catch (err) {
        throw new WardenError('config_invalid', `identity.assertion.keys (${k.id}): ${(err as Error).message}`, { reason: 'assertion_key_invalid' });
      }
    });
  } else {
    if (env.NODE_ENV === 'production') {
      throw new WardenError('config_invalid', 'identity.assertion.keys: required when NODE_ENV=production', { reason: 'assertion_key_missing' });
    }
    keys = [await loadDevAssertionKey(options.dataDir)];
  }
  const active = keys.filter((k) => k.status === 'active');
  if (active.length !== 1)
    throw new WardenError('config_invalid', 'identity.assertion.keys: exactly one key must be active', { reason: 'assertion_key_active' });
  const signingKey = active[0];
  const sign: SignFn = createSigner(signingKey);
  const published = Object.freeze(keys.map((k) => k.publicJwk));
  const issuer = (settings.issuer ?? options.publicUrl).replace(/\/+$/, '') || options.publicUrl;
  const ttlSeconds = Math.max(1, Math.floor(settings.ttl / 1000));
  const perRequest = settings.jti === 'per_request';

  // Keyed by the Principal object the verified-token cache hands out: a warm
  // request finds its assertion without hashing the token, and entries go
  // when the token leaves the cache.
  const cache = new WeakMap<Principal, Map<string | number, Cached>>();

  function signFor(settings: RouteAssertion, principal: Principal, request: AssertionRequest, now: number, jti: string): string {
    return sign(
      buildClaims({
        issuer,
        audience: settings.audience,
        principal,
        route: settings.route,
        now,
        ttlSeconds,
        jti,
        mapped: settings.mapped,
        approval: request.approval,
        authz: settings.authz ? (request.authz ?? []) : undefined,
      }),
    );
  }

  return {
    issuer,
    plan,
    signingKid: signingKey.kid,
    jwks: () => ({ keys: published.map((k) => ({ ...k })) }),
    assertion(settings, principal, request) {
      const nowMs = Date.now();
      const now = Math.floor(nowMs / 1000);
      // An approval is evidence about one request: never shared with another.
      if (perRequest || request.approval) {
        const jti = request.requestIdGenerated ? request.requestId : randomUUID();
        return signFor(settings, principal, request, now, jti);
      }
      const key = settings.authz ? `${settings.slot}|${checksKey(request.authz)}` : settings.slot;
      let slots = cache.get(principal);
      const hit = slots?.get(key);
      if (hit && nowMs < hit.reuseUntil) return hit.token;
      const token = signFor(settings, principal, request, now, randomBytes(16).toString('base64url'));
      const exp = Math.min(now + ttlSeconds, principal.expiresAt);
      // Reuse for half the lifetime: an upstream always gets at least ttl/2 of validity.
      const reuseUntil = now * 1000 + ((exp - now) * 1000) / 2;
      if (!slots) cache.set(principal, (slots = new Map()));
      else if (slots.size >= MAX_SLOTS_PER_PRINCIPAL) slots.clear();
      slots.set(key, { token, reuseUntil });
      return token;
    },
  };
}

function checksKey(checks: readonly AllowedCheck[] | undefined): string {
  if (!checks || checks.length === 0) return '';
  let out = '';
  for (const c of checks) out += `${c.user}\u0000${c.relation}\u0000${c.object}\u0001`;
  return out;
}
