/**
 * Client authentication at `POST /.warden/oauth/token` (RFC 6749 §2.3,
 * RFC 7523): a bearer subject token alone never pulls a user's upstream token;
 * the exchanging client proves who it is with `client_secret_basic`,
 * `client_secret_post` or `private_key_jwt`, against `vault.exchange_clients`.
 * Exactly one method per request; secrets are compared in constant time.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { ClientAssertionError, createClientAssertionVerifier, type ClientAssertionVerifier } from '../identity/client-assertion.js';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The outcome of authenticating a token request's client. */
export type ClientAuthResult =
  | { ok: true; clientId: string; method: 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' }
  | { ok: false; status: 400 | 401 | 503; error: 'invalid_request' | 'invalid_client' | 'temporarily_unavailable'; description: string; basic: boolean };

export interface ExchangeClients {
  /** Authenticate the client of one token request (form already parsed; params must not repeat). */
  authenticate(authorization: string | undefined, param: (name: string) => string | undefined): Promise<ClientAuthResult>;
}

type Registered = { clientId: string; secretDigest?: Buffer; assertions?: ClientAssertionVerifier };

const digest = (v: string) => createHash('sha256').update(v, 'utf8').digest();

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding. */
function formDecode(value: string): string | null {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** Build the registry of exchanging clients. `audiences`: what a client assertion's `aud` may name. */
export function createExchangeClients(
  config: Config['vault']['exchange_clients'],
  options: { audiences: readonly string[]; store: Store; timeoutMs?: number },
): ExchangeClients {
  const clients = new Map<string, Registered>();
  for (const c of config) {
    clients.set(c.client_id, {
      clientId: c.client_id,
      secretDigest: c.client_secret !== undefined ? digest(c.client_secret) : undefined,
      assertions:
        c.jwks_uri !== undefined
          ? createClientAssertionVerifier({ jwksUri: c.jwks_uri, audiences: options.audiences, timeoutMs: options.timeoutMs ?? 5000 })
          : undefined,
    });
  }
  // Compared against when the client is unknown, so timing does not tell known ids apart.
  const decoy = digest('warden-no-such-client');

  const refuse = (description: string, basic: boolean): ClientAuthResult => ({ ok: false, status: 401, error: 'invalid_client', description, basic });

  function checkSecret(clientId: string, secret: string, method: 'client_secret_basic' | 'client_secret_post'): ClientAuthResult {
    const client = clients.get(clientId);
    const expected = client?.secretDigest ?? decoy;
    const match = timingSafeEqual(digest(secret), expected);
    if (!client || !client.secretDigest || !match) return refuse('client authentication failed', method === 'client_secret_basic');
    return { ok: true, clientId, method };
  }

  return {
    async authenticate(authorization, param) {
      const basic = authorization !== undefined && /^basic /i.test(authorization);
      const postId = param('client_id');
      const postSecret = param('client_secret');
      const assertionType = param('client_assertion_type');
      const assertion = param('client_assertion');
      const methods = [basic, postSecret !== undefined, assertion !== undefined || assertionType !== undefined].filter(Boolean).length;
      if (authorization !== undefined && !basic)
        return {
          ok: false,
          status: 400,
          error: 'invalid_request',
          description: 'the Authorization header must use the Basic scheme (client_secret_basic)',
          basic: false,
        };
      if (methods > 1) return { ok: false, status: 400, error: 'invalid_request', description: 'use exactly one client authentication method', basic: false };
      if (methods === 0) return refuse('client authentication is required (client_secret_basic, client_secret_post or private_key_jwt)', true);

      if (basic) {
        let decoded: string;
        try {
          decoded = Buffer.from(authorization!.slice(6).trim(), 'base64').toString('utf8');
        } catch {
          return refuse('malformed Basic credentials', true);
        }
        const colon = decoded.indexOf(':');
        const id = colon < 0 ? null : formDecode(decoded.slice(0, colon));
        const secret = colon < 0 ? null : formDecode(decoded.slice(colon + 1));
        if (!id || secret === null) return refuse('malformed Basic credentials', true);
        if (postId !== undefined && postId !== id)
          return { ok: false, status: 400, error: 'invalid_request', description: 'client_id differs from the authenticated client', basic: false };
        return checkSecret(id, secret, 'client_secret_basic');
      }
      if (postSecret !== undefined) {
        if (!postId) return refuse('client_id is required with client_secret', false);
        return checkSecret(postId, postSecret, 'client_secret_post');
      }
      // private_key_jwt
      if (assertionType !== JWT_BEARER_ASSERTION || !assertion) {
        return {
          ok: false,
          status: 400,
          error: 'invalid_request',
          description: `client_assertion_type must be ${JWT_BEARER_ASSERTION}, with client_assertion`,
          basic: false,
        };
      }
      // The client is named by the assertion's iss/sub (client_id, if sent, must agree).
      let claimed: string | undefined;
      try {
        const payload = JSON.parse(Buffer.from(assertion.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
        claimed = typeof payload.sub === 'string' ? payload.sub : undefined;
      } catch {
        claimed = undefined;
      }
      const id = postId ?? claimed;
      const client = id !== undefined ? clients.get(id) : undefined;
      if (!client?.assertions) return refuse('client authentication failed', false);
      let verified: { jti: string; expiresAt: number };
      try {
        verified = await client.assertions.verify(assertion, client.clientId);
      } catch (err) {
        if (err instanceof ClientAssertionError) return refuse('client authentication failed', false);
        return { ok: false, status: 503, error: 'temporarily_unavailable', description: 'the client keys could not be fetched now', basic: false };
      }
      // A jti is usable once (RFC 7523 §3 item 7): remember it until the assertion expires.
      const fresh = await options.store.set(`vault:exchange-jti:${encodeURIComponent(client.clientId)}:${encodeURIComponent(verified.jti)}`, '1', {
        ifAbsent: true,
        ttlMs: Math.max(1000, verified.expiresAt - Date.now() + 60_000),
      });
      if (!fresh) return refuse('client assertion was already used', false);
      return { ok: true, clientId: client.clientId, method: 'private_key_jwt' };
    },
  };
}
