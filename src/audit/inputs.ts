/**
 * The request values a decision depends on, recorded so `warden replay` can
 * decide the request again without the original traffic: the body and MCP
 * argument fields, claims and headers that the route's templates and `when`
 * rules read — only those, never a whole body, never a credential header.
 * Which fields a route reads is computed once per config generation.
 */

import type { RouteConfig } from '../config/schema.js';
import { lookup, templatePaths } from '../templates/template.js';

/** A field path, `body.a.b`, `args.path`, `claims.email`, `headers.x-env`. */
export type FieldPath = string;

/** The fields one route (and each of its MCP tools) reads. */
export interface RouteInputs {
  /** Route-level rules (every request of the route, every tool). */
  readonly fields: readonly FieldPath[];
  /** MCP tools: route-level fields plus the tool's own. */
  readonly tools: ReadonlyMap<string, readonly FieldPath[]>;
}

/** What a record carries: the values found, and the referenced fields the request did not have. */
export interface RecordedInputs {
  input?: Record<FieldPath, unknown>;
  input_missing?: FieldPath[];
}

/** Roots whose fields are recorded (path params and the query are recorded whole elsewhere). */
const ROOTS = new Set(['body', 'args', 'claims', 'headers']);

/** Headers that carry credentials are never recorded, whatever a rule reads. */
const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie)$|token|secret|passw|api[-_]?key|session|signature/i;

/**
 * A recorded value at most this long as JSON; longer ones are listed in `input_missing`. Strings too: the agent
 * chooses their length (up to the body limit), and a record must stay small whatever it sends — the console skips
 * a line past 1 MiB when it reads the log back, a file sink rotates its history away, an HTTP sink's buffer counts
 * records, not bytes.
 */
const MAX_VALUE_JSON = 512;

/** Whether `value`'s JSON text is longer than MAX_VALUE_JSON (a long string is not stringified to find out). */
function tooLong(value: unknown): boolean {
  if (typeof value === 'string') return value.length > MAX_VALUE_JSON || JSON.stringify(value).length > MAX_VALUE_JSON;
  return value !== null && typeof value === 'object' && JSON.stringify(value).length > MAX_VALUE_JSON;
}

/** CEL: `body.a`, `args.x.y`, `claims.email`, `request.headers["x-env"]`, `request.headers.x`. */
const CEL_REF = /(?<![\w.])(body|args|claims|request\.headers)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\s*(?:"[^"]*"|'[^']*')\s*\])+)/g;
const CEL_SEGMENT = /\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:"([^"]*)"|'([^']*)')\s*\]/g;

function add(out: Set<FieldPath>, root: string, rest: readonly string[]): void {
  if (!ROOTS.has(root) || rest.length === 0) return;
  if (root === 'headers') {
    const name = rest[0].toLowerCase();
    if (!SECRET_HEADER.test(name)) out.add(`headers.${name}`);
    return;
  }
  out.add(`${root}.${rest.join('.')}`);
}

/** Every field a subtree of rules reads: `when` strings as CEL, every other string as a template. */
function collect(value: unknown, key: string, out: Set<FieldPath>): void {
  if (typeof value === 'string') {
    if (key === 'when') {
      for (const m of value.matchAll(CEL_REF)) {
        const segs = [...m[2].matchAll(CEL_SEGMENT)].map((s) => s[1] ?? s[2] ?? s[3]);
        if (m[1] === 'request.headers') add(out, 'headers', segs);
        else add(out, m[1], segs);
      }
    } else for (const ref of templatePaths(value)) add(out, ref[0], ref.slice(1));
  } else if (Array.isArray(value)) for (const v of value) collect(v, key, out);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) collect(v, k, out);
}

/** The fields each route reads, by route index (once per config generation). */
export function compileRouteInputs(routes: readonly RouteConfig[]): RouteInputs[] {
  return routes.map((route) => {
    const base = new Set<FieldPath>();
    collect({ authorize: route.authorize, approval: route.approval, rate_limit: route.rate_limit, budget: route.budget }, '', base);
    const tools = new Map<string, FieldPath[]>();
    for (const [tool, cfg] of Object.entries(route.mcp?.tools ?? {})) {
      const own = new Set(base);
      collect(cfg, '', own);
      tools.set(tool, [...own].sort());
    }
    return { fields: [...base].sort(), tools };
  });
}

/** The fields a request of `route` (and MCP `tool`) reads. */
export function fieldsFor(inputs: RouteInputs, tool: string | undefined): readonly FieldPath[] {
  return (tool !== undefined ? inputs.tools.get(tool) : undefined) ?? inputs.fields;
}

/** Where a field's value comes from in a request. */
export interface InputSource {
  body?: unknown;
  args?: unknown;
  claims?: Readonly<Record<string, unknown>>;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The values of `fields` in one request (the decision log calls this per record). */
export function captureInputs(fields: readonly FieldPath[], src: InputSource): RecordedInputs {
  if (fields.length === 0) return {};
  let input: Record<FieldPath, unknown> | undefined;
  let missing: FieldPath[] | undefined;
  for (const f of fields) {
    const dot = f.indexOf('.');
    const root = f.slice(0, dot);
    let value: unknown;
    if (root === 'headers') value = src.headers[f.slice(dot + 1)];
    else value = lookup({ body: src.body, args: src.args, claims: src.claims } as never, f.split('.'));
    if (value === undefined || tooLong(value)) {
      (missing ??= []).push(f);
      continue;
    }
    (input ??= {})[f] = value;
  }
  return { ...(input ? { input } : {}), ...(missing ? { input_missing: missing } : {}) };
}

/**
 * Rebuild nested values from recorded fields: `{"body.a.b": 1}` → `{a: {b: 1}}`
 * under `body`. Used by replay to hand the pipeline a body, arguments, claims
 * and headers equivalent (for the rules) to the original request.
 */
export function rebuildInputs(input: Readonly<Record<FieldPath, unknown>> | undefined): {
  body?: Record<string, unknown>;
  args?: Record<string, unknown>;
  claims: Record<string, unknown>;
  headers: Record<string, string>;
} {
  const out: { body?: Record<string, unknown>; args?: Record<string, unknown>; claims: Record<string, unknown>; headers: Record<string, string> } = {
    claims: {},
    headers: {},
  };
  for (const [f, value] of Object.entries(input ?? {})) {
    const parts = f.split('.');
    const root = parts[0];
    if (root === 'headers') {
      if (typeof value === 'string') out.headers[parts.slice(1).join('.')] = value;
      continue;
    }
    if (root !== 'body' && root !== 'args' && root !== 'claims') continue;
    let node: Record<string, unknown> = root === 'claims' ? out.claims : (out[root] ??= {});
    for (let i = 1; i < parts.length - 1; i++) {
      const k = parts[i];
      const next = Object.prototype.hasOwnProperty.call(node, k) ? node[k] : undefined;
      if (next === null || typeof next !== 'object') define(node, k, {});
      node = node[k] as Record<string, unknown>;
    }
    define(node, parts[parts.length - 1], value);
  }
  return out;
}

/** An own property even for `__proto__` (recorded field names come from a file). */
function define(node: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
}
