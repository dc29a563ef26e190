/**
 * Per-route (and per-MCP-tool) assertion settings, compiled once per config
 * generation: which header carries the assertion, its audience, the claims
 * mapped from the incoming token, and whether the checks are attached.
 */

import type { RouteAssertionConfig, RouteConfig } from '../../config/schema.js';

/** Default header of the assertion (DESIGN.md contract). */
export const DEFAULT_ASSERTION_HEADER = 'Warden-Identity';

export interface RouteAssertion {
  /** Header name as configured (sent in this case). */
  readonly header: string;
  /** Lower-case header name (stripped from the agent's request and from responses). */
  readonly lower: string;
  /** True when the assertion replaces `Authorization` (`Bearer <assertion>`). */
  readonly authorization: boolean;
  readonly audience: string;
  readonly route: string;
  readonly mapped: ReadonlyArray<readonly [string, string]>;
  readonly authz: boolean;
  /** Distinguishes settings in the assertion cache (route, or route and tool). */
  readonly slot: number;
}

/** The claims allow-list as [assertion claim, token claim] pairs. */
export function claimPairs(claims: readonly string[] | Readonly<Record<string, string>> | undefined): Array<readonly [string, string]> {
  if (!claims) return [];
  if (Array.isArray(claims)) return claims.map((c) => [c, c] as const);
  return Object.entries(claims as Record<string, string>).map(([to, from]) => [to, from] as const);
}

function compile(config: RouteAssertionConfig | undefined, route: RouteConfig, slot: number): RouteAssertion | null {
  if (config === undefined || config === false) return null;
  const o = config === true ? undefined : config;
  const header = o?.header ?? DEFAULT_ASSERTION_HEADER;
  return Object.freeze({
    header,
    lower: header.toLowerCase(),
    authorization: header.toLowerCase() === 'authorization',
    audience: o?.audience ?? new URL(route.upstream.url).origin,
    route: route.name,
    mapped: Object.freeze(claimPairs(o?.claims)),
    authz: o?.authz ?? false,
    slot,
  });
}

/** Compiled settings of every route, and of MCP tools that say their own `assertion:`. */
export interface AssertionPlan {
  /** Settings for a request on route `index` (calling `tool` on an MCP route), or null for none. */
  settingsFor(index: number, tool?: string): RouteAssertion | null;
  /**
   * Lower-case names of every header an assertion may be sent in on route
   * `index` (its own and its tools'): on every request of the route, whichever
   * tool it calls, these are never taken from the agent nor shown to it.
   */
  headersOf(index: number): ReadonlySet<string> | undefined;
  /** True when any route or tool sends assertions. */
  readonly used: boolean;
}

export function compileAssertionPlan(routes: readonly RouteConfig[]): AssertionPlan {
  let slot = 0;
  const byRoute: Array<RouteAssertion | null> = [];
  const byTool: Array<Map<string, RouteAssertion | null> | undefined> = [];
  const headers: Array<ReadonlySet<string> | undefined> = [];
  let used = false;
  routes.forEach((route, i) => {
    const own = compile(route.assertion, route, slot++);
    byRoute[i] = own;
    if (own) used = true;
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {})) {
      if (rule.assertion === undefined) continue;
      let tools = byTool[i];
      if (!tools) byTool[i] = tools = new Map();
      const compiled = compile(rule.assertion, route, slot++);
      tools.set(tool, compiled);
      if (compiled) used = true;
    }
    const names = new Set<string>();
    if (own) names.add(own.lower);
    for (const t of byTool[i]?.values() ?? []) if (t) names.add(t.lower);
    if (names.size) headers[i] = names;
  });
  return {
    used,
    headersOf: (index) => headers[index],
    settingsFor(index, tool) {
      if (tool !== undefined) {
        const t = byTool[index];
        if (t?.has(tool)) return t.get(tool) ?? null;
      }
      return byRoute[index] ?? null;
    },
  };
}
