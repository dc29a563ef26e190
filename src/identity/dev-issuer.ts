/**
 * The local development issuer: an ES256 key pair kept in the data dir, whose
 * public half Warden serves at `/.warden/jwks.json` and trusts in-process
 * (no fetch), and which `warden token` uses to mint RFC 9068 access tokens.
 * Never available when NODE_ENV=production.
 */

import { hkdfSync, randomBytes } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { WardenError } from '../core/errors.js';
import { loadKeyFile } from '../core/key-file.js';

/** File name of the persisted private key inside the data dir. */
export const DEV_ISSUER_KEY_FILE = 'dev-issuer.jwk.json';

/** Path under the public URL that names the dev issuer (the `iss` of dev tokens). */
export const DEV_ISSUER_PATH = '/.warden/dev';

/** Longest lifetime a dev token may be given (30 days). */
export const DEV_TOKEN_MAX_TTL_SECONDS = 30 * 24 * 3600;

/** What a dev token says. */
export interface DevTokenRequest {
  /** The agent (OAuth client): becomes `client_id` and `azp`. */
  agent: string;
  /** The user the agent acts for: becomes `sub`. Omit or null for a machine token (`sub` = agent). */
  user?: string | null;
  scopes?: readonly string[];
  /** Lifetime in seconds (default 3600). */
  ttlSeconds?: number;
  /** Extra claims (e.g. `email`, `act`); the registered claims above always win. */
  claims?: Record<string, unknown>;
  /** RFC 8707 resource(s) the token is for: its `aud` (default: the gateway audience). MCP routes need their own resource here. */
  resource?: string | readonly string[];
}

/** A loaded dev issuer. */
export interface DevIssuer {
  /** The `iss` of dev tokens: `<publicUrl>/.warden/dev`. */
  readonly issuer: string;
  /** The `aud` of dev tokens: the public URL. */
  readonly audience: string;
  readonly kid: string;
  /** Public key set, for `GET /.warden/jwks.json`. */
  jwks(): { keys: JWK[] };
  /** Mint a compact `at+jwt` access token. */
  issue(request: DevTokenRequest): Promise<string>;
  /** A 32-byte secret derived from the private key for `purpose` (the dev login's session key): shared by every instance on the same data dir. */
  deriveSecret(purpose: string): Buffer;
}

export type DevIssuerOptions = { dataDir: string; publicUrl: string } | { dataDir: string; issuer: string; audience: string };

/** The dev issuer's `iss` and `aud` for a public URL (trailing slashes dropped). */
export function devIssuerIdentity(publicUrl: string): { issuer: string; audience: string } {
  const base = publicUrl.replace(/\/+$/, '');
  return { issuer: `${base}${DEV_ISSUER_PATH}`, audience: base };
}

/** Throw `config_invalid` when the dev issuer must not exist (NODE_ENV=production). */
export function assertDevIssuerAllowed(env: NodeJS.ProcessEnv = process.env): void {
  if (env.NODE_ENV === 'production') {
    throw new WardenError('config_invalid', 'identity.dev_issuer must be false when NODE_ENV=production', { reason: 'dev_issuer_in_production' });
  }
}

function isPrivateEcJwk(value: unknown): value is JWK & { d: string; kid: string } {
  const v = value as Record<string, unknown> | null;
  return (
    !!v && v.kty === 'EC' && v.crv === 'P-256' && typeof v.d === 'string' && typeof v.x === 'string' && typeof v.y === 'string' && typeof v.kid === 'string'
  );
}

async function newKeyText(): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = 'ES256';
  jwk.use = 'sig';
  return JSON.stringify(jwk, null, 2) + '\n';
}

/**
 * Load the dev issuer from `<dataDir>/dev-issuer.jwk.json`, creating the data
 * dir (0700) and the key (0600) on first use. Pass `publicUrl` to get the
 * standard identity (`iss` = `<publicUrl>/.warden/dev`, `aud` = `<publicUrl>`),
 * or `issuer` and `audience` explicitly. Refuses when NODE_ENV=production.
 */
export async function loadDevIssuer(options: DevIssuerOptions): Promise<DevIssuer> {
  assertDevIssuerAllowed();
  const { issuer, audience } = 'publicUrl' in options ? devIssuerIdentity(options.publicUrl) : options;
  const { path, text } = await loadKeyFile(options.dataDir, DEV_ISSUER_KEY_FILE, newKeyText);
  const privateJwk: unknown = JSON.parse(text);
  if (!isPrivateEcJwk(privateJwk)) {
    throw new WardenError('config_invalid', `${path} is not a P-256 private JWK; delete it to create a new dev issuer key`, {
      reason: 'dev_issuer_key_invalid',
    });
  }
  const signingKey = await importJWK({ ...privateJwk, alg: 'ES256' }, 'ES256');
  const { d: _private, ...publicFields } = privateJwk;
  const publicJwk: JWK = Object.freeze({
    kty: publicFields.kty,
    crv: publicFields.crv,
    x: publicFields.x,
    y: publicFields.y,
    kid: privateJwk.kid,
    alg: 'ES256',
    use: 'sig',
  });

  return {
    issuer,
    audience,
    kid: privateJwk.kid,
    jwks: () => ({ keys: [{ ...publicJwk }] }),
    deriveSecret: (purpose) => Buffer.from(hkdfSync('sha256', Buffer.from(privateJwk.d, 'base64url'), 'warden/dev-issuer', purpose, 32)),
    async issue(request) {
      if (typeof request.agent !== 'string' || request.agent.length === 0) {
        throw new WardenError('bad_request', 'a dev token needs an agent');
      }
      const ttl = request.ttlSeconds ?? 3600;
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > DEV_TOKEN_MAX_TTL_SECONDS) {
        throw new WardenError('bad_request', `ttl must be 1..${DEV_TOKEN_MAX_TTL_SECONDS} seconds`);
      }
      const user = request.user ?? null;
      if (user !== null && (typeof user !== 'string' || user.length === 0)) throw new WardenError('bad_request', 'user must be a non-empty string');
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = {
        ...(request.claims ?? {}),
        client_id: request.agent,
        azp: request.agent,
      };
      if (request.scopes && request.scopes.length > 0) payload.scope = request.scopes.join(' ');
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: privateJwk.kid })
        .setIssuer(issuer)
        .setAudience(request.resource === undefined ? audience : typeof request.resource === 'string' ? request.resource : [...request.resource])
        .setSubject(user ?? request.agent)
        .setIssuedAt(now)
        .setExpirationTime(now + ttl)
        .setJti(randomBytes(16).toString('base64url'))
        .sign(signingKey);
    },
  };
}
