/**
 * Warden as an RFC 8693 client (`credentials: { token_exchange: … }`): the
 * agent's token is exchanged at an authorization server for a token meant for
 * the upstream. Results are cached in this closure until shortly before they
 * expire (and never past the agent token's own expiry), keyed by a hash of the
 * agent token and the exchange settings, so a cache entry can only ever be
 * served to the same agent token.
 */

import { createHash } from 'node:crypto';
import type { CredentialsConfig } from '../config/schema.js';
import { defaultClientAuth, postTokenEndpoint, ProviderError } from './providers.js';

/** The `token_exchange` variant of route credentials. */
export type TokenExchangeConfig = Extract<CredentialsConfig, { kind: 'token_exchange' }>;

/** An exchanged token. */
export interface ExchangedToken {
  accessToken: string;
  tokenType: string;
  /** Epoch ms after which the cache must not serve it. */
  expiresAt: number;
}

/** Options of the exchange client. */
export interface TokenExchangeClientOptions {
  /** Default request timeout (a route's `token_exchange.timeout` wins). */
  timeoutMs: number;
  /** Stop serving a cached token this long before it expires; default 30 s. */
  refreshBeforeMs?: number;
  /** Cache bound; default 10 000 entries. */
  maxEntries?: number;
  /** Lifetime when the server omits `expires_in`; default 60 s. */
  defaultTtlMs?: number;
  now?: () => number;
}

/** Exchanges agent tokens; `close()` drops the cache. */
export interface TokenExchangeClient {
  /**
   * Exchange `subjectToken` (expiring at `subjectExpiresAt`, epoch ms) under `config`.
   * Throws ProviderError (classified) when the server refuses or is unreachable.
   */
  exchange(subjectToken: string, subjectExpiresAt: number, config: TokenExchangeConfig): Promise<ExchangedToken>;
  /** Cached entries (for tests and metrics). */
  size(): number;
  close(): void;
}

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';

function sha256(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

/** The cache key: everything that changes the answer, with no secret in clear. */
function cacheKey(subjectToken: string, config: TokenExchangeConfig): string {
  const settings = JSON.stringify([
    config.token_url,
    config.client_id,
    config.audience ?? '',
    config.resource ?? '',
    config.scope ?? '',
    sha256(config.client_secret ?? ''),
  ]);
  return `${sha256(subjectToken)}.${sha256(settings)}`;
}

/** Create an RFC 8693 client with a bounded, TTL'd cache. */
export function createTokenExchangeClient(options: TokenExchangeClientOptions): TokenExchangeClient {
  const now = options.now ?? Date.now;
  const refreshBeforeMs = options.refreshBeforeMs ?? 30_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const defaultTtlMs = options.defaultTtlMs ?? 60_000;
  const cache = new Map<string, ExchangedToken>();
  const inFlight = new Map<string, Promise<ExchangedToken>>();

  function remember(key: string, token: ExchangedToken): void {
    if (cache.size >= maxEntries) {
      // Drop expired entries first, then the oldest (Map keeps insertion order).
      const t = now();
      for (const [k, v] of cache) if (v.expiresAt - refreshBeforeMs <= t) cache.delete(k);
      while (cache.size >= maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest === undefined) break;
        cache.delete(oldest);
      }
    }
    cache.set(key, token);
  }

  async function redeem(subjectToken: string, subjectExpiresAt: number, config: TokenExchangeConfig): Promise<ExchangedToken> {
    const json = await postTokenEndpoint(
      config.token_url,
      {
        grant_type: GRANT_TYPE,
        subject_token: subjectToken,
        subject_token_type: ACCESS_TOKEN_TYPE,
        requested_token_type: ACCESS_TOKEN_TYPE,
        audience: config.audience,
        resource: config.resource,
        scope: config.scope,
      },
      { clientId: config.client_id, clientSecret: config.client_secret, method: defaultClientAuth(config.client_secret) },
      config.timeout ?? options.timeoutMs,
      'token exchange',
    );
    const accessToken = json.access_token;
    if (typeof accessToken !== 'string' || accessToken === '') throw new ProviderError('rejected', 'token exchange answer has no access_token');
    const tokenType = typeof json.token_type === 'string' && json.token_type.toLowerCase() !== 'n_a' ? json.token_type : 'Bearer';
    if (tokenType.toLowerCase() !== 'bearer') throw new ProviderError('rejected', `token exchange issued an unsupported token_type ${tokenType}`);
    const expiresIn = typeof json.expires_in === 'string' ? Number(json.expires_in) : json.expires_in;
    const lifetime = typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : defaultTtlMs;
    // The exchanged token stands for the agent's token: never serve it after that one expires.
    return { accessToken, tokenType: 'Bearer', expiresAt: Math.min(now() + lifetime, subjectExpiresAt) };
  }

  return {
    async exchange(subjectToken, subjectExpiresAt, config) {
      const key = cacheKey(subjectToken, config);
      const hit = cache.get(key);
      if (hit && hit.expiresAt - refreshBeforeMs > now()) return hit;
      if (hit) cache.delete(key);
      const pending = inFlight.get(key);
      if (pending) return pending;
      const started = redeem(subjectToken, subjectExpiresAt, config)
        .then((token) => {
          if (token.expiresAt - refreshBeforeMs > now()) remember(key, token);
          return token;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, started);
      return started;
    },
    size: () => cache.size,
    close() {
      cache.clear();
      inFlight.clear();
    },
  };
}
