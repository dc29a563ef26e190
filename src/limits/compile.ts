/**
 * Rate limits and budgets of routes and MCP tools, compiled once per config
 * generation: key templates, the amount (a constant or one `{ref}`), GCRA
 * parameters, leases. Also the config checks `warden validate` reports.
 */

import { createHash } from 'node:crypto';
import type { BudgetConfig, Config, RateLimitConfig, RouteConfig } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import { compileRender, compileTemplate, lookup, renderWith, scalarText, type Template, type TemplateRef, type TemplateVars } from '../templates/template.js';
import type { BudgetSpec, RateLimitSpec } from '../store/store.js';
import { rateLimitFieldOf, rateLimitPolicy } from './headers.js';

/** Where a limit is declared: a route, or one tool of an MCP route. */
export interface LimitSite {
  readonly route: string;
  readonly tool?: string;
  /** `route` or `route/tool`: the IETF policy name and the metric label source. */
  readonly policy: string;
  /** YAML path of the block, for messages. */
  readonly at: string;
  /** Metric labels of the site (built once). */
  readonly labels: Readonly<Record<string, string>>;
}

export interface CompiledRateLimit {
  readonly site: LimitSite;
  readonly key: Template;
  /** `renderKey(key, vars)`, compiled. */
  readonly render: (vars: TemplateVars) => string;
  /** The store key of a rendered key (remembered for the keys seen recently). */
  readonly storeKey: (rendered: string) => string;
  /** When the key names only `{agent}` and `{user}`: the store key of a request's pair, without template variables (see identityKeyOf). */
  readonly identityKey?: IdentityKey;
  /** The `RateLimit` value for `remaining` and `resetMs`. */
  readonly field: (remaining: number, resetMs: number) => string;
  readonly requests: number;
  readonly perMs: number;
  readonly spec: RateLimitSpec;
  /** The `RateLimit-Policy` value (computed once). */
  readonly policyField: string;
}

export type AmountSource = { readonly constant: number } | { readonly ref: readonly string[]; readonly raw: string };

export interface CompiledBudget {
  readonly site: LimitSite;
  readonly config: BudgetConfig;
  readonly key: Template;
  /** `renderKey(key, vars)`, compiled. */
  readonly render: (vars: TemplateVars) => string;
  /** The store key of a rendered key (remembered for the keys seen recently). */
  readonly storeKey: (rendered: string) => string;
  /** When the key names only `{agent}` and `{user}`: the store key of a request's pair, without template variables (see identityKeyOf). */
  readonly identityKey?: IdentityKey;
  readonly amount: AmountSource;
  readonly max: number;
  /** `{ max, windowMs }` for the store (built once). */
  readonly spec: BudgetSpec;
  readonly perMs: number;
  readonly over: 'approve' | 'deny';
  readonly leaseMs: number;
}

/** The limits that apply at one site. */
export interface SiteLimits {
  readonly rate?: CompiledRateLimit;
  readonly budget?: CompiledBudget;
  /** True when a key or the amount needs the request's template variables (a key of only `{agent}`/`{user}` and a constant amount do not). */
  readonly needsVars: boolean;
}

function siteLimits(rate: CompiledRateLimit | undefined, budget: CompiledBudget | undefined): SiteLimits {
  const needsVars = (rate !== undefined && !rate.identityKey) || (budget !== undefined && (!budget.identityKey || !('constant' in budget.amount)));
  return { rate, budget, needsVars };
}

export interface CompiledLimits {
  /** Route-level limits (every request on the route). */
  route(name: string): SiteLimits | undefined;
  /** Limits of one tool of an MCP route. */
  tool(route: string, tool: string): SiteLimits | undefined;
  /** True when some tool of this route has limits. */
  routeHasToolLimits(route: string): boolean;
  /** Every budget (for GET /.warden/budgets). */
  budgets(): readonly CompiledBudget[];
}

/** Where an amount may come from: places that carry JSON numbers (path and query values are text). */
const AMOUNT_ROOTS = new Set(['body', 'args', 'claims']);

/** Parse the `amount:` of a budget; throws a plain Error with the reason. */
export function compileAmount(amount: number | string): AmountSource {
  if (typeof amount === 'number') return { constant: amount };
  const trimmed = amount.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return { constant: Number(trimmed) };
  const t = compileTemplate(amount);
  if (!t.single) throw new Error('must be a number or exactly one template such as "{body.amount}" (no other text)');
  const part = t.parts[0] as { ref: string[]; raw: string };
  if (!AMOUNT_ROOTS.has(part.ref[0]) || part.ref.length < 2)
    throw new Error(`{${part.raw}} cannot hold an amount (use {body.*}, {args.*} or {claims.*}: JSON numbers)`);
  return { ref: part.ref, raw: part.raw };
}

function site(route: RouteConfig, routeIndex: number, tool?: string): LimitSite {
  const labels = Object.freeze({ route: route.name, tool: tool ?? '' });
  return tool === undefined
    ? { route: route.name, policy: route.name, at: `routes[${routeIndex}]`, labels }
    : { route: route.name, tool, policy: `${route.name}/${tool}`, at: `routes[${routeIndex}].mcp.tools.${tool}`, labels };
}

function compileRate(cfg: RateLimitConfig, where: LimitSite): CompiledRateLimit {
  const burst = cfg.burst ?? cfg.requests;
  const key = compileTemplate(cfg.key);
  const render = compileRender(key, keyPart);
  const storeKeyOf = storeKeyCache('rate', where);
  return {
    site: where,
    key,
    render,
    storeKey: storeKeyOf,
    identityKey: identityKeyOf(key, render, storeKeyOf),
    field: rateLimitFieldOf(where.policy),
    requests: cfg.requests,
    perMs: cfg.per,
    spec: { intervalMs: cfg.per / cfg.requests, burst },
    policyField: rateLimitPolicy(where.policy, cfg.requests, cfg.per),
  };
}

/** The default lease: long enough for an approval hold, the upstream's timeout and a margin. */
function defaultLease(config: Config, route: RouteConfig): number {
  return config.approvals.hold + (route.upstream.timeout ?? config.server.limits.request_timeout) + 10_000;
}

function compileBudget(cfg: BudgetConfig, where: LimitSite, leaseMs: number): CompiledBudget {
  const key = compileTemplate(cfg.key);
  const render = compileRender(key, keyPart);
  const storeKeyOf = storeKeyCache('budget', where);
  return {
    site: where,
    config: cfg,
    key,
    render,
    storeKey: storeKeyOf,
    identityKey: identityKeyOf(key, render, storeKeyOf),
    amount: compileAmount(cfg.amount),
    max: cfg.max,
    spec: { max: cfg.max, windowMs: cfg.per },
    perMs: cfg.per,
    over: cfg.over,
    leaseMs: cfg.lease ?? leaseMs,
  };
}

/** Compile every limit of the config (validated already; a template error still throws). */
export function compileLimits(config: Config): CompiledLimits {
  const routes = new Map<string, SiteLimits>();
  const tools = new Map<string, Map<string, SiteLimits>>();
  const budgets: CompiledBudget[] = [];
  config.routes.forEach((route, i) => {
    const lease = defaultLease(config, route);
    if (route.rate_limit || route.budget) {
      const where = site(route, i);
      const limits = siteLimits(
        route.rate_limit ? compileRate(route.rate_limit, where) : undefined,
        route.budget ? compileBudget(route.budget, where, lease) : undefined,
      );
      routes.set(route.name, limits);
      if (limits.budget) budgets.push(limits.budget);
    }
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {})) {
      if (!rule.rate_limit && !rule.budget) continue;
      const where = site(route, i, tool);
      const limits = siteLimits(
        rule.rate_limit ? compileRate(rule.rate_limit, where) : undefined,
        rule.budget ? compileBudget(rule.budget, where, lease) : undefined,
      );
      let byTool = tools.get(route.name);
      if (!byTool) tools.set(route.name, (byTool = new Map()));
      byTool.set(tool, limits);
      if (limits.budget) budgets.push(limits.budget);
    }
  });
  return {
    route: (name) => routes.get(name),
    tool: (route, tool) => tools.get(route)?.get(tool),
    routeHasToolLimits: (route) => tools.has(route),
    budgets: () => budgets,
  };
}

/** True when any route or tool declares a limit (the limits stage is then built). */
export function hasLimits(config: Config): boolean {
  return config.routes.some((r) => r.rate_limit || r.budget || Object.values(r.mcp?.tools ?? {}).some((t) => t.rate_limit || t.budget));
}

/** Every problem with the limits of `config`, as YAML path and message (for `warden validate`). */
export function limitsConfigIssues(config: Config): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const checkKey = (key: string, at: string) => {
    try {
      compileTemplate(key);
    } catch (err) {
      issues.push({ path: at, message: (err as Error).message });
    }
  };
  const checkBudget = (b: BudgetConfig, at: string, route: RouteConfig) => {
    checkKey(b.key, `${at}.key`);
    try {
      compileAmount(b.amount);
    } catch (err) {
      issues.push({ path: `${at}.amount`, message: (err as Error).message });
    }
    if (route.public) issues.push({ path: at, message: 'a budget needs an authenticated agent; the route is public' });
    if (b.over === 'approve' && route.public) issues.push({ path: `${at}.over`, message: 'approvals need an authenticated user' });
    if (b.lease !== undefined && b.lease < 1_000) issues.push({ path: `${at}.lease`, message: 'must be at least 1s' });
  };
  config.routes.forEach((route, i) => {
    const at = `routes[${i}]`;
    if (route.rate_limit) checkKey(route.rate_limit.key, `${at}.rate_limit.key`);
    if (route.budget) checkBudget(route.budget, `${at}.budget`, route);
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {})) {
      const tat = `${at}.mcp.tools.${tool}`;
      if (rule.rate_limit) checkKey(rule.rate_limit.key, `${tat}.rate_limit.key`);
      if (rule.budget) checkBudget(rule.budget, `${tat}.budget`, route);
    }
  });
  return issues;
}

const EMPTY_IDENTITY = new Set(['agent', 'user']);

/**
 * Render a limit key. `{agent}`/`{user}` of a request without them (a public
 * route, a machine token) are empty; any other missing or non-scalar value
 * refuses the request (400): a request that cannot be attributed is not let
 * through uncounted.
 */
export function renderKey(t: Template, vars: TemplateVars): string {
  return renderWith(t, vars, keyPart);
}

const keyPart = (v: unknown, p: TemplateRef): string => {
  if ((v === null || v === undefined) && EMPTY_IDENTITY.has(p.ref[0])) return '';
  const text = scalarText(v);
  if (text === undefined) throw new WardenError('bad_request', `the limit key needs {${p.raw}} as a single value`, { reason: 'limit_key_missing' });
  return text;
};

/** The amount one request spends; 400 unless it is a finite, non-negative JSON number. */
export function resolveAmount(source: AmountSource, vars: TemplateVars): number {
  if ('constant' in source) return source.constant;
  const v = lookup(vars, source.ref);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new WardenError('bad_request', `the budget amount {${source.raw}} must be a finite, non-negative number`, { reason: 'budget_amount_invalid' });
  }
  return v;
}

/** The store key of one rendered limit key: per site, hashed (any text, fixed length). */
export function storeKey(kind: 'rate' | 'budget', where: LimitSite, rendered: string): string {
  const digest = createHash('sha256').update(where.policy).update('\n').update(rendered).digest('base64url').slice(0, 32);
  return `limit:${kind}:${digest}`;
}

/** `storeKey` remembered per site for the keys seen recently (bounded: cleared when full). */
export function storeKeyCache(kind: 'rate' | 'budget', where: LimitSite, size = 4096): (rendered: string) => string {
  const known = new Map<string, string>();
  return (rendered) => {
    let key = known.get(rendered);
    if (key === undefined) {
      if (known.size >= size) known.clear();
      known.set(rendered, (key = storeKey(kind, where, rendered)));
    }
    return key;
  };
}

/** The store key of a request's `{agent}` and `{user}` (null where the request has none). */
export type IdentityKey = (agent: string | null, user: string | null) => string;

/**
 * For a key made of `{agent}`, `{user}` and literal text only (the default
 * `{agent}:{user}`, a per-user `{user}`): the store key of an agent and user
 * pair, the last pair's answer kept (a request of the same caller as the one
 * before costs two comparisons; others render as usual, through `storeKey`'s
 * cache). Undefined for any other key (it needs the request's variables).
 */
export function identityKeyOf(key: Template, render: (vars: TemplateVars) => string, storeKeyOf: (rendered: string) => string): IdentityKey | undefined {
  if (!key.refs.every((r) => r === 'agent' || r === 'user')) return undefined;
  let known = false;
  let lastAgent: string | null = null;
  let lastUser: string | null = null;
  let last = '';
  return (agent, user) => {
    if (known && agent === lastAgent && user === lastUser) return last;
    const storeKeyNow = storeKeyOf(render({ agent, user } as TemplateVars));
    known = true;
    lastAgent = agent;
    lastUser = user;
    last = storeKeyNow;
    return storeKeyNow;
  };
}
