/**
 * Config checks for the headers a route sets on the upstream request
 * (`upstream.headers`, `credentials.header`): names Warden computes itself are
 * reserved, values cannot split a header, and no name is set twice.
 */

import type { RouteConfig } from '../config/schema.js';
import { RESERVED_UPSTREAM_HEADERS } from './headers.js';

const RESERVED = new Set(RESERVED_UPSTREAM_HEADERS);
// Field values (RFC 9110 §5.5): visible characters, space and tab; no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Problems with one route's static upstream headers, as paths relative to the route. */
export function staticHeaderIssues(route: RouteConfig): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(route.upstream.headers ?? {})) {
    const lower = name.toLowerCase();
    const at = `upstream.headers.${name}`;
    if (RESERVED.has(lower)) issues.push({ path: at, message: `${name} is set by Warden and cannot be configured` });
    if (seen.has(lower)) issues.push({ path: at, message: `${name} is set twice (header names are case-insensitive)` });
    seen.add(lower);
    if (!FIELD_VALUE.test(value)) issues.push({ path: at, message: 'the value contains a control character' });
  }
  const c = route.credentials;
  if (c && c.kind === 'header') {
    const lower = c.name.toLowerCase();
    if (RESERVED.has(lower)) issues.push({ path: 'credentials.header.name', message: `${c.name} is set by Warden and cannot be configured` });
    if (seen.has(lower)) issues.push({ path: 'credentials.header.name', message: `${c.name} is also set by upstream.headers` });
    if (!FIELD_VALUE.test(c.value)) issues.push({ path: 'credentials.header.value', message: 'the value contains a control character' });
  }
  if (c && (c.kind === 'vault' || c.kind === 'token_exchange') && seen.has('authorization')) {
    issues.push({ path: 'upstream.headers.Authorization', message: "the route's credentials set Authorization" });
  }
  return issues;
}
