/**
 * The `authenticate` stage: verify the agent's bearer token, require the
 * route's scopes, and answer with RFC 6750 challenges (on MCP routes carrying
 * the RFC 9728 `resource_metadata` link).
 */

import type { Socket } from 'node:net';
import { WardenError } from '../core/errors.js';
import type { Runtime } from '../core/runtime.js';
import { resourceMetadataUrl, resourcePath } from '../http/well-known.js';
import type { RequestState } from '../pipeline/context.js';
import type { Stage } from '../pipeline/stage.js';
import type { BoundCounter } from '../observability/metrics.js';
import { bearerToken } from './bearer.js';
import type { Principal } from '../core/principal.js';
import { gatewayAudienceIssuers, mcpResource, requireResourceAudience } from '../mcp/audience.js';

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** The last token a connection presented and what it verified to (see run). */
const TOKEN_MEMO = Symbol('warden.tokenMemo');
interface TokenMemo {
  readonly header: string;
  readonly token: string;
  readonly principal: Principal;
  readonly authenticator: Runtime['authenticator'];
}
type MemoSocket = Socket & { [TOKEN_MEMO]?: TokenMemo };

/** Build the stage for one config generation. */
export function createIdentityStage(rt: Runtime): Stage {
  const { authenticator, metrics } = rt;
  // Bound at the first hit (no series before it): a hit is then one addition, no label lookup.
  let tokenCacheHits: BoundCounter | undefined;
  // The challenge of each route (by index), built once; on MCP routes it links the RFC 9728 metadata.
  const challenges = rt.config.routes.map((route) =>
    route.mcp ? `Bearer realm="warden", resource_metadata="${resourceMetadataUrl(rt.publicUrl, resourcePath(route))}"` : 'Bearer realm="warden"',
  );
  const challengeOf = (state: RequestState): string => challenges[state.routeIndex as number] ?? 'Bearer realm="warden"';

  // RFC 8707 on MCP routes: the token's aud must name the route's resource (mcp/audience.ts).
  const resources = rt.config.routes.map((route) => (route.mcp ? mcpResource(rt.publicUrl, route) : undefined));
  const gatewayAudience = gatewayAudienceIssuers(rt.config);

  function requireScopes(state: RequestState): void {
    const resource = resources[state.routeIndex as number];
    if (resource === undefined && state.principal!.resourceBound) {
      // RFC 8707 the other way round: a token bound to MCP resources is no token for the rest of the gateway.
      throw new WardenError('unauthenticated', 'the token was issued for an MCP resource, not for this route', {
        headers: { 'WWW-Authenticate': `${challengeOf(state)}, error="invalid_token", error_description="token audience is an MCP resource"` },
        reason: 'wrong_resource_audience',
      });
    }
    if (resource !== undefined) {
      try {
        requireResourceAudience(state.principal!, resource, gatewayAudience);
      } catch (err) {
        const e = err as WardenError;
        const params = e.headers['WWW-Authenticate'].replace(/^Bearer\s*/i, '');
        throw new WardenError('unauthenticated', e.message, {
          headers: { 'WWW-Authenticate': `${challengeOf(state)}, ${params}` },
          reason: e.reason,
          cause: err,
        });
      }
    }
    const required = state.route?.scopes;
    if (required?.length) {
      const have = new Set(state.principal!.scopes);
      const missing = required.filter((s) => !have.has(s));
      if (missing.length) {
        throw new WardenError('forbidden', `the token lacks the required scope(s): ${missing.join(' ')}`, {
          headers: { 'WWW-Authenticate': `${challengeOf(state)}, error="insufficient_scope", scope="${required.join(' ').replace(/["\\]/g, '')}"` },
          reason: 'insufficient_scope',
        });
      }
    }
  }

  async function verify(state: RequestState, token: string): Promise<void> {
    try {
      state.principal = await authenticator.authenticate(token);
    } catch (err) {
      if (err instanceof WardenError && err.code === 'unauthenticated') {
        // The verifier's challenge carries the error parameters; they follow the route's own, comma-separated (RFC 9110 §11.6.1).
        const given = err.headers['WWW-Authenticate'] ?? err.headers['www-authenticate'];
        const params = given ? given.replace(/^Bearer\s*/i, '') : 'error="invalid_token"';
        const hdr = params ? `${challengeOf(state)}, ${params}` : challengeOf(state);
        throw new WardenError('unauthenticated', err.message, { headers: { 'WWW-Authenticate': hdr }, reason: err.reason, cause: err });
      }
      throw err;
    }
    requireScopes(state);
  }

  return {
    name: 'authenticate',
    appliesTo: (route) => !route.config.public,
    /**
     * Without a promise when the verified-token cache has the token. An agent
     * on a keep-alive connection sends the same Authorization header again and
     * again: the connection remembers the last one it verified (for this
     * authenticator, until the token's exp), so a repeat costs one string
     * comparison instead of a parse and a SHA-256 for the cache lookup.
     */
    run(state, req) {
      const header = state.headers.authorization;
      const socket = req?.socket as MemoSocket | undefined;
      const memo = socket?.[TOKEN_MEMO];
      if (memo !== undefined && memo.header === header && memo.authenticator === authenticator && Date.now() < memo.principal.expiresAt * 1000) {
        (tokenCacheHits ??= metrics.counter('warden_token_cache_hits_total', NO_LABELS)).inc();
        state.token = memo.token;
        state.principal = memo.principal;
        return requireScopes(state);
      }
      if (!header)
        throw new WardenError('unauthenticated', 'a bearer token is required', { headers: { 'WWW-Authenticate': challengeOf(state) }, reason: 'no_token' });
      const token = bearerToken(header);
      if (token === null) {
        throw new WardenError('unauthenticated', 'the Authorization header must be "Bearer <token>"', {
          headers: { 'WWW-Authenticate': `${challengeOf(state)}, error="invalid_request"` },
          reason: 'bad_authorization_header',
        });
      }
      state.token = token;
      const cached = authenticator.peek?.(token);
      if (cached) {
        state.principal = cached;
        if (socket) socket[TOKEN_MEMO] = { header, token, principal: cached, authenticator };
        return requireScopes(state);
      }
      return verify(state, token);
    },
  };
}
