/** Routes compiled once per config generation: patterns, upstream targets, body needs. */

import type { Config, RouteConfig } from '../config/schema.js';
import { compilePattern, type CompiledPattern } from './routes.js';
import { queryReadsOf, type QueryReads } from '../http/query-guard.js';
import { headerNames } from '../proxy/headers.js';

export interface CompiledRoute {
  readonly index: number;
  readonly config: RouteConfig;
  readonly pattern: CompiledPattern;
  readonly methods: ReadonlySet<string> | null;
  readonly origin: string;
  readonly host: string;
  /** Upstream base path without trailing slash ('' for root). */
  readonly basePath: string;
  /** Leading canonical segments removed before forwarding. */
  readonly stripSegments: number;
  readonly timeoutMs: number;
  /** A stage needs the request body buffered (MCP, approvals, `{body.*}` templates). */
  readonly needsBody: boolean;
  /** Query parameters the route's templates and rules read (checked for pollution, #12 A.5). */
  readonly queryReads: QueryReads;
  /** `upstream.headers` as name/value pairs (values already `${VAR}`-substituted at load). */
  readonly headers: ReadonlyArray<[string, string]>;
  /** The lower-case names of `headers` (an agent's header of one of these names is never forwarded). */
  readonly headerNames: ReadonlySet<string>;
}

/** Every string in a config subtree (templates, CEL expressions). */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) strings(v, out);
  return out;
}

function referencesBody(route: RouteConfig): boolean {
  const text = JSON.stringify([route.authorize ?? [], route.rate_limit ?? null]);
  return text.includes('{body.') || text.includes('{body}');
}

/** A route without `upstream.headers` (most): one shared empty list and name set, not two objects per route. */
const NO_HEADERS: ReadonlyArray<[string, string]> = Object.freeze([]);
const NO_HEADER_NAMES: ReadonlySet<string> = new Set();

/** Compile all routes (config is already validated, so patterns compile). */
export function compileRoutes(config: Config): CompiledRoute[] {
  // Routes mostly share a few upstreams: one string per distinct origin and host, not one per route.
  const interned = new Map<string, string>();
  const intern = (s: string): string => {
    const had = interned.get(s);
    if (had !== undefined) return had;
    interned.set(s, s);
    return s;
  };
  return config.routes.map((route, index) => {
    const pattern = compilePattern(route.match.path);
    const upstream = new URL(route.upstream.url);
    // A literal match path maps onto the upstream URL itself unless strip_prefix says otherwise.
    const isLiteral = !/[:*]/.test(route.match.path);
    const strip = route.upstream.strip_prefix ?? (isLiteral && upstream.pathname !== '/' ? pattern.literalPrefix : '/');
    const stripSegments = strip.split('/').filter(Boolean).length;
    const extra = routeHeaders(route);
    return {
      index,
      config: route,
      pattern,
      methods: route.match.methods ? new Set(route.match.methods) : null,
      origin: intern(upstream.origin),
      host: intern(upstream.host),
      basePath: upstream.pathname.replace(/\/+$/, ''),
      stripSegments,
      timeoutMs: route.upstream.timeout ?? config.server.limits.request_timeout,
      // A budget reads its amount from the body and may hold the exact request for approval.
      needsBody: Boolean(route.mcp || route.approval?.length || route.budget || referencesBody(route)),
      queryReads: queryReadsOf(
        strings({ ...route, match: undefined, upstream: undefined }),
      ) /* every template and rule of the route, whichever feature owns it */,
      headers: extra.headers,
      headerNames: extra.headerNames,
    };
  });
}

function routeHeaders(route: RouteConfig): Pick<CompiledRoute, 'headers' | 'headerNames'> {
  const headers = Object.entries(route.upstream.headers ?? {});
  if (headers.length === 0) return { headers: NO_HEADERS, headerNames: NO_HEADER_NAMES };
  return { headers: Object.freeze(headers), headerNames: headerNames(headers) };
}

/** The upstream path for a canonical path and query. */
export function upstreamPath(route: CompiledRoute, canonicalPath: string, query: string): string {
  let rest = canonicalPath;
  if (route.stripSegments > 0) {
    let idx = 0;
    for (let n = 0; n < route.stripSegments && idx >= 0; n++) idx = canonicalPath.indexOf('/', idx + 1);
    rest = idx < 0 ? '' : canonicalPath.slice(idx);
  }
  let path = route.basePath + rest;
  if (path === '') path = '/';
  return query ? `${path}?${query}` : path;
}
