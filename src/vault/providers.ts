/**
 * OAuth providers of the vault (`vault.providers`): where to send the user to
 * link an account, and how to redeem codes and refresh tokens. Every call has a
 * timeout, and every failure is classified once here so callers branch on
 * `ProviderError.kind`, never on provider-specific text.
 */

import { createHash, randomBytes } from 'node:crypto';
import type { ProviderConfig } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import { readResponseBounded } from '../http/body.js';

/** Tokens a provider answered with, normalized. */
export interface TokenSet {
  accessToken: string;
  tokenType: string;
  refreshToken?: string;
  /** Epoch ms when the access token expires; undefined when the provider did not say. */
  expiresAt?: number;
  /** Granted scopes (the requested ones when the provider omitted `scope`, RFC 6749 §5.1). */
  scopes: string[];
  /** RFC 8693 `issued_token_type`, when the provider sent one. */
  issuedTokenType?: string;
}

/**
 * - `invalid_grant`: the grant (code, refresh token) is dead; the user must re-link.
 * - `transient`: timeout, network error, 5xx or 429; try again later, keep the connection.
 * - `rejected`: the provider refused the request for another reason (client
 *   config, scope, malformed answer); retrying will not help, re-linking may not either.
 */
export type ProviderErrorKind = 'invalid_grant' | 'transient' | 'rejected';

/** A classified provider failure. The message never contains a token or secret. */
export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  /** OAuth `error` code from the provider, when it sent one. */
  readonly oauthError?: string;
  readonly httpStatus?: number;
  /** Seconds the provider asked us to wait (its `Retry-After`), when given. */
  readonly retryAfter?: number;

  constructor(kind: ProviderErrorKind, message: string, details: { oauthError?: string; httpStatus?: number; retryAfter?: number; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ProviderError';
    this.kind = kind;
    this.oauthError = details.oauthError;
    this.httpStatus = details.httpStatus;
    this.retryAfter = details.retryAfter;
  }
}

/** How Warden authenticates to a token endpoint (RFC 6749 §2.3, OIDC Core §9). */
export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'none';

/** Client credentials for a token endpoint. */
export interface ClientCredentials {
  clientId: string;
  clientSecret?: string;
  method: ClientAuthMethod;
}

/** Resolved endpoints of a provider. */
export interface ProviderEndpoints {
  authorizationUrl: string;
  tokenUrl: string;
  revocationUrl?: string;
}

/** One configured provider. */
export interface OAuthProvider {
  readonly name: string;
  /** Scopes every connection of this provider must have (`scopes` in config). */
  readonly scopes: readonly string[];
  /** Refresh when the access token expires within this many ms. */
  readonly refreshBeforeMs: number;
  readonly timeoutMs: number;
  /** The configured issuer (OIDC discovery), if any: checked against the callback's `iss` (RFC 9207). */
  readonly issuer?: string;
  /** Endpoints (explicit, or from discovery — fetched once and cached). */
  endpoints(): Promise<ProviderEndpoints>;
  /** The URL that starts the authorization-code flow with PKCE (S256). */
  authorizationUrl(request: { redirectUri: string; state: string; codeChallenge: string; scopes: readonly string[] }): Promise<string>;
  /** Redeem an authorization code. */
  exchangeCode(request: { code: string; codeVerifier: string; redirectUri: string; scopes: readonly string[] }): Promise<TokenSet>;
  /** Redeem a refresh token; `previousScopes` fill in when the provider omits `scope`. */
  refresh(refreshToken: string, previousScopes: readonly string[]): Promise<TokenSet>;
  /** Best-effort RFC 7009 revocation; resolves false when the provider has no revocation endpoint. */
  revoke(token: string, hint: 'access_token' | 'refresh_token'): Promise<boolean>;
}

/** The configured providers by name. */
export interface ProviderRegistry {
  get(name: string): OAuthProvider | undefined;
  names(): string[];
}

/** Options shared by the provider calls (tests shorten the discovery cache). */
export interface ProviderOptions {
  /** How long discovered metadata is reused; default 1 h. */
  discoveryTtlMs?: number;
  now?: () => number;
}

const MAX_RESPONSE_BYTES = 256 * 1024;

/** A PKCE verifier and its S256 challenge (RFC 7636 §4.1-4.2; 256 bits of entropy). */
export function createPkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier, 'ascii').digest('base64url');
  return { verifier, challenge };
}

/** Split a `scope` value; GitHub separates with commas, the RFC with spaces. */
export function parseScopes(value: unknown): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  return [...new Set(value.split(/[\s,]+/).filter(Boolean))];
}

/** The auth method to use when the config does not name one. */
export function defaultClientAuth(clientSecret: string | undefined): ClientAuthMethod {
  return clientSecret ? 'client_secret_basic' : 'none';
}

function retryAfterSeconds(header: string | null): number | undefined {
  if (!header) return undefined;
  const n = Number(header);
  if (Number.isFinite(n) && n >= 0) return Math.min(Math.ceil(n), 3600);
  const date = Date.parse(header);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, Math.ceil((date - Date.now()) / 1000)), 3600);
}

/** Read a small body, refusing anything larger than a token response has any reason to be (cancelled as it passes the limit). */
async function readBounded(res: Response): Promise<string> {
  const bytes = await readResponseBounded(
    res,
    MAX_RESPONSE_BYTES,
    () => new ProviderError('rejected', 'provider response too large', { httpStatus: res.status }),
  );
  // As `res.text()` decodes: UTF-8, a leading BOM dropped.
  return new TextDecoder().decode(bytes);
}

function classifyFetchFailure(err: unknown, what: string, timeoutMs: number): ProviderError {
  if (err instanceof ProviderError) return err;
  const name = (err as { name?: string })?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new ProviderError('transient', `${what}: no answer within ${timeoutMs}ms`, { cause: err });
  }
  return new ProviderError('transient', `${what}: ${(err as Error)?.message ?? 'network error'}`, { cause: err });
}

/**
 * POST a form to an OAuth token-style endpoint and classify the answer. Shared
 * by code exchange, refresh, revocation and the RFC 8693 client.
 */
export async function postTokenEndpoint(
  url: string,
  params: Record<string, string | undefined>,
  client: ClientCredentials,
  timeoutMs: number,
  what = 'token request',
): Promise<Record<string, unknown>> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') body.set(k, v);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    // GitHub answers form-encoded unless JSON is asked for.
    accept: 'application/json',
  };
  if (client.method === 'client_secret_basic') {
    // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    const user = encodeURIComponent(client.clientId).replace(/%20/g, '+');
    const pass = encodeURIComponent(client.clientSecret ?? '').replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  } else {
    body.set('client_id', client.clientId);
    if (client.method === 'client_secret_post' && client.clientSecret) body.set('client_secret', client.clientSecret);
  }

  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { method: 'POST', headers, body, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    text = await readBounded(res);
  } catch (err) {
    throw classifyFetchFailure(err, what, timeoutMs);
  }

  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    json = undefined;
  }

  const oauthError = typeof json?.error === 'string' ? json.error : undefined;
  const retryAfter = retryAfterSeconds(res.headers.get('retry-after'));
  if (res.status >= 500 || res.status === 429) {
    throw new ProviderError('transient', `${what}: provider answered ${res.status}`, { httpStatus: res.status, oauthError, retryAfter });
  }
  // GitHub reports errors with 200 and an `error` member; `bad_refresh_token` and
  // `bad_verification_code` are its names for invalid_grant.
  if (oauthError !== undefined || res.status >= 400) {
    const dead = oauthError === 'invalid_grant' || oauthError === 'bad_refresh_token' || oauthError === 'bad_verification_code';
    throw new ProviderError(dead ? 'invalid_grant' : 'rejected', `${what}: provider refused (${oauthError ?? res.status})`, {
      httpStatus: res.status,
      oauthError,
    });
  }
  if (json === undefined) {
    // Revocation (RFC 7009) answers 200 with an empty body.
    if (text.trim() === '' && what === 'revocation') return {};
    throw new ProviderError('rejected', `${what}: provider answer is not a JSON object`, { httpStatus: res.status });
  }
  return json;
}

/** Latest epoch ms a Date holds (ECMA-262 §21.4.1.22); an expiry past it cannot be listed or compared as a date. */
const MAX_DATE_MS = 8.64e15;

/**
 * Epoch ms of an `expires_in` (seconds; a JSON number, or the decimal string some
 * providers send), or undefined when there is none Warden can use: not a
 * non-negative number, `""` (which `Number` reads as 0: a refresh on every
 * request), or so large that the expiry is past any date (stored, it would make
 * every listing of the connection throw).
 */
function expiryOf(value: unknown, now: number): number | undefined {
  const seconds = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isFinite(seconds) || seconds < 0) return undefined;
  const at = now + seconds * 1000;
  return at <= MAX_DATE_MS ? at : undefined;
}

/** Turn a token-endpoint JSON answer into a TokenSet (validated). */
export function toTokenSet(json: Record<string, unknown>, requestedScopes: readonly string[], now: number): TokenSet {
  const accessToken = json.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new ProviderError('rejected', 'token response has no access_token');
  }
  const tokenType = typeof json.token_type === 'string' ? json.token_type : 'Bearer';
  // Warden sends the vaulted token as `Authorization: Bearer …`: a DPoP- or MAC-bound token would go out as
  // what it is not (and be refused upstream); it is not stored.
  if (tokenType.toLowerCase() !== 'bearer') throw new ProviderError('rejected', `token response has token_type ${tokenType}: Warden sends Bearer tokens only`);
  const expiresAt = expiryOf(json.expires_in, now);
  const refreshToken = typeof json.refresh_token === 'string' && json.refresh_token !== '' ? json.refresh_token : undefined;
  return {
    accessToken,
    tokenType,
    refreshToken,
    expiresAt,
    scopes: parseScopes(json.scope) ?? [...requestedScopes],
    issuedTokenType: typeof json.issued_token_type === 'string' ? json.issued_token_type : undefined,
  };
}

interface DiscoveryDocument {
  authorization_endpoint?: unknown;
  token_endpoint?: unknown;
  revocation_endpoint?: unknown;
  issuer?: unknown;
}

async function fetchDiscovery(issuer: string, timeoutMs: number): Promise<ProviderEndpoints> {
  const base = issuer.replace(/\/+$/, '');
  // OIDC Discovery first, then RFC 8414 (plain OAuth servers).
  const candidates = [
    `${base}/.well-known/openid-configuration`,
    `${new URL(base).origin}/.well-known/oauth-authorization-server${new URL(base).pathname.replace(/\/$/, '')}`,
  ];
  let lastError: ProviderError | undefined;
  for (const url of candidates) {
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
      text = await readBounded(res);
    } catch (err) {
      throw classifyFetchFailure(err, 'provider discovery', timeoutMs);
    }
    if (res.status === 404) {
      lastError = new ProviderError('rejected', `provider discovery: ${url} not found`, { httpStatus: 404 });
      continue;
    }
    if (res.status >= 500 || res.status === 429) {
      throw new ProviderError('transient', `provider discovery answered ${res.status}`, { httpStatus: res.status });
    }
    if (res.status !== 200) throw new ProviderError('rejected', `provider discovery answered ${res.status}`, { httpStatus: res.status });
    let doc: DiscoveryDocument;
    try {
      doc = JSON.parse(text) as DiscoveryDocument;
    } catch {
      throw new ProviderError('rejected', 'provider discovery document is not JSON');
    }
    // OIDC Discovery §4.3: the document must name the issuer we asked (mix-up defence).
    if (typeof doc.issuer !== 'string' || doc.issuer.replace(/\/+$/, '') !== base) {
      throw new ProviderError('rejected', 'provider discovery issuer does not match the configured issuer');
    }
    if (typeof doc.authorization_endpoint !== 'string' || typeof doc.token_endpoint !== 'string') {
      throw new ProviderError('rejected', 'provider discovery lacks authorization_endpoint or token_endpoint');
    }
    return {
      authorizationUrl: doc.authorization_endpoint,
      tokenUrl: doc.token_endpoint,
      revocationUrl: typeof doc.revocation_endpoint === 'string' ? doc.revocation_endpoint : undefined,
    };
  }
  throw lastError ?? new ProviderError('rejected', 'provider discovery failed');
}

/** Build one provider from its config. */
export function createProvider(name: string, config: ProviderConfig, options: ProviderOptions = {}): OAuthProvider {
  const now = options.now ?? Date.now;
  const discoveryTtlMs = options.discoveryTtlMs ?? 3_600_000;
  const timeoutMs = config.timeout;
  const client: ClientCredentials = {
    clientId: config.client_id,
    clientSecret: config.client_secret,
    method: config.client_auth ?? defaultClientAuth(config.client_secret),
  };
  const explicit: ProviderEndpoints | undefined =
    config.authorization_url && config.token_url
      ? { authorizationUrl: config.authorization_url, tokenUrl: config.token_url, revocationUrl: config.revocation_url }
      : undefined;
  if (!explicit && !config.issuer) {
    throw new WardenError('config_invalid', `vault.providers.${name}: set authorization_url and token_url, or issuer`, { reason: 'vault_provider_invalid' });
  }

  // Discovery cache in the closure; one fetch in flight at a time; failures are not cached.
  let discovered: { endpoints: ProviderEndpoints; at: number } | undefined;
  let inFlight: Promise<ProviderEndpoints> | undefined;

  async function endpoints(): Promise<ProviderEndpoints> {
    if (explicit) return explicit;
    if (discovered && now() - discovered.at < discoveryTtlMs) return discovered.endpoints;
    inFlight ??= fetchDiscovery(config.issuer as string, timeoutMs)
      .then((found) => {
        const merged: ProviderEndpoints = {
          authorizationUrl: config.authorization_url ?? found.authorizationUrl,
          tokenUrl: config.token_url ?? found.tokenUrl,
          revocationUrl: config.revocation_url ?? found.revocationUrl,
        };
        discovered = { endpoints: merged, at: now() };
        return merged;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  return {
    name,
    scopes: config.scopes,
    refreshBeforeMs: config.refresh_before,
    timeoutMs,
    issuer: config.issuer,
    endpoints,

    async authorizationUrl({ redirectUri, state, codeChallenge, scopes }) {
      const { authorizationUrl } = await endpoints();
      const url = new URL(authorizationUrl);
      for (const [k, v] of Object.entries(config.params)) url.searchParams.set(k, v);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', config.client_id);
      url.searchParams.set('redirect_uri', redirectUri);
      if (scopes.length > 0) url.searchParams.set('scope', scopes.join(' '));
      url.searchParams.set('state', state);
      url.searchParams.set('code_challenge', codeChallenge);
      url.searchParams.set('code_challenge_method', 'S256');
      return url.toString();
    },

    async exchangeCode({ code, codeVerifier, redirectUri, scopes }) {
      const { tokenUrl } = await endpoints();
      const json = await postTokenEndpoint(
        tokenUrl,
        { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: codeVerifier },
        client,
        timeoutMs,
        'code exchange',
      );
      return toTokenSet(json, scopes, now());
    },

    async refresh(refreshToken, previousScopes) {
      const { tokenUrl } = await endpoints();
      const json = await postTokenEndpoint(tokenUrl, { grant_type: 'refresh_token', refresh_token: refreshToken }, client, timeoutMs, 'refresh');
      return toTokenSet(json, previousScopes, now());
    },

    async revoke(token, hint) {
      const { revocationUrl } = await endpoints();
      if (!revocationUrl) return false;
      await postTokenEndpoint(revocationUrl, { token, token_type_hint: hint }, client, timeoutMs, 'revocation');
      return true;
    },
  };
}

/** Build every provider in `vault.providers`; config errors throw at startup. */
export function createProviders(providers: Record<string, ProviderConfig>, options: ProviderOptions = {}): ProviderRegistry {
  const byName = new Map<string, OAuthProvider>();
  for (const [name, config] of Object.entries(providers)) byName.set(name, createProvider(name, config, options));
  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
  };
}
