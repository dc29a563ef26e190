/**
 * The canonical form of a held request: what the approver sees, what the
 * digest binds, and what a re-sent request must match byte for byte. Built from
 * the pipeline's canonical path/query and the buffered body only.
 */

import type { RequestState } from '../pipeline/context.js';
import { WardenError } from '../core/errors.js';
import type { CelVars } from './rules.js';
import type { TemplateVars } from '../templates/template.js';
import { canonicalJson, sha256Hex } from '../core/canonical-json.js';
import { parseStrictJson, readsAsJson } from '../http/strict-json.js';

/**
 * Headers kept with the stored request: shown to the approver, part of the
 * digest, and the only inbound headers a released request carries upstream
 * (#12 A.4). Anything else the agent sends with the release is dropped.
 */
export const STORED_HEADERS = ['content-type', 'content-encoding', 'content-language', 'accept', 'idempotency-key'] as const;
/**
 * Streamable HTTP transport headers an MCP upstream needs to route a released
 * tools/call (the session is bound to the principal by the MCP stage; the
 * call itself is bound by tool and arguments).
 */
const MCP_TRANSPORT_HEADERS = ['mcp-session-id', 'mcp-protocol-version', 'last-event-id'] as const;
const RELEASE_HEADERS: ReadonlySet<string> = new Set<string>(STORED_HEADERS);
const RELEASE_HEADERS_MCP: ReadonlySet<string> = new Set<string>([...STORED_HEADERS, ...MCP_TRANSPORT_HEADERS]);

/** The inbound headers a request released by an approval or grant may carry upstream. */
export function forwardableHeaders(state: RequestState): ReadonlySet<string> {
  return state.mcp ? RELEASE_HEADERS_MCP : RELEASE_HEADERS;
}

/** The request as stored with its approval. */
export interface StoredRequest {
  method: string;
  /** Canonical path. */
  path: string;
  /** Canonical query without `?`. */
  query: string;
  headers: Array<[string, string]>;
  /** Body bytes, base64 ('' when none). */
  body: string;
  bodySha256: string;
  bodyBytes: number;
  route: string;
  params: Record<string, string>;
  agent: string;
  user: string;
  claims: Record<string, unknown>;
  /** MCP tool call (tool name and canonical JSON of its arguments). */
  tool?: string;
  argsJson?: string;
}

function headerValue(state: RequestState, name: string): string | undefined {
  const v = state.headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : String(v);
}

function declaresBody(state: RequestState): boolean {
  const cl = headerValue(state, 'content-length');
  return (cl !== undefined && cl !== '0') || headerValue(state, 'transfer-encoding') !== undefined;
}

/** Capture the request; throws when the body should exist but was not buffered (fail closed). */
export function captureRequest(state: RequestState): StoredRequest {
  const principal = state.principal;
  if (!principal) throw new WardenError('unauthenticated', 'approval needs an authenticated agent');
  if (!principal.user)
    throw new WardenError('forbidden', 'this request needs a user to approve it, and the token acts for no user', { reason: 'approval_no_user' });
  if (!state.route) throw new WardenError('internal', 'approve stage ran without a route');
  if (state.body === undefined && declaresBody(state)) {
    throw new WardenError('internal', 'approve stage needs the buffered request body', { reason: 'approval_body_not_buffered' });
  }
  const body = state.body ?? Buffer.alloc(0);
  const headers: Array<[string, string]> = [];
  for (const name of STORED_HEADERS) {
    const v = headerValue(state, name);
    if (v !== undefined) headers.push([name, v]);
  }
  const stored: StoredRequest = {
    method: state.method,
    path: state.path,
    query: state.query,
    headers,
    body: body.toString('base64'),
    bodySha256: sha256Hex(body),
    bodyBytes: body.length,
    route: state.route.name,
    params: { ...state.params },
    agent: principal.agent,
    user: principal.user,
    claims: { ...principal.claims } as Record<string, unknown>,
  };
  if (state.mcp?.tool !== undefined) {
    stored.tool = state.mcp.tool;
    stored.argsJson = canonicalJson(state.mcp.args ?? {});
  }
  return stored;
}

/**
 * The digest that binds an approval: agent, user, route, method, canonical path
 * and query, the stored (shown, forwarded) headers and the body's SHA-256; for an MCP tool call
 * the tool and its canonical arguments instead of the body (the JSON-RPC id
 * differs on every retry).
 */
export function requestDigest(r: StoredRequest): string {
  // Every stored header is shown and forwarded on release, so every one is bound (v2: v1 bound only two).
  const shown = STORED_HEADERS.map((h) => r.headers.find(([k]) => k === h)?.[1] ?? null);
  const parts =
    r.tool !== undefined
      ? ['warden-approval-v2', r.agent, r.user, r.route, r.method, r.path, r.query, shown, 'mcp', r.tool, r.argsJson ?? '{}']
      : ['warden-approval-v2', r.agent, r.user, r.route, r.method, r.path, r.query, shown, r.bodySha256];
  return sha256Hex(JSON.stringify(parts));
}

/** What a grant ("allow this again for N minutes") matches: agent, user, route, method, path (and tool). */
export function grantMatchKey(r: Pick<StoredRequest, 'agent' | 'user' | 'route' | 'method' | 'path' | 'tool'>): string {
  return sha256Hex(JSON.stringify(['warden-grant-v1', r.agent, r.user, r.route, r.method, r.path, r.tool ?? null])).slice(0, 32);
}

function parseQuery(query: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(query)) if (!(k in out)) out[k] = v;
  return out;
}

function parseJsonBody(r: StoredRequest): unknown {
  if (r.bodyBytes === 0) return null;
  const bytes = Buffer.from(r.body, 'base64');
  // The body stage's rule (readsAsJson): the stored request renders the values policy read live.
  if (!readsAsJson(r.headers.find(([k]) => k === 'content-type')?.[1], bytes)) return null;
  try {
    return parseStrictJson(bytes);
  } catch {
    return null;
  }
}

/** Template variables rendered from the stored request only. */
export function storedTemplateVars(r: StoredRequest): TemplateVars {
  return {
    agent: r.agent,
    user: r.user,
    path: r.params,
    query: parseQuery(r.query),
    body: parseJsonBody(r),
    tool: r.tool ?? null,
    args: r.argsJson !== undefined ? JSON.parse(r.argsJson) : null,
    request: { method: r.method, path: r.path, query: r.query },
    claims: r.claims,
  };
}

/** Inbound credentials: never part of a rule's `request.headers`. */
const CEL_HIDDEN_HEADERS: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** Which headers `when` expressions read (lower case): a set of names, every header, or none. */
export type HeaderReads = ReadonlySet<string> | 'all' | null;

// `request.headers["x-mode"]` / `['x-mode']`, `"x-mode" in request.headers`, `request.headers.x_mode` (not a method call).
const HEADER_INDEX = /\brequest\s*\.\s*headers\s*\[\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\]/g;
const HEADER_IN = /(?:"([^"\\]*)"|'([^'\\]*)')\s+in\s+request\s*\.\s*headers\b/g;
const HEADER_DOT = /\brequest\s*\.\s*headers\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()/g;

/** The headers read by these `when` expressions; any other use of `request.headers` (or of `request` whole) reads them all. */
export function headerReadsOf(expressions: readonly string[]): HeaderReads {
  const names = new Set<string>();
  for (const text of expressions) {
    for (const re of [HEADER_INDEX, HEADER_IN]) for (const m of text.matchAll(re)) names.add((m[1] ?? m[2]).toLowerCase());
    for (const m of text.matchAll(HEADER_DOT)) names.add(m[1].toLowerCase());
    const rest = text.replace(HEADER_INDEX, '').replace(HEADER_IN, '').replace(HEADER_DOT, '');
    if (/\brequest\s*\.\s*headers\b/.test(rest) || /(?<![.\w])request(?!\w)(?!\s*\.)/.test(rest)) return 'all';
  }
  return names.size > 0 ? names : null;
}

// CGI, WSGI and nginx-style upstreams read `X_Mode` as `X-Mode`.
const foldHeader = (name: string) => name.toLowerCase().replace(/_/g, '-');

/** The folded names of a set of reads, made once per rule (the sets live as long as their config generation). */
const folded = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();
function foldedOf(reads: ReadonlySet<string>): ReadonlySet<string> {
  let names = folded.get(reads);
  if (names === undefined) folded.set(reads, (names = new Set([...reads].map(foldHeader))));
  return names;
}

/**
 * Throw `bad_request` when a header a rule reads arrives as more than one line
 * or under another spelling of its name (`raw`: the request's raw headers). The
 * rule reads Node's join ("purge, soft"), an upstream may take the first line
 * ("purge") or fold `_` into `-`: the value it acts on would not be the one
 * the rule saw. Credentials are not part of `request.headers`.
 */
export function checkHeaderReads(raw: readonly string[], reads: HeaderReads): void {
  if (reads === null) return;
  const watched = reads === 'all' ? null : foldedOf(reads);
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (CEL_HIDDEN_HEADERS.has(name)) continue;
    const folded = foldHeader(name);
    if (watched !== null && !watched.has(folded)) continue;
    const exact = watched === null || (reads as ReadonlySet<string>).has(name);
    if (seen.has(folded) || !exact) {
      const why = `header ${JSON.stringify(raw[i])} appears more than once or in another spelling of a header an approval rule reads`;
      throw new WardenError('bad_request', why, { reason: 'header_ambiguous' });
    }
    seen.add(folded);
  }
}

/** CEL variables of the live request (the same data that is stored). */
export function celVars(state: RequestState): CelVars {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(state.headers)) {
    if (v === undefined || CEL_HIDDEN_HEADERS.has(k)) continue;
    headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  let body: unknown = state.json ?? null;
  if (body === null && state.body && readsAsJson(state.headers['content-type'] as string | undefined, state.body)) {
    try {
      body = parseStrictJson(state.body);
    } catch {
      body = null;
    }
  }
  return {
    request: { method: state.method, path: state.path, query: parseQuery(state.query), headers },
    body,
    path: { ...state.params },
    claims: { ...(state.principal?.claims ?? {}) } as Record<string, unknown>,
    agent: state.principal?.agent ?? '',
    user: state.principal?.user ?? null,
    tool: state.mcp?.tool ?? null,
    args: state.mcp?.args ?? null,
  };
}
