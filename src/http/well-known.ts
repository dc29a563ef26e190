/** Where Warden's `/.well-known` documents live, computed in one place. */

import type { RouteConfig } from '../config/schema.js';
import { compilePattern } from '../pipeline/routes.js';

/** The resource path of a route: its literal prefix (what its RFC 9728 metadata and 401 challenges name). */
export function resourcePath(route: RouteConfig): string {
  return compilePattern(route.match.path).literalPrefix;
}

/** `<publicUrl>/.well-known/oauth-protected-resource<path>` (RFC 9728 section 3.1). */
export function resourceMetadataUrl(publicUrl: string, path: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/.well-known/oauth-protected-resource${path}`;
}
