/**
 * Text templates for approval messages and notification addresses
 * (`{agent}`, `{path.owner}`, `{body.a.b}`, …). Rendered only from the stored
 * request, so what the approver reads is what will be forwarded. A local
 * renderer because approvals render plain text (not OpenFGA ids, which the
 * shared renderer guards differently).
 */

/** Roots a template may name. */
export const TEMPLATE_ROOTS = ['agent', 'user', 'path', 'query', 'body', 'tool', 'args', 'request', 'claims'] as const;

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}/g;

/** Values a template can read. */
export type TemplateVars = Record<string, unknown>;

/** Look up a dotted name (`body.a.b`) in `vars`; undefined when any step is missing. */
export function lookup(vars: TemplateVars, name: string): unknown {
  let cur: unknown = vars;
  for (const part of name.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Render `template`; missing values become '' and objects their JSON. */
export function renderText(template: string, vars: TemplateVars): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = lookup(vars, name);
    if (v === undefined || v === null) return '';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

/** Problems with a template (unknown roots); empty when it is fine. */
export function templateProblems(template: string): string[] {
  const problems: string[] = [];
  for (const m of template.matchAll(PLACEHOLDER)) {
    const root = m[1].split('.')[0];
    if (!(TEMPLATE_ROOTS as readonly string[]).includes(root)) problems.push(`unknown template variable {${m[1]}}`);
  }
  return problems;
}
