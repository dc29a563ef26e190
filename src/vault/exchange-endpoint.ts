/**
 * `POST /.warden/oauth/token`: RFC 8693 token exchange. The agent presents its
 * own access token as `subject_token` and names a provider (`resource` or
 * `audience`); it receives the vaulted access token of the user that token acts
 * for — never anyone else's — if policy allows and only within linked scopes.
 * The exchanging client authenticates (see exchange-clients.ts) and must be
 * the agent the subject token was issued to. Errors use the RFC 6749 §5.2 /
 * RFC 8693 §2.2.2 JSON form, unexpected ones included (`server_error`).
 */

import type { Context } from 'hono';
import { isWardenError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { parseScopes } from './providers.js';
import { missingScopes, type VaultServices } from './services.js';
import type { ExchangeClients } from './exchange-clients.js';

const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const MAX_BODY_BYTES = 64 * 1024;
// Characters that would change the meaning of an OpenFGA id (DESIGN.md "Templates").
const UNSAFE_ID = /[#:\s\p{Cc}]/u;

type OAuthErrorCode =
  'invalid_request' | 'invalid_client' | 'invalid_target' | 'invalid_scope' | 'unsupported_grant_type' | 'temporarily_unavailable' | 'server_error';

function oauthError(
  c: Context,
  status: 400 | 401 | 405 | 500 | 503,
  error: OAuthErrorCode,
  description: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Response {
  return c.json({ error, error_description: description, ...extra }, status, { 'Cache-Control': 'no-store', Pragma: 'no-cache', ...headers });
}

/** An absolute URI without a fragment (RFC 8707 §2: what `resource` must be). */
function isAbsoluteUri(value: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value) || value.includes('#')) return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The provider named by `resource` (this Warden's connection URL of the
 * provider) or `audience` (that URL, or the bare provider name).
 */
function targetProvider(v: VaultServices, resources: string[], audiences: string[]): string | null | 'ambiguous' | 'bad_resource' {
  const prefix = `${v.baseUrl}/.warden/connections/`;
  const names = new Set<string>();
  for (const value of resources) {
    if (!isAbsoluteUri(value)) return 'bad_resource';
    names.add(value.startsWith(prefix) ? value.slice(prefix.length) : value);
  }
  for (const value of audiences) names.add(value.startsWith(prefix) ? value.slice(prefix.length) : value);
  if (names.size === 0) return null;
  if (names.size > 1) return 'ambiguous';
  return [...names][0];
}

/** The Hono handler of the exchange endpoint. */
export function createExchangeHandler(v: VaultServices, clients: ExchangeClients): (c: Context) => Promise<Response> {
  const { rt } = v;

  return async function tokenEndpoint(c: Context): Promise<Response> {
    if (c.req.method !== 'POST') return oauthError(c, 405, 'invalid_request', 'the token endpoint accepts POST only', {}, { Allow: 'POST' });
    try {
      return await tokenExchange(c);
    } catch (err) {
      if (isWardenError(err, 'authz_unavailable', 'store_unavailable')) {
        return oauthError(c, 503, 'temporarily_unavailable', 'try again later', {}, { 'Retry-After': '1' });
      }
      // Never problem+json here: OAuth clients read RFC 6749 errors only.
      rt.logger.error({ err }, 'vault exchange failed unexpectedly');
      return oauthError(c, 500, 'server_error', 'the exchange failed unexpectedly');
    }
  };

  async function tokenExchange(c: Context): Promise<Response> {
    const contentType = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (contentType !== 'application/x-www-form-urlencoded') {
      return oauthError(c, 400, 'invalid_request', 'the body must be application/x-www-form-urlencoded');
    }
    const declared = Number(c.req.header('content-length') ?? '0');
    if (declared > MAX_BODY_BYTES) return oauthError(c, 400, 'invalid_request', 'request body too large');
    const raw = await c.req.text();
    if (Buffer.byteLength(raw) > MAX_BODY_BYTES) return oauthError(c, 400, 'invalid_request', 'request body too large');

    const form = new URLSearchParams(raw);
    const seen = new Map<string, string[]>();
    for (const [k, val] of form) seen.set(k, [...(seen.get(k) ?? []), val]);
    // RFC 6749 §3.2: request parameters must not repeat (resource/audience may, RFC 8693 §2.1).
    for (const [k, vals] of seen) {
      if (vals.length > 1 && k !== 'resource' && k !== 'audience') return oauthError(c, 400, 'invalid_request', `parameter ${k} is repeated`);
    }
    const one = (k: string) => seen.get(k)?.[0];

    // The client first (RFC 6749 §3.2.1): a bearer subject token alone never pulls a user's token.
    const client = await clients.authenticate(c.req.header('authorization'), one);
    if (!client.ok) {
      rt.logger.info({ oauth_error: client.error }, 'vault exchange: client authentication refused');
      return oauthError(
        c,
        client.status,
        client.error,
        client.description,
        {},
        client.status === 401 && client.basic ? { 'WWW-Authenticate': 'Basic realm="warden", charset="UTF-8"' } : {},
      );
    }

    if (one('grant_type') !== GRANT_TYPE) return oauthError(c, 400, 'unsupported_grant_type', `grant_type must be ${GRANT_TYPE}`);
    const subjectToken = one('subject_token');
    if (!subjectToken) return oauthError(c, 400, 'invalid_request', 'subject_token is required');
    if (one('subject_token_type') !== ACCESS_TOKEN_TYPE) return oauthError(c, 400, 'invalid_request', `subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    if (one('actor_token') !== undefined) return oauthError(c, 400, 'invalid_request', 'actor_token is not supported');
    const requestedType = one('requested_token_type');
    if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE) {
      return oauthError(c, 400, 'invalid_request', `only ${ACCESS_TOKEN_TYPE} can be issued`);
    }

    // The user is taken from the verified subject token and nothing else.
    let principal: Principal;
    try {
      principal = await rt.authenticator.authenticate(subjectToken);
    } catch (err) {
      if (isWardenError(err, 'unauthenticated')) return oauthError(c, 400, 'invalid_request', 'subject_token is not a valid access token');
      return oauthError(c, 503, 'temporarily_unavailable', 'the token could not be verified now', {}, { 'Retry-After': '1' });
    }
    // A token its authorization server bound to an MCP resource (RFC 8707) is not one for Warden's endpoints.
    if (principal.resourceBound) return oauthError(c, 400, 'invalid_request', 'subject_token was issued for an MCP resource, not for this endpoint');
    if (principal.agent !== client.clientId) {
      rt.logger.info({ agent: principal.agent, client_id: client.clientId }, 'vault exchange: subject token of another client');
      return oauthError(c, 400, 'invalid_request', 'subject_token was not issued to this client');
    }
    if (principal.user === null) return oauthError(c, 400, 'invalid_request', 'subject_token does not act for a user');
    const user = principal.user;

    const target = targetProvider(v, seen.get('resource') ?? [], seen.get('audience') ?? []);
    if (target === 'bad_resource')
      return oauthError(
        c,
        400,
        'invalid_target',
        `resource must be an absolute URI (${v.baseUrl}/.warden/connections/{provider}); a bare provider name goes in audience`,
      );
    if (target === null) return oauthError(c, 400, 'invalid_target', 'name a provider in resource or audience');
    if (target === 'ambiguous') return oauthError(c, 400, 'invalid_target', 'resource and audience must name exactly one provider');
    const provider = v.providers.get(target);
    if (!provider) return oauthError(c, 400, 'invalid_target', 'unknown provider');

    // Policy: `agent:{agent} can_use connection:{provider}` when the model defines it.
    const connectionType = rt.authorizer.relations().get('connection');
    if (connectionType?.has('can_use')) {
      if (UNSAFE_ID.test(principal.agent) || principal.agent === '') {
        return oauthError(c, 400, 'invalid_target', 'this agent may not use the connection');
      }
      let allowed: boolean;
      try {
        allowed = await rt.authorizer.check({ user: `agent:${principal.agent}`, relation: 'can_use', object: `connection:${target}` });
      } catch (err) {
        rt.logger.warn({ err, provider: target }, 'vault exchange: authorization unavailable');
        return oauthError(c, 503, 'temporarily_unavailable', 'authorization is unavailable', {}, { 'Retry-After': '1' });
      }
      if (!allowed) {
        rt.logger.info({ agent: principal.agent, user, provider: target }, 'vault exchange denied by policy');
        // RFC 8693 §2.2.2: unwilling to issue a token for the named target.
        return oauthError(c, 400, 'invalid_target', 'policy does not allow this agent to use the connection');
      }
    }

    const requested = one('scope') === undefined ? undefined : (parseScopes(one('scope')) ?? []);
    const relink = async (reason: string) => {
      const err = await v.connectionRequired({ user, agent: principal.agent, provider: target }, reason);
      return oauthError(c, 400, 'invalid_target', 'the user has not linked this provider (or must link it again)', {
        connect_url: err.extra.connect_url,
      });
    };

    try {
      const conn = await v.connections.get(user, target);
      if (!conn || conn.status !== 'active') return await relink(conn ? 'relink_required' : 'not_linked');
      if (missingScopes(provider.scopes, conn.scopes).length > 0) return await relink('scopes_changed');
      if (requested && missingScopes(requested, conn.scopes).length > 0) {
        return oauthError(c, 400, 'invalid_scope', 'requested scope exceeds the scopes the user linked');
      }
      const fresh = await v.refresher.fresh(conn);
      const expiresIn = fresh.expiresAt ? Math.max(0, Math.floor((fresh.expiresAt - Date.now()) / 1000)) : undefined;
      rt.metrics.inc('warden_vault_exchanges_total', { provider: target });
      rt.logger.info({ agent: principal.agent, user, provider: target }, 'vault token exchanged');
      return c.json(
        {
          access_token: fresh.accessToken,
          issued_token_type: ACCESS_TOKEN_TYPE,
          token_type: 'Bearer',
          ...(expiresIn !== undefined ? { expires_in: expiresIn } : {}),
          // RFC 8693 §2.2.1: the token carries every linked scope, which may be more than asked.
          scope: fresh.scopes.join(' '),
        },
        200,
        { 'Cache-Control': 'no-store', Pragma: 'no-cache' },
      );
    } catch (err) {
      if (isWardenError(err, 'connection_required')) return await relink(err.reason);
      if (isWardenError(err, 'upstream_unavailable', 'store_unavailable')) {
        return oauthError(c, 503, 'temporarily_unavailable', 'try again later', {}, { 'Retry-After': err.headers['Retry-After'] ?? '1' });
      }
      throw err;
    }
  }
}
