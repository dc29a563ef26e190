/** Who is calling: the agent (OAuth client) and the user it acts for; the contract identity/ implements. */

import type { JWTPayload } from 'jose';

export interface Principal {
  /** The OAuth client: `azp`, then `client_id` (or the issuer's `agent_claim`). */
  readonly agent: string;
  /**
   * The user the agent acts for (`sub`, or the issuer's `user_claim`). Null when
   * the token is a machine token whose subject is the agent itself.
   */
  readonly user: string | null;
  readonly scopes: readonly string[];
  readonly issuer: string;
  readonly claims: Readonly<JWTPayload & Record<string, unknown>>;
  /** RFC 8693 delegation chain, outermost actor first (`act.sub`, nested). */
  readonly actors: readonly string[];
  /** Seconds since epoch. */
  readonly expiresAt: number;
  /**
   * True when every audience Warden accepted in the token's `aud` is an MCP
   * route's resource (RFC 8707): the authorization server bound the token to
   * those MCP servers, so it opens no REST route and no Warden endpoint that
   * acts for the gateway as a whole (token exchange). Set by the authenticator.
   */
  readonly resourceBound?: boolean;
}

/** Verifies a bearer token and returns the principal, or throws `unauthenticated`. */
export interface Authenticator {
  authenticate(token: string): Promise<Principal>;
  /**
   * The principal for `token` when the verified-token cache already holds it,
   * without a promise; undefined means "call authenticate". Never refuses.
   */
  peek?(token: string): Principal | undefined;
  close?(): Promise<void>;
  /** Cache and fetch counters (identity's authenticator implements it). */
  stats?(): AuthenticatorStats;
}

/** Counters an authenticator exposes for metrics (added by the identity module). */
export interface AuthenticatorStats {
  /** Verified-token cache hits and misses, and current entries. */
  readonly cacheHits: number;
  readonly cacheMisses: number;
  readonly cacheSize: number;
  /** JWKS downloads attempted, and how many failed (outage, bad answer, timeout). */
  readonly jwksFetches: number;
  readonly jwksFetchErrors: number;
  /** Per issuer: local (dev issuer, never fetched), else when its JWKS was last downloaded and last failed (ms since epoch). */
  readonly jwks?: ReadonlyArray<{ issuer: string; local: boolean; okAt?: number; errorAt?: number }>;
  /** OIDC discovery attempts. */
  readonly discoveryFetches: number;
  /** Tokens refused. */
  readonly refused: number;
}
