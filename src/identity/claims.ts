/**
 * What a verified token means: the RFC 9068 token-type rules (access tokens
 * only, ID tokens refused) and the mapping of claims to a Principal (agent,
 * user, scopes, delegation chain).
 */

import type { Principal } from '../core/principal.js';
import { invalidToken } from './invalid-token.js';

/** The per-issuer settings these rules read (a subset of `IssuerConfig`). */
export interface ClaimRules {
  token_types: readonly string[];
  allow_untyped: boolean;
  agent_claim?: string;
  user_claim: string;
  /** Prepended to the user claim (identity.issuers[].user_prefix): users of several issuers kept apart. */
  user_prefix?: string;
}

/** Claims only an OpenID Connect ID token carries. */
const ID_TOKEN_CLAIMS = ['nonce', 'at_hash', 'c_hash', 's_hash'] as const;

/** Deepest `act` chain accepted; deeper nesting is refused rather than truncated. */
const MAX_ACTORS = 8;

/** RFC 7515 §4.1.9: media types compare case-insensitively, `application/` may be omitted. */
export function normalizeTyp(typ: string): string {
  const lower = typ.trim().toLowerCase();
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower;
}

/**
 * Refuse anything but an access token: the header `typ` must be one of the
 * issuer's `token_types` (default `at+jwt`). With `allow_untyped`, a token
 * without `typ` or with the generic `typ: JWT` also passes, unless it carries
 * ID-token claims (`nonce`, `at_hash`, ...): an ID token is never a credential.
 */
export function checkTokenType(header: { typ?: unknown }, claims: Record<string, unknown>, rules: ClaimRules): void {
  const typ = typeof header.typ === 'string' ? normalizeTyp(header.typ) : undefined;
  const looksLikeIdToken = ID_TOKEN_CLAIMS.some((c) => c in claims);
  if (typ !== 'at+jwt' && looksLikeIdToken) throw invalidToken('id_token', 'ID tokens are not accepted as access tokens');
  const allowed = rules.token_types.map(normalizeTyp);
  if (typ !== undefined && allowed.includes(typ)) return;
  if (rules.allow_untyped && (typ === undefined || typ === 'jwt')) return;
  throw invalidToken('typ', 'token type not accepted');
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function scopesOf(claims: Record<string, unknown>): string[] {
  const raw = claims.scope ?? claims.scp;
  if (raw === undefined || raw === null) return [];
  let list: unknown[];
  if (typeof raw === 'string') list = raw.split(/\s+/);
  else if (Array.isArray(raw)) list = raw;
  else throw invalidToken('bad_claim', 'malformed scope claim');
  const out: string[] = [];
  for (const s of list) {
    if (typeof s !== 'string') throw invalidToken('bad_claim', 'malformed scope claim');
    if (s.length > 0 && !out.includes(s)) out.push(s);
  }
  return out;
}

/** RFC 8693 §4.1: `act` nests, the current actor outermost. */
function actorsOf(claims: Record<string, unknown>): string[] {
  const actors: string[] = [];
  let act = claims.act;
  while (act !== undefined && act !== null) {
    if (typeof act !== 'object' || Array.isArray(act)) throw invalidToken('bad_claim', 'malformed act claim');
    const { sub, act: inner } = act as Record<string, unknown>;
    if (!nonEmptyString(sub)) throw invalidToken('bad_claim', 'malformed act claim');
    actors.push(sub);
    if (actors.length > MAX_ACTORS) throw invalidToken('bad_claim', 'delegation chain too deep');
    act = inner;
  }
  return actors;
}

/**
 * Whether `claim` names a person by an email address its issuer says is not
 * verified (`email_verified` false, or "false" as some providers write it).
 * Whoever registers an unverified address at a provider that allows it would
 * otherwise be the person who owns it. A provider that asserts nothing is
 * trusted to verify what it issues.
 */
export function unverifiedEmail(claim: string, claims: Record<string, unknown>): boolean {
  return claim === 'email' && (claims.email_verified === false || claims.email_verified === 'false');
}

/**
 * Map verified claims to a Principal. The agent is the issuer's `agent_claim`,
 * else `azp`, else `client_id`; a token naming no agent is refused. The user is
 * `user_prefix` + `user_claim` (default `sub`), but null for a machine token
 * whose `sub` is the agent itself (client credentials).
 */
export function principalFromClaims(claims: Record<string, unknown>, rules: ClaimRules, issuer: string): Principal {
  const agentRaw = rules.agent_claim !== undefined ? claims[rules.agent_claim] : (claims.azp ?? claims.client_id);
  if (!nonEmptyString(agentRaw)) throw invalidToken('no_agent', 'token names no client');
  const agent = agentRaw;

  let user: string | null = null;
  const userRaw = claims[rules.user_claim];
  if (userRaw !== undefined && userRaw !== null) {
    if (!nonEmptyString(userRaw)) throw invalidToken('bad_claim', 'malformed user claim');
    if (unverifiedEmail(rules.user_claim, claims)) throw invalidToken('bad_claim', 'the user claim is an unverified email address');
    user = rules.user_prefix ? rules.user_prefix + userRaw : userRaw;
  }
  if (claims.sub === agent) user = null;

  if (typeof claims.exp !== 'number') throw invalidToken('missing_claim', 'token has no expiry');

  return Object.freeze({
    agent,
    user,
    scopes: Object.freeze(scopesOf(claims)),
    issuer,
    claims: Object.freeze({ ...claims }),
    actors: Object.freeze(actorsOf(claims)),
    expiresAt: claims.exp,
  });
}

/**
 * The user prefix of people an OpenID provider names (sign-in, CIBA): that of
 * the agent-token issuer with the same identifier, so a person and the user
 * agents act for are one id; none when no issuer matches.
 */
export function userPrefixOf(issuers: ReadonlyArray<{ issuer: string; user_prefix?: string }>, issuer: string): string {
  return issuers.find((i) => i.issuer === issuer)?.user_prefix ?? '';
}
