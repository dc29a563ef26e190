/**
 * RFC 8414 metadata for Warden's own authorization server role: the RFC 8693
 * token endpoint at `/.warden/oauth/token`. Served at
 * `/.well-known/oauth-authorization-server`, so standard OAuth clients
 * (openid-client, oauth4webapi) discover the endpoint and its client
 * authentication methods.
 */

import { Hono } from 'hono';
import { CLIENT_ASSERTION_ALGORITHMS } from '../identity/client-assertion.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** The metadata document for the issuer `baseUrl` (Warden's public URL). */
export function authorizationServerMetadata(baseUrl: string): Record<string, unknown> {
  return {
    issuer: baseUrl,
    token_endpoint: `${baseUrl}/.warden/oauth/token`,
    grant_types_supported: [TOKEN_EXCHANGE_GRANT],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: CLIENT_ASSERTION_ALGORITHMS,
    response_types_supported: [],
  };
}

/** The `.well-known` app (mounted at `/.well-known`). */
export function createAuthorizationServerMetadataApp(baseUrl: string): Hono {
  const doc = authorizationServerMetadata(baseUrl);
  const app = new Hono();
  app.get('/oauth-authorization-server', (c) => c.json(doc, 200, { 'Cache-Control': 'public, max-age=3600' }));
  return app;
}
