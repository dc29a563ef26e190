/**
 * Approval rules: `when` is CEL over the request, compiled once at load (a bad
 * expression is a config error with its YAML path), evaluated per request.
 * An expression that fails at run time (a missing key, a type mismatch) counts
 * as a match: when in doubt a human decides (fail closed). Comparing values of
 * two kinds with `==`/`!=` is such a failure here (CEL itself calls it false).
 */

import { Environment } from '@marcbachmann/cel-js';
import type { ApprovalRuleConfig, RouteConfig } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import { compileTemplate, TemplateSyntaxError } from '../templates/template.js';

/** A compiled `when`: true when the rule applies to these variables. */
export type CompiledWhen = (vars: CelVars) => boolean;

/** The CEL variables of a request (DESIGN.md: `when:`). */
export interface CelVars {
  request: { method: string; path: string; query: Record<string, string>; headers: Record<string, string> };
  body: unknown;
  path: Record<string, string>;
  claims: Record<string, unknown>;
  agent: string;
  user: string | null;
  tool: string | null;
  args: unknown;
}

/** One rule of the config with where it came from. */
export interface ApprovalRuleSite {
  source: string;
  rule: ApprovalRuleConfig;
}

function celEnvironment(): Environment {
  return new Environment({ unlistedVariablesAreDyn: false, homogeneousAggregateLiterals: false })
    .registerVariable('request', 'map')
    .registerVariable('body', 'dyn')
    .registerVariable('path', 'map')
    .registerVariable('claims', 'map')
    .registerVariable('agent', 'string')
    .registerVariable('user', 'dyn')
    .registerVariable('tool', 'dyn')
    .registerVariable('args', 'dyn');
}

// Kinds a value of a rule can have besides null; numbers compare across int, uint and double.
const EQUALITY_KINDS = ['string', 'bool', 'int', 'uint', 'double', 'bytes', 'list', 'map'] as const;
const NUMERIC_KINDS: ReadonlySet<string> = new Set(['int', 'uint', 'double']);

/**
 * The environment rules are evaluated in: `celEnvironment` plus an `==` (and so
 * `!=`) for every pair of different kinds that throws. CEL calls `"true" ==
 * true` and `["delete"] == "delete"` false, so `body.permanent == true` would
 * let `{"permanent":"true"}` through to an upstream that reads it as true; as
 * an error the rule holds the request. Expressions are still checked in the
 * plain environment, so `agent == 1` stays a config error.
 */
function evaluationEnvironment(): Environment {
  const env = celEnvironment();
  EQUALITY_KINDS.forEach((a, i) => {
    for (const b of EQUALITY_KINDS.slice(i + 1)) {
      if (NUMERIC_KINDS.has(a) && NUMERIC_KINDS.has(b)) continue;
      env.registerOperator(`${a} == ${b}`, () => {
        throw new Error(`cannot compare ${a} with ${b}`);
      });
    }
  });
  return env;
}

/** Every approval rule in the routes (route rules and MCP tool rules) with its YAML path. */
export function approvalRuleSites(routes: readonly RouteConfig[]): ApprovalRuleSite[] {
  const sites: ApprovalRuleSite[] = [];
  routes.forEach((route, i) => {
    route.approval?.forEach((rule, j) => sites.push({ source: `routes[${i}].approval[${j}]`, rule }));
    for (const [tool, cfg] of Object.entries(route.mcp?.tools ?? {})) {
      cfg.approval?.forEach((rule, j) => sites.push({ source: `routes[${i}].mcp.tools.${tool}.approval[${j}]`, rule }));
    }
  });
  return sites;
}

function firstLine(message: string): string {
  return message.split('\n')[0].trim();
}

/** A compiler with its own CEL environment; compiled expressions are cached by text. */
export interface RuleCompiler {
  /** Compile or throw Error with a one-line reason. */
  compile(expression: string): CompiledWhen;
}

/** Create a compiler (one per config generation; the cache is bounded by the config's rules). */
export function createRuleCompiler(): RuleCompiler {
  const env = celEnvironment();
  const runtime = evaluationEnvironment();
  const cache = new Map<string, CompiledWhen>();
  return {
    compile(expression) {
      const hit = cache.get(expression);
      if (hit) return hit;
      let parsed: ReturnType<Environment['parse']>;
      try {
        parsed = env.parse(expression);
      } catch (err) {
        throw new Error(firstLine((err as Error).message));
      }
      const checked = parsed.check();
      if (!checked.valid) throw new Error(firstLine(checked.error?.message ?? 'invalid expression'));
      if (checked.type !== 'bool' && checked.type !== 'dyn') throw new Error(`must be a boolean expression, not ${checked.type}`);
      const evaluate = runtime.parse(expression);
      const fn: CompiledWhen = (vars) => {
        try {
          return evaluate(vars as unknown as Record<string, unknown>) !== false;
        } catch {
          return true; // fail closed: an expression that cannot be evaluated holds the request
        }
      };
      cache.set(expression, fn);
      return fn;
    },
  };
}

/** Problems with a text template of a rule (approvals word an unknown variable their own way). */
export function templateProblems(template: string): string[] {
  try {
    compileTemplate(template);
    return [];
  } catch (err) {
    if (err instanceof TemplateSyntaxError && err.reason === 'unknown_variable' && err.ref !== undefined) return [`unknown template variable {${err.ref}}`];
    return [(err as Error).message];
  }
}

/** Every problem with the approval rules of `routes`, as YAML path and message (for config validation). */
export function approvalRuleIssues(routes: readonly RouteConfig[], compiler: RuleCompiler = createRuleCompiler()): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  for (const { source, rule } of approvalRuleSites(routes)) {
    if (rule.when !== undefined) {
      try {
        compiler.compile(rule.when);
      } catch (err) {
        issues.push({ path: `${source}.when`, message: (err as Error).message });
      }
    }
    if (rule.message !== undefined) for (const p of templateProblems(rule.message)) issues.push({ path: `${source}.message`, message: p });
    if (rule.approvers) for (const p of templateProblems(rule.approvers.object)) issues.push({ path: `${source}.approvers.object`, message: p });
  }
  return issues;
}

/** Every problem with the approval rules of `routes`, each as "<YAML path>: <message>". */
export function checkApprovalRules(routes: readonly RouteConfig[], compiler: RuleCompiler = createRuleCompiler()): string[] {
  return approvalRuleIssues(routes, compiler).map((i) => `${i.path}: ${i.message}`);
}

/**
 * Compile every `when` of `routes`; throws WardenError `config_invalid` listing
 * every problem (with `extra.errors`) when any rule is invalid.
 */
export function compileApprovalRules(routes: readonly RouteConfig[]): RuleCompiler {
  const compiler = createRuleCompiler();
  const problems = checkApprovalRules(routes, compiler);
  if (problems.length > 0) {
    throw new WardenError('config_invalid', problems.join('\n'), { extra: { errors: problems } });
  }
  return compiler;
}

/** The first rule whose `when` holds (a rule without `when` always holds). */
export function selectRule<T extends { rule: ApprovalRuleConfig }>(rules: readonly T[], compiler: RuleCompiler, vars: CelVars): T | undefined {
  for (const entry of rules) {
    if (entry.rule.when === undefined) return entry;
    let when: CompiledWhen;
    try {
      when = compiler.compile(entry.rule.when);
    } catch {
      return entry; // validated at load; should it still fail, hold (fail closed)
    }
    if (when(vars)) return entry;
  }
  return undefined;
}
