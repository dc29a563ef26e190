/**
 * The authenticator: verifies a bearer JWT against the configured issuers (and
 * the dev issuer) and returns the Principal. The only module besides
 * `dev-issuer.ts` that imports jose. Design notes: `docs/identity.md`.
 *
 * Order of checks (cheapest and most dangerous first, nothing fetched before
 * the token is known to belong to a configured issuer and use an allowed
 * algorithm): size and shape → header rules → issuer by exact `iss` → algorithm
 * allow-list → token type → signature (JWKS) → iss/aud/exp/nbf/iat → principal.
 */

import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors as joseErrors,
  jwtVerify,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type RemoteJWKSet,
} from 'jose';
import { WardenError } from '../core/errors.js';
import type { Config, IssuerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Authenticator, AuthenticatorStats, Principal } from '../core/principal.js';
import { checkTokenType, principalFromClaims, type ClaimRules } from './claims.js';
import { assertDevIssuerAllowed, type DevIssuer } from './dev-issuer.js';
import { invalidToken } from './invalid-token.js';
import { createBackoff, createJwksLocator, KeySourceUnavailable, readCapped, type JwksLocator } from './key-source.js';
import { createTokenCache } from './token-cache.js';
import { DEFAULT_MAX_TOKEN_BYTES, parseCompactJws } from './token-shape.js';

/** Build-time dependencies and tunables of the authenticator. */
export interface AuthenticatorOptions {
  /** The loaded dev issuer; required when `identity.dev_issuer` is true, ignored otherwise. */
  devIssuer?: DevIssuer;
  /**
   * The MCP routes' resources: more audiences the dev issuer's tokens may
   * carry, and the audiences that bind a token to MCP routes only
   * (`Principal.resourceBound`).
   */
  devAudiences?: readonly string[];
  logger: Logger;
  metrics?: Metrics;
  /** Timeout of each discovery and JWKS fetch (default 5000 ms). */
  fetchTimeoutMs?: number;
  /** After a successful JWKS fetch, an unknown `kid` triggers no new fetch for this long (default 30 s). */
  jwksCooldownMs?: number;
  /** Keys are refetched when older than this (default 10 min). */
  jwksCacheMaxAgeMs?: number;
  /** Largest accepted token (default 8 KiB). */
  maxTokenBytes?: number;
  /** Clock in ms since epoch for time claims and the token cache (tests); default Date.now. */
  now?: () => number;
}

/** Reused (frozen) so per-request metrics do not rebuild a label key. */
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** Defaults of the remote key set, documented in docs/identity.md. */
export const IDENTITY_DEFAULTS = Object.freeze({
  fetchTimeoutMs: 5000,
  jwksCooldownMs: 30_000,
  jwksCacheMaxAgeMs: 600_000,
  /** A key set bigger than this is treated as an outage, not parsed. */
  jwksMaxBytes: 512 * 1024,
});

type IdentityConfig = Config['identity'];

interface IssuerVerifier {
  readonly issuer: string;
  readonly audience: string[];
  readonly algorithms: string[];
  readonly rules: ClaimRules;
  readonly getKey: JWTVerifyGetKey;
  /** The in-process dev issuer: a key mismatch gets its own explanation. */
  readonly dev?: boolean;
  /** `audience_binding: gateway`: its tokens are never bound to MCP resources only. */
  readonly gatewayWide?: boolean;
}

interface Counters {
  /** Per remote issuer: when its key set was last downloaded, and the last failure. */
  jwks: Map<string, { okAt?: number; errorAt?: number }>;
  jwksFetches: number;
  jwksFetchErrors: number;
  discoveryFetches: number;
  refused: number;
}

/** Algorithms Warden never accepts, whatever the config says (RFC 8725 §3.1/3.2). */
function usableAlgorithms(list: readonly string[], issuer: string): string[] {
  const out = list.filter((a) => a.toLowerCase() !== 'none' && !/^HS/i.test(a));
  if (out.length === 0) throw new WardenError('config_invalid', `identity.issuers[${issuer}].algorithms allows no usable algorithm`);
  return out;
}

/** Errors from a key resolver that mean "this token", not "the key source": passed on to jose. */
function isTokenKeyError(err: unknown): boolean {
  return err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys || err instanceof joseErrors.JOSENotSupported;
}

function createRemoteKeys(
  cfg: IssuerConfig,
  locator: JwksLocator,
  opts: Required<Pick<AuthenticatorOptions, 'fetchTimeoutMs' | 'jwksCooldownMs' | 'jwksCacheMaxAgeMs'>> & {
    logger: Logger;
    counters: Counters;
    metrics?: Metrics;
  },
): JWTVerifyGetKey {
  const backoff = createBackoff();
  let remote: RemoteJWKSet | undefined;

  // jose calls this for every key-set download; it adds the backoff (jose's
  // cooldown only starts after a success), a body cap, and a warn log.
  const guardedFetch = async (url: string, init: RequestInit): Promise<Response> => {
    if (backoff.blocked(Date.now())) throw new KeySourceUnavailable('JWKS fetch backing off after a failure');
    opts.counters.jwksFetches++;
    try {
      const res = await fetch(url, init);
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => {});
        throw new KeySourceUnavailable(`JWKS answered HTTP ${res.status}`);
      }
      const body = await readCapped(res, IDENTITY_DEFAULTS.jwksMaxBytes);
      const parsed: unknown = JSON.parse(body);
      if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as { keys?: unknown }).keys)) {
        throw new KeySourceUnavailable('JWKS is not a key set');
      }
      backoff.succeeded();
      opts.counters.jwks.set(cfg.issuer, { ...opts.counters.jwks.get(cfg.issuer), okAt: Date.now() });
      opts.metrics?.inc('warden_jwks_fetches_total', { issuer: cfg.issuer, outcome: 'ok' });
      return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
    } catch (err) {
      backoff.failed(Date.now());
      opts.counters.jwksFetchErrors++;
      opts.counters.jwks.set(cfg.issuer, { ...opts.counters.jwks.get(cfg.issuer), errorAt: Date.now() });
      opts.metrics?.inc('warden_jwks_fetches_total', { issuer: cfg.issuer, outcome: 'error' });
      const message = err instanceof Error ? err.message : String(err);
      opts.logger.warn(
        { issuer: cfg.issuer, jwks_uri: url, err: { message } },
        'identity: JWKS fetch failed; tokens of this issuer are refused until it recovers',
      );
      throw err instanceof KeySourceUnavailable ? err : new KeySourceUnavailable(`JWKS fetch failed: ${message}`, { cause: err });
    }
  };

  return async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (remote === undefined) {
      const url = await locator.jwksUri();
      remote ??= createRemoteJWKSet(url, {
        timeoutDuration: opts.fetchTimeoutMs,
        cooldownDuration: opts.jwksCooldownMs,
        cacheMaxAge: opts.jwksCacheMaxAgeMs,
        [customFetch]: guardedFetch as never,
      });
    }
    try {
      return await remote(header, token);
    } catch (err) {
      if (isTokenKeyError(err) || err instanceof KeySourceUnavailable) throw err;
      throw new KeySourceUnavailable('JWKS unusable', { cause: err });
    }
  };
}

function mapVerifyError(err: unknown): WardenError {
  if (err instanceof WardenError) return err;
  if (err instanceof KeySourceUnavailable) return invalidToken('jwks_unavailable', 'the issuer signing keys are unavailable', err);
  if (err instanceof joseErrors.JWTExpired) return invalidToken('expired', 'token expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return invalidToken('missing_claim', `token lacks the ${err.claim} claim`);
    switch (err.claim) {
      case 'aud':
        return invalidToken('wrong_audience', 'token audience not accepted');
      case 'iss':
        return invalidToken('wrong_issuer', 'token issuer not accepted');
      case 'nbf':
        return invalidToken('not_yet_valid', 'token not yet valid');
      default:
        return invalidToken('bad_claim', 'token claims not accepted');
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return invalidToken('alg_not_allowed', 'token algorithm not allowed');
  if (err instanceof joseErrors.JWKSNoMatchingKey) return invalidToken('unknown_key', 'token signing key not found');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return invalidToken('bad_signature', 'token signature invalid');
  }
  if (err instanceof joseErrors.JWTInvalid) return invalidToken('bad_claim', 'token claims not accepted');
  return invalidToken('malformed', 'token could not be verified');
}

/**
 * Verify with `getKey`; when a kid-less token matches several keys of the set
 * (e.g. during rotation), try each candidate in turn — jose leaves that choice
 * to the caller.
 */
async function verifyJwt(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (err) {
    if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (!(inner instanceof joseErrors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new joseErrors.JWSSignatureVerificationFailed();
  }
}

/**
 * Build the authenticator for `identity` (one per config generation). Throws
 * `config_invalid` for a dev issuer in production, a missing dev issuer,
 * duplicate issuers, or an issuer with no usable algorithm. Nothing is fetched
 * here: discovery and JWKS downloads happen on the first token of an issuer.
 */
export async function createAuthenticator(identity: IdentityConfig, options: AuthenticatorOptions): Promise<Authenticator & { stats(): AuthenticatorStats }> {
  const now = options.now ?? Date.now;
  const maxTokenBytes = options.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES;
  const toleranceSec = identity.clock_tolerance / 1000;
  const tunables = {
    fetchTimeoutMs: options.fetchTimeoutMs ?? IDENTITY_DEFAULTS.fetchTimeoutMs,
    jwksCooldownMs: options.jwksCooldownMs ?? IDENTITY_DEFAULTS.jwksCooldownMs,
    jwksCacheMaxAgeMs: options.jwksCacheMaxAgeMs ?? IDENTITY_DEFAULTS.jwksCacheMaxAgeMs,
  };
  const counters: Counters = { jwks: new Map(), jwksFetches: 0, jwksFetchErrors: 0, discoveryFetches: 0, refused: 0 };
  const verifiers = new Map<string, IssuerVerifier>();

  for (const cfg of identity.issuers) {
    if (verifiers.has(cfg.issuer)) throw new WardenError('config_invalid', `identity.issuers: ${cfg.issuer} is listed twice`);
    if (cfg.jwks_uri === undefined && !/^https?:\/\/[^/?#]+/.test(cfg.issuer)) {
      // Discovery needs a URL; fail at startup rather than refusing every token later.
      throw new WardenError('config_invalid', `identity.issuers: ${cfg.issuer} is not an http(s) URL; set jwks_uri`);
    }
    const locator = createJwksLocator(cfg.issuer, {
      jwksUri: cfg.jwks_uri,
      timeoutMs: tunables.fetchTimeoutMs,
      logger: options.logger,
      now: Date.now,
      onFetch: (outcome) => {
        counters.discoveryFetches++;
        options.metrics?.inc('warden_oidc_discovery_fetches_total', { issuer: cfg.issuer, outcome });
      },
    });
    verifiers.set(cfg.issuer, {
      issuer: cfg.issuer,
      audience: [...cfg.audience],
      algorithms: usableAlgorithms(cfg.algorithms, cfg.issuer),
      rules: cfg,
      gatewayWide: cfg.audience_binding === 'gateway',
      getKey: createRemoteKeys(cfg, locator, { ...tunables, logger: options.logger, counters, metrics: options.metrics }),
    });
  }

  if (identity.dev_issuer) {
    assertDevIssuerAllowed();
    const dev = options.devIssuer;
    if (!dev) throw new WardenError('config_invalid', 'identity.dev_issuer is true but no dev issuer was loaded');
    if (verifiers.has(dev.issuer)) throw new WardenError('config_invalid', `identity.issuers: ${dev.issuer} is the dev issuer`);
    // The dev key is in-process: a local key set, never fetched.
    const local = createLocalJWKSet(dev.jwks());
    verifiers.set(dev.issuer, {
      issuer: dev.issuer,
      // The gateway audience, and every MCP route's resource (RFC 8707 tokens from `warden token --resource`).
      audience: [dev.audience, ...(options.devAudiences ?? [])],
      algorithms: ['ES256'],
      rules: { token_types: ['at+jwt'], allow_untyped: false, user_claim: 'sub' },
      getKey: local,
      dev: true,
    });
  }

  const cache = createTokenCache<Principal>(identity.token_cache_size);
  const mcpResources = new Set(options.devAudiences ?? []);

  /**
   * RFC 8707: a token whose accepted audiences are all MCP resources was bound
   * by its authorization server to those MCP servers; the issuer listing the
   * gateway's own audience too does not make it a token for the whole gateway.
   */
  function boundToResources(verifier: IssuerVerifier, aud: unknown): boolean {
    if (verifier.gatewayWide || mcpResources.size === 0) return false;
    const accepted = (Array.isArray(aud) ? aud : [aud]).filter((a): a is string => typeof a === 'string' && verifier.audience.includes(a));
    return accepted.length > 0 && accepted.every((a) => mcpResources.has(a));
  }

  function refuse(err: WardenError): never {
    counters.refused++;
    options.metrics?.inc('warden_tokens_refused_total', { reason: err.reason });
    throw err;
  }

  async function verify(token: string, nowMs: number): Promise<Principal> {
    const { header, payload } = parseCompactJws(token, maxTokenBytes);
    const iss = payload.iss;
    // Exact string match, before any key lookup: an unknown issuer costs no fetch.
    const verifier = typeof iss === 'string' ? verifiers.get(iss) : undefined;
    if (!verifier) throw invalidToken('unknown_issuer', 'token issuer not accepted');
    if (!verifier.algorithms.includes(header.alg)) throw invalidToken('alg_not_allowed', 'token algorithm not allowed');
    checkTokenType(header, payload, verifier.rules);

    let claims: JWTPayload;
    try {
      claims = await verifyJwt(token, verifier.getKey, {
        issuer: verifier.issuer,
        audience: verifier.audience,
        algorithms: verifier.algorithms,
        clockTolerance: toleranceSec,
        requiredClaims: ['exp'],
        currentDate: new Date(nowMs),
      });
    } catch (err) {
      const refused = mapVerifyError(err);
      if (verifier.dev && (refused.reason === 'token_unknown_key' || refused.reason === 'token_bad_signature')) {
        throw invalidToken(
          'dev_key_mismatch',
          'token signed by another dev issuer key; mint a new one with warden token -c for this config (the key is in its data dir)',
          err,
        );
      }
      throw refused;
    }
    if (typeof claims.iat === 'number' && claims.iat > nowMs / 1000 + toleranceSec) {
      throw invalidToken('iat_in_future', 'token issued in the future');
    }
    const principal = principalFromClaims(claims as Record<string, unknown>, verifier.rules, verifier.issuer);
    return boundToResources(verifier, claims.aud) ? Object.freeze({ ...principal, resourceBound: true }) : principal;
  }

  return {
    peek(token: string): Principal | undefined {
      if (typeof token !== 'string' || token.length > maxTokenBytes) return undefined;
      const cached = cache.peek(token, now());
      if (cached) options.metrics?.inc('warden_token_cache_hits_total', NO_LABELS);
      return cached;
    },
    async authenticate(token: string): Promise<Principal> {
      const nowMs = now();
      // Size first: an oversized token is not even hashed for the cache lookup.
      if (typeof token !== 'string' || token.length > maxTokenBytes) refuse(invalidToken('too_large', 'token too large'));
      const cached = cache.get(token, nowMs);
      if (cached) {
        options.metrics?.inc('warden_token_cache_hits_total', NO_LABELS);
        return cached;
      }
      options.metrics?.inc('warden_token_cache_misses_total', NO_LABELS);
      let principal: Principal;
      try {
        principal = await verify(token, nowMs);
      } catch (err) {
        refuse(mapVerifyError(err));
      }
      cache.set(token, principal, principal.expiresAt * 1000, nowMs);
      return principal;
    },
    stats(): AuthenticatorStats {
      const c = cache.stats();
      return {
        cacheHits: c.hits,
        cacheMisses: c.misses,
        cacheSize: c.size,
        jwksFetches: counters.jwksFetches,
        jwksFetchErrors: counters.jwksFetchErrors,
        jwks: [...verifiers.values()].map((v) => ({ issuer: v.issuer, local: Boolean(v.dev), ...counters.jwks.get(v.issuer) })),
        discoveryFetches: counters.discoveryFetches,
        refused: counters.refused,
      };
    },
    async close() {
      cache.clear();
    },
  };
}
