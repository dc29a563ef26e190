/**
 * Problems in a gateway.yaml that deserve a suggestion rather than a bare
 * "invalid": misspelled keys, `{x}` braces where a route pattern wants `:x`,
 * unknown or lower-case HTTP methods, `{path.x}` naming no parameter of the
 * route. They run on the raw document, before and independently of the
 * schema, so `warden validate` reports them together with everything else.
 */

import type { ConfigIssue } from './issues.js';

/** Methods a route may name (RFC 9110, PATCH of RFC 5789, and WebDAV's). */
export const HTTP_METHODS = [
  'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH',
] as const; // prettier-ignore
const METHODS = new Set<string>(HTTP_METHODS);

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest of `candidates` to `word`, when close enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const c of candidates) {
    const distance = c.toLowerCase() === lower ? 0 : editDistance(lower, c.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [c, distance];
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Pattern parameter names (`:name`) of a match path. */
function patternParams(path: string): Set<string> {
  const out = new Set<string>();
  for (const m of path.matchAll(/(?:^|\/):([A-Za-z_][A-Za-z0-9_]*)/g)) out.add(m[1]);
  return out;
}

/** Every `{path.x}` in the strings below `value`, with where it was found. */
function pathRefs(value: unknown, at: string, out: Array<{ name: string; at: string }>): void {
  if (typeof value === 'string') {
    for (const m of value.matchAll(/\{\s*path\.([A-Za-z0-9_-]+)\s*\}/g)) out.push({ name: m[1], at });
  } else if (Array.isArray(value)) value.forEach((v, i) => pathRefs(v, `${at}[${i}]`, out));
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) pathRefs(v, at ? `${at}.${k}` : k, out);
}

/** Route problems found on the raw (substituted) document. */
export function routeHints(raw: Raw): Array<Omit<ConfigIssue, 'line'>> {
  const issues: Array<Omit<ConfigIssue, 'line'>> = [];
  if (!Array.isArray(raw.routes)) return issues;
  raw.routes.forEach((route: unknown, i: number) => {
    if (!isObject(route)) return;
    const at = `routes[${i}]`;
    const match = isObject(route.match) ? route.match : undefined;
    const pattern = typeof match?.path === 'string' ? match.path : undefined;
    if (pattern !== undefined) {
      for (const m of pattern.matchAll(/\{([^{}/]*)\}/g)) {
        const name = m[1].trim();
        issues.push({
          path: `${at}.match.path`,
          message: `"{${m[1]}}" is not a path parameter: route patterns write parameters as ":name"${/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? ` — did you mean ":${name}"?` : ''}`,
        });
      }
    }
    if (Array.isArray(match?.methods)) {
      match.methods.forEach((method: unknown, j: number) => {
        if (typeof method !== 'string') return;
        if (METHODS.has(method)) return;
        const upper = method.toUpperCase();
        const suggestion = METHODS.has(upper) ? upper : closest(upper, METHODS);
        const what = METHODS.has(upper) ? `methods are upper case` : `unknown HTTP method "${method}"`;
        issues.push({ path: `${at}.match.methods[${j}]`, message: `${what}${suggestion ? ` — did you mean ${suggestion}?` : ''}` });
      });
    }
    if (pattern !== undefined) {
      // A "{x}" already reported above counts as the parameter it was meant to be.
      const params = new Set([...patternParams(pattern), ...[...pattern.matchAll(/\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}/g)].map((m) => m[1])]);
      const refs: Array<{ name: string; at: string }> = [];
      for (const [key, value] of Object.entries(route)) if (key !== 'match' && key !== 'upstream' && key !== 'name') pathRefs(value, `${at}.${key}`, refs);
      const seen = new Set<string>();
      for (const ref of refs) {
        if (params.has(ref.name) || seen.has(`${ref.at}|${ref.name}`)) continue;
        seen.add(`${ref.at}|${ref.name}`);
        const suggestion = closest(ref.name, params);
        const available = params.size
          ? `the pattern ${JSON.stringify(pattern)} has ${[...params].map((p) => `:${p}`).join(', ')}`
          : `the pattern ${JSON.stringify(pattern)} has no parameters`;
        issues.push({
          path: ref.at,
          message: `{path.${ref.name}} names no parameter of the route: ${available}${suggestion ? ` — did you mean {path.${suggestion}}?` : ''}`,
        });
      }
    }
  });
  return issues;
}

/** The keys allowed at `path` according to the JSON Schema, for "did you mean" on unknown keys. */
export function keysAt(schema: Raw, path: ReadonlyArray<string | number>): string[] {
  const defs = (schema.$defs ?? {}) as Record<string, Raw>;
  const resolve = (n: Raw): Raw => (typeof n.$ref === 'string' ? (defs[n.$ref.replace('#/$defs/', '')] ?? {}) : n);
  let nodes: Raw[] = [schema];
  for (const seg of path) {
    const next: Raw[] = [];
    const visit = (n0: Raw) => {
      const n = resolve(n0);
      if (Array.isArray(n.anyOf)) for (const v of n.anyOf as Raw[]) visit(v);
      if (typeof seg === 'number') {
        if (isObject(n.items)) next.push(resolve(n.items));
      } else {
        const props = n.properties as Record<string, Raw> | undefined;
        if (props?.[seg]) next.push(resolve(props[seg]));
        else if (isObject(n.additionalProperties)) next.push(resolve(n.additionalProperties));
      }
    };
    for (const n of nodes) visit(n);
    nodes = next;
  }
  const keys = new Set<string>();
  const collect = (n0: Raw) => {
    const n = resolve(n0);
    if (Array.isArray(n.anyOf)) for (const v of n.anyOf as Raw[]) collect(v);
    for (const k of Object.keys((n.properties as Raw | undefined) ?? {})) keys.add(k);
  };
  for (const n of nodes) collect(n);
  return [...keys];
}

/** Settings of the decision log that only one sink reads (`path` and `url` are checked by the schema). */
const SINK_ONLY: Readonly<Record<string, 'file' | 'http'>> = {
  rotate: 'file',
  keep: 'file',
  headers: 'http',
  batch: 'http',
  flush_interval: 'http',
  timeout: 'http',
  retries: 'http',
  max_buffer: 'http',
  max_buffer_bytes: 'http',
};

/**
 * `audit.decisions` settings of a sink other than the one chosen: refused,
 * not accepted and ignored (they have defaults, so only the raw document says
 * whether they were written).
 */
export function decisionLogHints(raw: Raw): Array<Omit<ConfigIssue, 'line'>> {
  const decisions = isObject(raw.audit) && isObject(raw.audit.decisions) ? raw.audit.decisions : undefined;
  if (!decisions) return [];
  const sink = decisions.sink ?? 'file';
  if (typeof sink !== 'string') return [];
  return Object.keys(decisions)
    .filter((k) => Object.hasOwn(SINK_ONLY, k) && SINK_ONLY[k] !== sink)
    .map((k) => ({ path: `audit.decisions.${k}`, message: `${k} is for the ${SINK_ONLY[k]} sink, not ${sink}` }));
}
