/** The template variables of a live request (`{agent}`, `{path.x}`, `{query.x}`, …). */

import type { RequestState } from '../pipeline/context.js';
import type { TemplateVars } from './template.js';

const NO_CLAIMS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/**
 * The template variables of one request. A class rather than an object
 * literal with getters (which V8 builds slowly): `query` and `request` are
 * prototype getters, computed only when a template refers to them. Fields are
 * writable so a caller can vary `tool`/`args` (MCP tools/list filtering).
 */
class RequestVars implements TemplateVars {
  agent: string | null;
  user: string | null;
  claims: Record<string, unknown>;
  path: Record<string, string>;
  body: unknown;
  tool: string | undefined;
  args: unknown;
  readonly #state: RequestState;
  #query: Record<string, string | string[]> | undefined;

  constructor(state: RequestState) {
    const principal = state.principal;
    this.#state = state;
    this.agent = principal?.agent ?? null;
    this.user = principal?.user ?? null;
    this.claims = (principal?.claims as Record<string, unknown> | undefined) ?? NO_CLAIMS;
    this.path = state.params;
    this.body = state.json;
    this.tool = state.mcp?.tool;
    this.args = state.mcp?.args;
  }

  get query(): Record<string, string | string[]> {
    return (this.#query ??= queryObject(this.#state.query));
  }

  get request(): { method: string; path: string } {
    return { method: this.#state.method, path: this.#state.path };
  }
}

/** The template variables of a request (`query` parsed only if a template refers to it). */
export function templateVars(state: RequestState): RequestVars {
  return new RequestVars(state);
}

/** Query string to an object; repeated keys become arrays (refused as ids). */
export function queryObject(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  if (!query) return out;
  for (const [k, v] of new URLSearchParams(query)) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}
