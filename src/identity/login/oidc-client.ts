/**
 * Warden as an OpenID Connect relying party (`identity.login`): discovery,
 * the authorization request (code + PKCE S256 + state + nonce), the code
 * exchange, and ID token validation (OIDC Core §3.1.3.7) against the IdP's
 * JWKS. Every remote call has `identity.login.timeout`.
 */

import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { LoginConfig } from '../../config/schema.js';
import { WardenError } from '../../core/errors.js';
import { postTokenEndpoint, ProviderError } from '../../vault/providers.js';
import { isHttpUrl } from '../key-source.js';
import { unverifiedEmail } from '../claims.js';

interface Metadata {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  jwksUri: string;
  endSessionEndpoint?: string;
}

export interface LoginClient {
  readonly issuer: string;
  /** The URL to send the browser to. */
  authorizationUrl(request: { redirectUri: string; state: string; nonce: string; codeChallenge: string }): Promise<string>;
  /** Redeem the code and return the verified person. Throws `LoginError`. */
  finish(request: { code: string; codeVerifier: string; redirectUri: string; nonce: string }): Promise<{ sub: string; claims: JWTPayload }>;
}

/** A sign-in that failed; `transient` when trying again later may help. */
export class LoginError extends Error {
  constructor(
    readonly kind: 'transient' | 'rejected',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LoginError';
  }
}

const DISCOVERY_TTL_MS = 3_600_000;
const MAX_METADATA_BYTES = 256 * 1024;

/** Build the relying party of `identity.login`. */
export function createLoginClient(cfg: LoginConfig, options: { clockToleranceMs: number; now?: () => number; userPrefix?: string }): LoginClient {
  // People are named as agent tokens of the same issuer name them (identity.issuers[].user_prefix).
  const userPrefix = options.userPrefix ?? '';
  const now = options.now ?? Date.now;
  const algorithms = cfg.algorithms.filter((a) => !/^HS/i.test(a) && a.toLowerCase() !== 'none');
  if (algorithms.length === 0) throw new WardenError('config_invalid', 'identity.login.algorithms allows no usable algorithm');
  const client = {
    clientId: cfg.client_id,
    clientSecret: cfg.client_secret,
    method: cfg.client_secret ? ('client_secret_basic' as const) : ('none' as const),
  };
  let cached: { meta: Metadata; at: number; keys: ReturnType<typeof createRemoteJWKSet> } | undefined;
  let inflight: Promise<NonNullable<typeof cached>> | undefined;

  async function discover(): Promise<NonNullable<typeof cached>> {
    const base = cfg.issuer.replace(/\/+$/, '');
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${base}/.well-known/openid-configuration`, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(cfg.timeout),
      });
      if (Number(res.headers.get('content-length') ?? '0') > MAX_METADATA_BYTES) throw new LoginError('rejected', 'IdP metadata too large');
      text = await res.text();
    } catch (err) {
      if (err instanceof LoginError) throw err;
      throw new LoginError('transient', `IdP discovery failed: ${(err as Error).message}`, { cause: err });
    }
    if (res.status >= 500 || res.status === 429) throw new LoginError('transient', `IdP discovery answered ${res.status}`);
    if (res.status !== 200 || text.length > MAX_METADATA_BYTES) throw new LoginError('rejected', `IdP discovery answered ${res.status}`);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new LoginError('rejected', 'IdP discovery document is not JSON');
    }
    // OIDC Discovery §4.3: the document names exactly the issuer we asked about (mix-up defence).
    if (typeof doc.issuer !== 'string' || doc.issuer.replace(/\/+$/, '') !== base) throw new LoginError('rejected', 'IdP discovery names a different issuer');
    if (!isHttpUrl(doc.authorization_endpoint) || !isHttpUrl(doc.token_endpoint) || !isHttpUrl(doc.jwks_uri)) {
      throw new LoginError('rejected', 'IdP discovery lacks authorization_endpoint, token_endpoint or jwks_uri');
    }
    const meta: Metadata = {
      issuer: doc.issuer,
      authorizationEndpoint: doc.authorization_endpoint,
      tokenEndpoint: doc.token_endpoint,
      jwksUri: doc.jwks_uri,
      endSessionEndpoint: isHttpUrl(doc.end_session_endpoint) ? doc.end_session_endpoint : undefined,
    };
    const keys = createRemoteJWKSet(new URL(meta.jwksUri), { timeoutDuration: cfg.timeout, cooldownDuration: 30_000, cacheMaxAge: 600_000 });
    return { meta, at: now(), keys };
  }

  async function metadata(): Promise<NonNullable<typeof cached>> {
    if (cached && now() - cached.at < DISCOVERY_TTL_MS) return cached;
    inflight ??= discover()
      .then((d) => (cached = d))
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  }

  return {
    issuer: cfg.issuer,

    async authorizationUrl({ redirectUri, state, nonce, codeChallenge }) {
      const { meta } = await metadata();
      const url = new URL(meta.authorizationEndpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', cfg.client_id);
      url.searchParams.set('redirect_uri', redirectUri);
      url.searchParams.set('scope', cfg.scopes.join(' '));
      url.searchParams.set('state', state);
      url.searchParams.set('nonce', nonce);
      url.searchParams.set('code_challenge', codeChallenge);
      url.searchParams.set('code_challenge_method', 'S256');
      return url.toString();
    },

    async finish({ code, codeVerifier, redirectUri, nonce }) {
      const { meta, keys } = await metadata();
      let json: Record<string, unknown>;
      try {
        json = await postTokenEndpoint(
          meta.tokenEndpoint,
          { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: codeVerifier },
          client,
          cfg.timeout,
          'sign-in code exchange',
        );
      } catch (err) {
        const transient = err instanceof ProviderError && err.kind === 'transient';
        throw new LoginError(transient ? 'transient' : 'rejected', (err as Error).message, { cause: err });
      }
      const idToken = json.id_token;
      if (typeof idToken !== 'string' || idToken.length > 16_384) throw new LoginError('rejected', 'the token response has no usable id_token');
      let payload: JWTPayload;
      let header: { typ?: string };
      try {
        ({ payload, protectedHeader: header } = await jwtVerify(idToken, keys, {
          issuer: meta.issuer,
          audience: cfg.client_id,
          algorithms,
          clockTolerance: Math.ceil(options.clockToleranceMs / 1000),
          requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
          currentDate: new Date(now()),
        }));
      } catch (err) {
        const transient = err instanceof joseErrors.JWKSTimeout || (err as { name?: string }).name === 'TimeoutError';
        throw new LoginError(transient ? 'transient' : 'rejected', `ID token refused: ${(err as Error).message}`, { cause: err });
      }
      // An access token is not an ID token (RFC 9068 §4 / token-type confusion).
      if (typeof header.typ === 'string' && /at\+jwt$/i.test(header.typ)) throw new LoginError('rejected', 'ID token refused: it is an access token');
      // OIDC Core §3.1.3.7: several audiences need azp, and azp must be us.
      const aud = payload.aud;
      if (Array.isArray(aud) && aud.length > 1 && payload.azp !== cfg.client_id) throw new LoginError('rejected', 'ID token refused: azp is not this client');
      if (payload.azp !== undefined && payload.azp !== cfg.client_id) throw new LoginError('rejected', 'ID token refused: azp is not this client');
      if (typeof payload.nonce !== 'string' || payload.nonce !== nonce) throw new LoginError('rejected', 'ID token refused: nonce does not match this sign-in');
      const person = payload[cfg.user_claim];
      if (typeof person !== 'string' || person.length === 0 || person.length > 255) {
        throw new LoginError('rejected', `ID token refused: no usable ${cfg.user_claim} claim`);
      }
      if (unverifiedEmail(cfg.user_claim, payload)) throw new LoginError('rejected', 'ID token refused: the email address is not verified');
      return { sub: userPrefix + person, claims: payload };
    },
  };
}
