/**
 * Per-route MCP tool rules compiled once per config generation: which rule a
 * tool name follows, and the checks `tools/list` can evaluate before any
 * arguments exist (a check whose templates reference `{args.*}` is deferred to
 * `tools/call`).
 */

import type { AuthorizeConfig, CheckConfig, McpConfig, McpToolConfig, RouteConfig } from '../config/schema.js';
import type { CheckRequest } from '../authz/authorizer.js';
import { compileTemplate, renderId, renderValue, type Template, type TemplateVars } from '../templates/template.js';

/** A check ready to render at list time, or `deferred` when it needs `{args.*}`. */
export type ListCheck =
  | { deferred: true }
  | {
      deferred: false;
      user: Template;
      relation: string;
      object: Template;
      context?: Array<[string, { template: Template } | { literal: unknown }]>;
      contextualTuples?: Array<{ user: Template; relation: string; object: Template }>;
    };

/** A tool's rule as compiled. */
export interface CompiledTool {
  readonly name: string;
  /** True for a tool named in `mcp.tools`; false for the empty rule `other_tools: allow` gives any other name. */
  readonly configured: boolean;
  readonly config: McpToolConfig;
  readonly listMode: 'all' | 'any';
  readonly listChecks: readonly ListCheck[];
}

/** A route's MCP settings as compiled. */
export interface CompiledMcpRoute {
  readonly routeName: string;
  readonly routeIndex: number;
  readonly config: McpConfig;
  /** The rule for `name`: a tool's own rule, an empty rule under `other_tools: allow`, or null (denied). */
  ruleFor(name: string): CompiledTool | null;
}

const usesArgs = (t: Template) => t.refs.some((r) => r === 'args' || r.startsWith('args.'));

function compileCheck(check: CheckConfig): ListCheck {
  const templates: Template[] = [];
  const user = compileTemplate(check.user);
  const object = compileTemplate(check.object);
  templates.push(user, object);
  const context: Array<[string, { template: Template } | { literal: unknown }]> = [];
  for (const [k, v] of Object.entries(check.context ?? {})) {
    if (typeof v === 'string') {
      const t = compileTemplate(v);
      templates.push(t);
      context.push([k, { template: t }]);
    } else context.push([k, { literal: v }]);
  }
  const contextualTuples = (check.contextual_tuples ?? []).map((ct) => {
    const u = compileTemplate(ct.user);
    const o = compileTemplate(ct.object);
    templates.push(u, o);
    return { user: u, relation: ct.relation, object: o };
  });
  if (templates.some(usesArgs)) return { deferred: true };
  return {
    deferred: false,
    user,
    relation: check.relation,
    object,
    context: check.context ? context : undefined,
    contextualTuples: check.contextual_tuples ? contextualTuples : undefined,
  };
}

function compileTool(name: string, config: McpToolConfig): CompiledTool {
  const authorize: AuthorizeConfig = config.authorize ?? { mode: 'all', checks: [] };
  return { name, configured: true, config, listMode: authorize.mode, listChecks: authorize.checks.map(compileCheck) };
}

/** Compile a route's `mcp:` block; throws a plain Error naming the tool when a template is invalid. */
export function compileMcpRoute(route: RouteConfig, routeIndex: number): CompiledMcpRoute {
  const config = route.mcp;
  if (!config) throw new Error(`route ${route.name} has no mcp block`);
  // A Map, not the parsed object: a tool called "constructor" must not find Object.prototype.
  const tools = new Map<string, CompiledTool>();
  for (const [name, toolConfig] of Object.entries(config.tools)) {
    try {
      tools.set(name, compileTool(name, toolConfig));
    } catch (err) {
      throw new Error(`routes[${routeIndex}].mcp.tools.${name}: ${(err as Error).message}`);
    }
  }
  const allowOthers = config.other_tools === 'allow';
  const others = new Map<string, CompiledTool>();
  return {
    routeName: route.name,
    routeIndex,
    config,
    ruleFor(name) {
      const own = tools.get(name);
      if (own) return own;
      if (!allowOthers) return null;
      let rule = others.get(name);
      if (!rule) {
        rule = { name, configured: false, config: {}, listMode: 'all', listChecks: [] };
        // Bounded: only a few distinct names are worth caching.
        if (others.size < 256) others.set(name, rule);
      }
      return rule;
    },
  };
}

/** Render a list-time check for `tool` (throws TemplateRefused when a value cannot be used). */
export function renderListCheck(check: Exclude<ListCheck, { deferred: true }>, vars: TemplateVars): CheckRequest {
  const request: CheckRequest = { user: renderId(check.user, vars), relation: check.relation, object: renderId(check.object, vars) };
  if (check.context) {
    const context: Record<string, unknown> = {};
    for (const [k, v] of check.context) {
      context[k] = 'template' in v ? renderValue(v.template, vars) : v.literal;
    }
    request.context = context;
  }
  if (check.contextualTuples) {
    request.contextualTuples = check.contextualTuples.map((t) => ({ user: renderId(t.user, vars), relation: t.relation, object: renderId(t.object, vars) }));
  }
  return request;
}
