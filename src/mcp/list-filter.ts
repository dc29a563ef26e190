/**
 * `tools/list` filtering: a tool is shown only when `tools/call` could allow it
 * for this agent and user. One `batchCheck` answers every listed tool. Checks
 * that reference `{args.*}` cannot be known before a call; they count as
 * "maybe" (the tool is shown and the call decides), while a check without
 * arguments that fails hides the tool.
 */

import type { Authorizer, CheckRequest } from '../authz/authorizer.js';
import { isWardenError, WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import { TemplateRefused } from '../templates/template.js';
import { templateVars } from '../templates/request-vars.js';
import { canonicalJson } from '../core/canonical-json.js';
import { toJsonRpcError } from './errors.js';
import { answersRequest, type JsonRpcId } from './json-rpc.js';
import type { PinStatus, ToolDefinition, ToolPins } from './pinning.js';
import { renderListCheck, type CompiledMcpRoute } from './tool-rules.js';

export interface ToolFilterDeps {
  authorizer: Authorizer;
  /** Null when the route does not pin tools. */
  pins: ToolPins | null;
}

/** Why each tool was shown or hidden (for debug logs and tests). */
export type ToolVerdict = 'shown' | 'no_rule' | 'definition_changed' | 'not_pinned' | 'denied';

function isToolDefinition(v: unknown): v is ToolDefinition & Record<string, unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { name?: unknown }).name === 'string';
}

/**
 * Pin the listed tools that have a rule. Pins are permanent records keyed by
 * names the upstream chooses: a tool without a rule is hidden and refused
 * anyway, so it is not pinned, and under `other_tools: allow` the tools
 * without a rule of their own are bounded per route (see MAX_UNRULED_PINS).
 */
async function observeRuled(pins: ToolPins, route: CompiledMcpRoute, defs: readonly ToolDefinition[]): Promise<Map<string, PinStatus>> {
  const configured: ToolDefinition[] = [];
  const others: ToolDefinition[] = [];
  for (const def of defs) {
    const rule = route.ruleFor(def.name);
    if (rule) (rule.configured ? configured : others).push(def);
  }
  const [own, rest] = await Promise.all([
    configured.length > 0 ? pins.observe(route.routeName, configured) : undefined,
    others.length > 0 ? pins.observe(route.routeName, others, { bounded: true }) : undefined,
  ]);
  return new Map([...(own ?? []), ...(rest ?? [])]);
}

/** Decide which of `tools` this request's principal may see; returns the kept tools and every verdict. */
export async function filterTools(
  tools: readonly unknown[],
  state: RequestState,
  route: CompiledMcpRoute,
  deps: ToolFilterDeps,
): Promise<{ kept: unknown[]; verdicts: Map<string, ToolVerdict> }> {
  const defs = tools.filter(isToolDefinition);
  const verdicts = new Map<string, ToolVerdict>();
  const statuses: Map<string, PinStatus> | null = deps.pins && defs.length > 0 ? await observeRuled(deps.pins, route, defs) : null;

  // Per tool: a list of check slots; each is an index into `requests`, true ("maybe"), or false (refused template).
  const requests: CheckRequest[] = [];
  const indexOf = new Map<string, number>();
  const plans = new Map<ToolDefinition, { mode: 'all' | 'any'; slots: Array<number | boolean> }>();
  for (const def of defs) {
    const rule = route.ruleFor(def.name);
    if (!rule) {
      verdicts.set(def.name, 'no_rule');
      continue;
    }
    const pin = statuses?.get(def.name);
    if (statuses && pin !== 'pinned') {
      verdicts.set(def.name, pin === 'changed' ? 'definition_changed' : 'not_pinned');
      continue;
    }
    const vars = templateVars(state);
    vars.tool = def.name;
    vars.args = undefined;
    const slots: Array<number | boolean> = rule.listChecks.map((check) => {
      if (check.deferred) return true;
      let request: CheckRequest;
      try {
        request = renderListCheck(check, vars);
      } catch (err) {
        if (err instanceof TemplateRefused) return false;
        throw err;
      }
      const key = canonicalJson(request);
      let i = indexOf.get(key);
      if (i === undefined) {
        i = requests.push(request) - 1;
        indexOf.set(key, i);
      }
      return i;
    });
    plans.set(def, { mode: rule.listMode, slots });
  }

  const answers = requests.length > 0 ? await deps.authorizer.batchCheck(requests) : [];
  if (answers.length !== requests.length) throw new WardenError('authz_unavailable', 'authorizer answered a different number of checks');
  const kept: unknown[] = [];
  for (const def of defs) {
    const plan = plans.get(def);
    if (!plan) continue;
    const results = plan.slots.map((s) => (typeof s === 'number' ? answers[s] === true : s));
    // `all` of nothing allows (the route's own authorize already passed); `any` of nothing is refused by the schema.
    const allowed = plan.mode === 'all' ? results.every(Boolean) : results.some(Boolean);
    verdicts.set(def.name, allowed ? 'shown' : 'denied');
    if (allowed) kept.push(def);
  }
  return { kept, verdicts };
}

/** Rewrites tools/list responses inside JSON-RPC messages (single or batch). */
export interface ToolsListRewriter {
  /** Returns the rewritten message (or batch), or null when nothing in it is a tools/list response to filter. */
  rewrite(message: unknown): Promise<unknown | null>;
  /** False when a complete answer (a JSON body) answers none of the tools/list requests it was sent for: fail closed. */
  answersEveryList(message: unknown): boolean;
  /**
   * Whether `rewrite(message)` would return anything but null, decided
   * synchronously: an answer with nothing to filter (a tools/call result)
   * then costs no promise.
   */
  touches(message: unknown): boolean;
}

/**
 * Build a rewriter for one MCP answer. Every response whose `result` carries a
 * `tools` key is filtered (and its tools pinned), whatever its id: a hostile
 * upstream may answer a tools/list on another request's stream or under an id
 * of another type. A response that answers one of `listIds` (by the SDK's id
 * rule, see `answersRequest`) without a `tools` array cannot be filtered and is
 * replaced by an error: fail closed.
 */
export function createToolsListRewriter(listIds: ReadonlySet<JsonRpcId>, filter: (tools: readonly unknown[]) => Promise<unknown[]>): ToolsListRewriter {
  const answersList = (id: unknown) => {
    for (const listId of listIds) if (answersRequest(id, listId)) return true;
    return false;
  };
  const errorId = (id: unknown): JsonRpcId | null => (typeof id === 'string' || typeof id === 'number' ? id : null);
  const hasTools = (result: unknown) => typeof result === 'object' && result !== null && 'tools' in result;
  /** The one test of whether a message is a tools/list answer to filter (or refuse); `one` returns null exactly when this is false. */
  const touchesOne = (message: unknown): boolean => {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) return false;
    const m = message as { id?: unknown; result?: unknown };
    return 'result' in m && (hasTools(m.result) || answersList(m.id));
  };
  async function one(message: unknown): Promise<unknown | null> {
    if (!touchesOne(message)) return null;
    const m = message as { id?: unknown; result?: unknown };
    const result = m.result;
    const tools = hasTools(result) ? (result as { tools?: unknown }).tools : undefined;
    if (!Array.isArray(tools) || Array.isArray(result)) {
      // A tools/list answer without a tools array cannot be filtered: fail closed.
      return toJsonRpcError(
        new WardenError('upstream_unavailable', 'upstream tools/list answer has no tools array', { status: 502, reason: 'upstream_bad_tools' }),
        errorId(m.id),
      );
    }
    try {
      const kept = await filter(tools);
      return { ...m, result: { ...(result as Record<string, unknown>), tools: kept } };
    } catch (err) {
      const werr = isWardenError(err) ? err : new WardenError('internal', 'tools/list filtering failed', { cause: err });
      return toJsonRpcError(werr, errorId(m.id));
    }
  }
  const idOf = (m: unknown): unknown => (typeof m === 'object' && m !== null && !Array.isArray(m) ? (m as { id?: unknown }).id : undefined);
  return {
    answersEveryList(message) {
      const ids = Array.isArray(message) ? message.map(idOf) : [idOf(message)];
      for (const listId of listIds) if (!ids.some((id) => answersRequest(id, listId))) return false;
      return true;
    },
    touches(message) {
      return Array.isArray(message) ? message.some(touchesOne) : touchesOne(message);
    },
    async rewrite(message) {
      if (Array.isArray(message)) {
        const out = await Promise.all(message.map(one));
        return out.some((x) => x !== null) ? out.map((x, i) => x ?? message[i]) : null;
      }
      return one(message);
    },
  };
}
