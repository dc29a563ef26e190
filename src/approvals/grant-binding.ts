/**
 * What a time-boxed grant binds. An approver who allows "Pay 60 to carol"
 * again for ten minutes agreed to the values the rule read to hold the request
 * (`when`) and the values its message and approvers showed, not to any request
 * on the same path (#12 A.4). The binding is a digest of those values; a later
 * request reuses the grant only when the same rule selects it and every bound
 * value is equal, so anything the approver did not see asks again.
 */

import type { ApprovalRuleConfig } from '../config/schema.js';
import { canonicalJson, sha256Hex } from '../core/canonical-json.js';
import type { CelVars } from './rules.js';
import { templatePaths, type TemplateVars } from '../templates/template.js';

const CEL_ROOTS = new Set(['request', 'body', 'path', 'claims', 'agent', 'user', 'tool', 'args']);
const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * The variable paths a CEL expression reads, conservatively: every occurrence
 * of a root name (even inside a string literal, or shadowed by a macro
 * variable: binding more is safe) followed by its longest `.field` chain. A
 * method call (`body.items.exists(…)`) or an index (`body["a"]`) ends the
 * chain, so the whole value before it is bound.
 */
export function celReadPaths(expression: string): string[][] {
  const out: string[][] = [];
  const src = expression;
  for (let i = 0; i < src.length;) {
    IDENT.lastIndex = i;
    const m = IDENT.exec(src);
    if (!m || m.index !== i) {
      i++;
      continue;
    }
    const word = m[0];
    const before = i > 0 ? src[i - 1] : '';
    i += word.length;
    // A field name (`x.body`) or the tail of a longer identifier is not a root.
    if (!CEL_ROOTS.has(word) || before === '.' || /[A-Za-z0-9_]/.test(before)) continue;
    const path = [word];
    for (;;) {
      let j = i;
      while (src[j] === ' ' || src[j] === '\t' || src[j] === '\n') j++;
      if (src[j] !== '.') break;
      j++;
      while (src[j] === ' ' || src[j] === '\t' || src[j] === '\n') j++;
      IDENT.lastIndex = j;
      const f = IDENT.exec(src);
      if (!f || f.index !== j) break;
      let k = j + f[0].length;
      while (src[k] === ' ' || src[k] === '\t' || src[k] === '\n') k++;
      if (src[k] === '(') break; // a method: what is bound is the receiver
      path.push(f[0]);
      i = j + f[0].length;
    }
    out.push(path);
  }
  return out;
}

function valueAt(vars: unknown, path: readonly string[]): unknown {
  let cur: unknown = vars;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, p)) return { absent: true };
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur === undefined ? { absent: true } : cur;
}

/**
 * The binding digest of a request under `rule` (found at `source`): the rule
 * itself, the values its `when` read from the CEL variables, the values
 * its message and approvers showed from the stored request, and `bound`: what
 * else the approver was shown (ApprovalEntry.bound).
 */
export function grantBinding(source: string, rule: ApprovalRuleConfig, cel: CelVars, shown: TemplateVars, bound?: unknown): string {
  const read = rule.when !== undefined ? celReadPaths(rule.when).map((p) => [p.join('.'), valueAt(cel, p)]) : [];
  const texts = [rule.message ?? '', rule.approvers?.object ?? ''];
  const seen = texts.flatMap(templatePaths).map((p) => [p.join('.'), valueAt(shown, p)]);
  // Values shown outside the rule's own text (ApprovalEntry.bound); a rule without them digests as before.
  const parts: unknown[] = ['warden-grant-binding-v1', source, rule.when ?? null, read, seen];
  if (bound !== undefined) parts.push(bound);
  return sha256Hex(canonicalJson(parts));
}

/** The names of the values a grant under `rule` binds, for the review page (`body.amount`, `request.method`, …). */
export function grantBoundNames(rule: ApprovalRuleConfig): string[] {
  const paths = [...(rule.when !== undefined ? celReadPaths(rule.when) : []), ...[rule.message ?? '', rule.approvers?.object ?? ''].flatMap(templatePaths)];
  return [...new Set(paths.map((p) => p.join('.')))].sort();
}
