/**
 * What an identity assertion says: who the request is for (`sub`), which agents
 * act for them (`act`, RFC 8693 §4.1, the calling agent outermost and the
 * incoming token's own chain beneath it), the scope, the route, and — only when
 * a person released the request — the approval evidence.
 */

import type { Principal } from '../../core/principal.js';
import type { ApprovalEvidence } from '../../pipeline/context.js';

/** Claims Warden sets itself; a route's `claims:` mapping cannot produce them. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'act',
  'may_act',
  'scope',
  'client_id',
  'azp',
  'cnf',
  'route',
  'approval',
  'authz',
]);

/** One check that allowed the request (for the optional `authz` claim). */
export interface AllowedCheck {
  user: string;
  relation: string;
  object: string;
}

/** An `act` claim: the actor and, nested, the actor before it. */
export interface ActClaim {
  sub: string;
  client_id?: string;
  iss?: string;
  act?: ActClaim;
}

/** Deepest chain copied; the verifier already refuses tokens with deeper ones. */
const MAX_DEPTH = 9;

/** Copy a verified incoming `act` chain, keeping only the members that identify an actor. */
function copyChain(act: unknown, depth: number): ActClaim | undefined {
  if (act === null || typeof act !== 'object' || Array.isArray(act) || depth >= MAX_DEPTH) return undefined;
  const a = act as Record<string, unknown>;
  if (typeof a.sub !== 'string' || a.sub.length === 0) return undefined;
  const out: ActClaim = { sub: a.sub };
  if (typeof a.client_id === 'string') out.client_id = a.client_id;
  if (typeof a.iss === 'string') out.iss = a.iss;
  const inner = copyChain(a.act, depth + 1);
  if (inner) out.act = inner;
  return out;
}

/**
 * `act` for a principal: the calling agent, with the incoming token's chain
 * nested beneath it. When the token already names the calling agent as its
 * current actor (an RFC 8693 exchange made for this agent), that level is the
 * same actor and is not repeated.
 */
export function actClaim(principal: Principal): ActClaim {
  const claims = principal.claims as Record<string, unknown>;
  const clientId = typeof claims.client_id === 'string' ? claims.client_id : typeof claims.azp === 'string' ? claims.azp : principal.agent;
  const out: ActClaim = { sub: principal.agent, client_id: clientId };
  let incoming = claims.act as Record<string, unknown> | undefined;
  if (incoming && typeof incoming === 'object' && incoming.sub === principal.agent) incoming = incoming.act as Record<string, unknown> | undefined;
  const chain = copyChain(incoming, 1);
  if (chain) out.act = chain;
  return out;
}

/** JSON values a mapped claim may carry (bounded so a token cannot bloat every upstream request). */
function mappable(value: unknown): boolean {
  if (typeof value === 'string') return value.length <= 1024;
  if (typeof value === 'number' || typeof value === 'boolean') return true;
  if (Array.isArray(value)) return value.length <= 64 && value.every((v) => typeof v === 'string' && v.length <= 256);
  return false;
}

export interface ClaimsInput {
  issuer: string;
  audience: string;
  principal: Principal;
  route: string;
  /** Seconds since epoch. */
  now: number;
  ttlSeconds: number;
  jti: string;
  /** [assertion claim, token claim] pairs from the route's allow-list. */
  mapped: ReadonlyArray<readonly [string, string]>;
  approval?: ApprovalEvidence;
  authz?: readonly AllowedCheck[];
}

/** The claim set of one assertion. `exp` never passes the incoming token's own expiry. */
export function buildClaims(input: ClaimsInput): Record<string, unknown> {
  const p = input.principal;
  const exp = Math.min(input.now + input.ttlSeconds, p.expiresAt);
  const claims: Record<string, unknown> = {
    iss: input.issuer,
    aud: input.audience,
    sub: p.user ?? p.agent,
    act: actClaim(p),
    iat: input.now,
    exp,
    jti: input.jti,
    route: input.route,
  };
  if (p.scopes.length) claims.scope = p.scopes.join(' ');
  const source = p.claims as Record<string, unknown>;
  for (const [to, from] of input.mapped) {
    const v = source[from];
    if (v !== undefined && mappable(v)) claims[to] = v;
  }
  if (input.approval) {
    const a = input.approval;
    claims.approval = { id: a.id, approved_by: a.approvedBy, decided_at: Math.floor(a.decidedAt / 1000), digest: a.digest, via: a.via };
  }
  if (input.authz) claims.authz = input.authz.map((c) => ({ user: c.user, relation: c.relation, object: c.object }));
  return claims;
}
