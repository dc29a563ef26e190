/**
 * RFC 9728 protected resource metadata for MCP routes, served at
 * `/.well-known/oauth-protected-resource<route path>` so MCP clients can find
 * the authorization server from the 401's `resource_metadata` link.
 */

import { Hono } from 'hono';
import type { Config, RouteConfig } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import { problemResponse } from '../http/problem.js';
import { resourcePath } from '../http/well-known.js';

/** The metadata document of one MCP route. */
export interface ProtectedResourceMetadata {
  resource: string;
  /** Omitted when no configured issuer is an authorization server (dev issuer only). */
  authorization_servers?: string[];
  scopes_supported?: string[];
  bearer_methods_supported: ['header'];
  resource_name: string;
}

/** Metadata for `route` under `publicUrl`. */
export function protectedResourceMetadata(config: Config, route: RouteConfig, publicUrl: string): ProtectedResourceMetadata {
  const base = publicUrl.replace(/\/+$/, '');
  // Only issuers that are authorization servers (RFC 8414 metadata of their own).
  // The dev issuer serves none, so it is not advertised; `warden token --resource` mints its tokens.
  const servers = config.identity.issuers.map((i) => i.issuer);
  const doc: ProtectedResourceMetadata = {
    resource: `${base}${resourcePath(route)}`,
    ...(servers.length > 0 ? { authorization_servers: [...new Set(servers)] } : {}),
    bearer_methods_supported: ['header'],
    resource_name: route.name,
  };
  if (route.scopes?.length) doc.scopes_supported = [...route.scopes];
  return doc;
}

/** The `.well-known` app (mounted at `/.well-known`). */
export function createMetadataApp(config: Config, publicUrl: string): Hono {
  const documents = new Map<string, ProtectedResourceMetadata>();
  for (const route of config.routes) {
    if (!route.mcp) continue;
    const path = resourcePath(route);
    // First route wins, as in matching.
    if (!documents.has(path)) documents.set(path, protectedResourceMetadata(config, route, publicUrl));
  }
  const prefix = '/.well-known/oauth-protected-resource';
  const app = new Hono();
  app.get('/oauth-protected-resource/*', (c) => {
    const path = new URL(c.req.url).pathname;
    const doc = path.startsWith(prefix) ? documents.get(path.slice(prefix.length).replace(/(.)\/$/, '$1')) : undefined;
    if (!doc) {
      return problemResponse(new WardenError('not_found', 'no MCP resource at this path'));
    }
    return c.json(doc, 200, { 'cache-control': 'public, max-age=300' });
  });
  return app;
}
