/**
 * RFC 8707 audience binding on MCP routes: a token is accepted only by the MCP
 * resource it was issued for (its `aud` contains the route's RFC 9728
 * `resource`), so a token meant for `/mcp/admin` does not work on `/mcp/files`
 * even when one issuer's `audience` lists both. An issuer may opt out with
 * `audience_binding: gateway` (one audience for the whole gateway).
 */

import type { Config, RouteConfig } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { resourcePath } from '../http/well-known.js';

/** The RFC 9728 `resource` of an MCP route: the public URL and the route's literal path prefix. */
export function mcpResource(publicUrl: string, route: RouteConfig): string {
  return `${publicUrl.replace(/\/+$/, '')}${resourcePath(route)}`;
}

/** Every MCP route's resource (the dev issuer's verifier accepts these as `aud`). */
export function mcpResources(config: Config, publicUrl: string): string[] {
  return config.routes.filter((r) => r.mcp).map((r) => mcpResource(publicUrl, r));
}

/** Issuers whose tokens carry one gateway-wide audience (no per-resource binding). */
export function gatewayAudienceIssuers(config: Config): ReadonlySet<string> {
  return new Set(config.identity.issuers.filter((i) => i.audience_binding === 'gateway').map((i) => i.issuer));
}

/** Throw `unauthenticated` unless `principal`'s token names `resource` in `aud` (or its issuer opted out). */
export function requireResourceAudience(principal: Principal, resource: string, exempt: ReadonlySet<string>): void {
  if (exempt.has(principal.issuer)) return;
  const aud = principal.claims.aud;
  const ok = typeof aud === 'string' ? aud === resource : Array.isArray(aud) && aud.includes(resource);
  if (!ok) {
    throw new WardenError('unauthenticated', 'the token was not issued for this MCP resource (its aud must contain the resource)', {
      reason: 'wrong_resource_audience',
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token", error_description="token audience does not include this resource"' },
    });
  }
}

/** Config warnings: MCP routes no configured issuer can mint an acceptable token for. */
export function audienceBindingWarnings(config: Config, publicUrl: string): Array<{ path: string; message: string }> {
  if (config.identity.dev_issuer) return [];
  const out: Array<{ path: string; message: string }> = [];
  config.routes.forEach((route, i) => {
    if (!route.mcp || route.public) return;
    const resource = mcpResource(publicUrl, route);
    const possible = config.identity.issuers.some((iss) => iss.audience_binding === 'gateway' || iss.audience.includes(resource));
    if (!possible) {
      out.push({
        path: `routes[${i}]`,
        message: `no issuer can mint a token this MCP route accepts: standard MCP clients ask for aud = ${resource} (RFC 8707); list it in an issuer's audience, or set audience_binding: gateway on the issuer`,
      });
    }
  });
  return out;
}
