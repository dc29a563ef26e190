/**
 * The one policy-template engine: `{name}` templates of authorization checks,
 * MCP tool rules, limit keys, approval messages and notifier addresses.
 * Templates are compiled once at load; rendering an OpenFGA id refuses any
 * value that would change the id's meaning, rendering text for a person
 * (`renderMessage`) never fails.
 */

import { WardenError } from '../core/errors.js';

/** Variables a template can reference (`{agent}`, `{path.owner}`, `{args.a.b}` ...). */
export interface TemplateVars {
  agent?: string | null;
  user?: string | null;
  tool?: string | null;
  claims?: Record<string, unknown>;
  path?: Record<string, string>;
  query?: Record<string, string | string[]>;
  body?: unknown;
  args?: unknown;
  /** (`query` is carried for stored requests; templates can name only method and path.) */
  request?: { method: string; path: string; query?: string };
}

/** A `{ref}` part of a template: the path (`['body', 'a']`) and its text as written (`body.a`). */
export interface TemplateRef {
  ref: string[];
  raw: string;
}

type Part = { literal: string } | TemplateRef;

/** A compiled template. */
export interface Template {
  readonly source: string;
  /** True when the template is exactly one `{ref}` (its value keeps its JSON type in `context:`). */
  readonly single: boolean;
  readonly refs: readonly string[];
  readonly parts: readonly Part[];
}

const ROOTS = new Set(['agent', 'user', 'tool', 'claims', 'path', 'query', 'body', 'args', 'request']);
const REF = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

/** Why a template does not compile. */
export type TemplateSyntaxReason = 'unclosed' | 'invalid_reference' | 'unknown_variable' | 'no_fields' | 'stray_brace';

/** A template that does not compile; `message` is readable, `reason` and `ref` are for callers that word it their own way. */
export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    readonly reason: TemplateSyntaxReason,
    readonly ref?: string,
  ) {
    super(message);
    this.name = 'TemplateSyntaxError';
  }
}

/** Compile `source`; throws TemplateSyntaxError with a readable message when invalid. */
export function compileTemplate(source: string): Template {
  const parts: Part[] = [];
  const refs: string[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{', i);
    if (open < 0) {
      parts.push({ literal: source.slice(i) });
      break;
    }
    if (open > i) parts.push({ literal: source.slice(i, open) });
    const close = source.indexOf('}', open);
    if (close < 0) throw new TemplateSyntaxError(`unclosed "{" in template ${JSON.stringify(source)}`, 'unclosed');
    const raw = source.slice(open + 1, close).trim();
    if (!REF.test(raw)) throw new TemplateSyntaxError(`invalid reference {${raw}} in template ${JSON.stringify(source)}`, 'invalid_reference', raw);
    const ref = raw.split('.');
    if (!ROOTS.has(ref[0])) {
      throw new TemplateSyntaxError(
        `unknown variable {${raw}} (use agent, user, tool, claims.*, path.*, query.*, body.*, args.*, request.method, request.path)`,
        'unknown_variable',
        raw,
      );
    }
    if (ref[0] === 'request' && !(ref.length === 2 && (ref[1] === 'method' || ref[1] === 'path'))) {
      throw new TemplateSyntaxError(`unknown variable {${raw}} (request.method or request.path)`, 'unknown_variable', raw);
    }
    if ((ref[0] === 'agent' || ref[0] === 'user' || ref[0] === 'tool') && ref.length > 1) {
      throw new TemplateSyntaxError(`{${ref[0]}} has no fields`, 'no_fields', raw);
    }
    parts.push({ ref, raw });
    refs.push(raw);
    i = close + 1;
  }
  if (source.includes('}') && refs.length === 0 && !source.includes('{')) {
    throw new TemplateSyntaxError(`stray "}" in template ${JSON.stringify(source)}`, 'stray_brace');
  }
  const single = parts.length === 1 && 'ref' in parts[0];
  return { source, single, refs, parts };
}

/** Resolve a reference; undefined when absent. */
export function lookup(vars: TemplateVars, ref: readonly string[]): unknown {
  let value: unknown = (vars as Record<string, unknown>)[ref[0]];
  for (let i = 1; i < ref.length; i++) {
    if (value === null || typeof value !== 'object') return undefined;
    // Own properties only: never walk into prototypes (`{body.__proto__}`).
    if (!Object.prototype.hasOwnProperty.call(value, ref[i])) return undefined;
    value = (value as Record<string, unknown>)[ref[i]];
  }
  return value;
}

/** The text of a string, finite number or boolean; undefined for any other value. */
export function scalarText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') return String(value);
  return undefined;
}

function scalar(value: unknown, raw: string): string {
  const text = scalarText(value);
  if (text !== undefined) return text;
  if (Array.isArray(value)) throw new TemplateRefused(raw, 'has several values');
  if (value === undefined || value === null) throw new TemplateRefused(raw, 'is missing');
  throw new TemplateRefused(raw, 'is not a scalar');
}

/** A template value that cannot be used; the request is denied, the check never built. */
export class TemplateRefused extends WardenError {
  constructor(
    readonly ref: string,
    why: string,
  ) {
    super('forbidden', `template value {${ref}} ${why}`, { reason: 'template_refused' });
  }
}

// '#' and ':' change what an OpenFGA id means, '*' makes it a wildcard (`user:*`);
// whitespace and controls are never valid in ids.
const UNSAFE_ID = /[#:*\s\u0000-\u001f\u007f\u0085\u2028\u2029]/u;

/**
 * The one render loop: literal parts as they stand, each reference's value
 * (looked up in `vars`) as `text` words it. Each render kind below differs
 * only in its `text`.
 */
export function renderWith(t: Template, vars: TemplateVars, text: (value: unknown, part: TemplateRef) => string): string {
  let out = '';
  for (const p of t.parts) out += 'literal' in p ? p.literal : text(lookup(vars, p.ref), p);
  return out;
}

/**
 * `renderWith` compiled once into a closure, for templates rendered on every
 * request (limit keys): the parts are laid out at compile time, and a
 * one-level reference (`{agent}`, `{user}`) reads its variable directly.
 * Renders exactly what `renderWith(t, vars, text)` renders.
 */
export function compileRender(t: Template, text: (value: unknown, part: TemplateRef) => string): (vars: TemplateVars) => string {
  const steps = t.parts.map((p): ((vars: TemplateVars) => string) => {
    if ('literal' in p) {
      const literal = p.literal;
      return () => literal;
    }
    if (p.ref.length === 1) {
      const name = p.ref[0] as keyof TemplateVars;
      return (vars) => text(vars[name], p);
    }
    return (vars) => text(lookup(vars, p.ref), p);
  });
  if (steps.length === 0) return () => '';
  if (steps.length === 1) return steps[0];
  if (steps.length === 2) {
    const [a, b] = steps;
    return (vars) => a(vars) + b(vars);
  }
  if (steps.length === 3) {
    const [a, b, c] = steps;
    return (vars) => a(vars) + b(vars) + c(vars);
  }
  return (vars) => {
    let out = '';
    for (const step of steps) out += step(vars);
    return out;
  };
}

const scalarPart = (v: unknown, p: TemplateRef): string => scalar(v, p.raw);

/** Render as text (approval messages, addresses): any scalar value, no id rules. */
export function renderText(t: Template, vars: TemplateVars): string {
  return renderWith(t, vars, scalarPart);
}

const idPart = (v: unknown, p: TemplateRef): string => {
  const value = scalar(v, p.raw);
  if (value.length === 0) throw new TemplateRefused(p.raw, 'is empty');
  if (value.length > 256) throw new TemplateRefused(p.raw, 'is too long');
  if (UNSAFE_ID.test(value)) throw new TemplateRefused(p.raw, 'contains a character that would change the id');
  return value;
};

/**
 * Render an OpenFGA `user` or `object`. Literal parts may use any OpenFGA syntax
 * (`group:eng#member`, `user:*`); substituted values must be plain, non-empty ids.
 */
export function renderId(t: Template, vars: TemplateVars): string {
  return renderWith(t, vars, idPart);
}

/** Render a `context:` value: a single `{ref}` keeps its JSON type; otherwise text. */
export function renderValue(t: Template, vars: TemplateVars): unknown {
  if (t.single) {
    const p = t.parts[0] as TemplateRef;
    const v = lookup(vars, p.ref);
    if (v === undefined) throw new TemplateRefused(p.raw, 'is missing');
    return v;
  }
  return renderText(t, vars);
}

const messagePart = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

/**
 * Render text for a person (approval messages, notification addresses,
 * subjects): a missing value renders empty and an object as its JSON, so what
 * is shown never fails to render. Compiles `source` on each call (these render
 * once per approval, not per request).
 */
export function renderMessage(source: string, vars: TemplateVars): string {
  return renderWith(compileTemplate(source), vars, messagePart);
}

/** The variable paths a template reads (`{body.a.b}` → ['body', 'a', 'b']); none when it does not compile. */
export function templatePaths(source: string): string[][] {
  try {
    return compileTemplate(source).parts.flatMap((p) => ('ref' in p ? [[...p.ref]] : []));
  } catch {
    return [];
  }
}

/**
 * `renderId` compiled once into a closure (`compileRender` with the id rules),
 * for the checks rendered on every request: renders and refuses exactly what
 * `renderId(t, vars)` does.
 */
export function compileRenderId(t: Template): (vars: TemplateVars) => string {
  return compileRender(t, idPart);
}
