/**
 * Query parameters a policy reads must mean one thing to Warden and to every
 * upstream framework. Parsers disagree on repeated keys (first or last wins,
 * or an array), on `;` as a separator, on `doc[]`/`doc[x]` as array syntax,
 * on letter case and on `.`/space in names (PHP turns them into `_`). A route
 * whose templates or `when` rules read a query parameter therefore refuses a
 * query where that parameter appears more than once under any of these
 * readings (#12 A.5). Refusing is safer than re-serializing: a re-serialized
 * `doc=1` still loses to an upstream that reads `doc[]` as the same name.
 */

import { WardenError } from '../core/errors.js';

/** Which query parameters a route reads: a set of names, every parameter, or none. */
export type QueryReads = ReadonlySet<string> | 'all' | null;

// `{query.name}` in a template, `request.query.name` / `request.query["name"]` in CEL.
const TEMPLATE_REF = /\{\s*query\.([A-Za-z0-9_-]+)/g;
const CEL_DOT = /\brequest\s*\.\s*query\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g;
const CEL_INDEX = /\brequest\s*\.\s*query\s*\[\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\]/g;

/**
 * The query parameters read by these policy strings (templates and CEL). A
 * reference to the whole query (`{query}`, `request.query` used other than with
 * a literal name) means every parameter is read.
 */
export function queryReadsOf(sources: readonly string[]): QueryReads {
  const names = new Set<string>();
  let all = false;
  for (const text of sources) {
    for (const m of text.matchAll(TEMPLATE_REF)) names.add(m[1]);
    for (const m of text.matchAll(CEL_DOT)) names.add(m[1]);
    for (const m of text.matchAll(CEL_INDEX)) names.add(m[1] ?? m[2]);
    // Whatever is left after removing the literal-name forms reads the query as a whole.
    const rest = text.replace(TEMPLATE_REF, '').replace(CEL_DOT, '').replace(CEL_INDEX, '');
    if (/\{\s*query\s*\}/.test(rest) || /\brequest\s*\.\s*query\b/.test(rest) || /\bquery\s*\[/.test(rest)) all = true;
  }
  if (all) return 'all';
  return names.size > 0 ? names : null;
}

/** How the most lenient framework reads a parameter name: lower case, `[…]` suffix and `.`/space folded. */
export function looseName(name: string): string {
  const bracket = name.indexOf('[');
  const base = bracket >= 0 ? name.slice(0, bracket) : name;
  return base.toLowerCase().replace(/[. ]/g, '_');
}

const ambiguous = (name: string) =>
  new WardenError('bad_request', `query parameter ${JSON.stringify(name)} appears more than once or in an ambiguous form`, { reason: 'query_ambiguous' });

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw new WardenError('bad_request', 'invalid percent-encoding in query', { reason: 'query_ambiguous' });
  }
}

/**
 * Throw `bad_request` when a parameter the route reads appears more than once
 * in `query` (split on `&` and `;`), or in a form another parser would fold
 * into it (`doc[]`, `DOC`, `do.c` for `do_c`).
 */
export function checkQuery(query: string, reads: QueryReads): void {
  if (reads === null || query === '') return;
  const watched = reads === 'all' ? null : new Set([...reads].map(looseName));
  const seen = new Set<string>();
  for (const piece of query.split(/[&;]/)) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = decodeName(eq < 0 ? piece : piece.slice(0, eq));
    const loose = looseName(name);
    if (watched !== null && !watched.has(loose)) continue;
    if (seen.has(loose)) throw ambiguous(name);
    seen.add(loose);
    // Once is fine only in the exact form the template reads.
    if (watched !== null && !(reads as ReadonlySet<string>).has(name)) throw ambiguous(name);
    if (watched === null && name !== loose && (name.includes('[') || name.includes(';'))) throw ambiguous(name);
  }
}
