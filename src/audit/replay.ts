/**
 * `warden replay`: decide every request of a decision log again under a new
 * config (through the offline evaluator, never an upstream) and report, per
 * route, the requests whose outcome would change. Records whose original
 * outcome did not come from policy (rate limits, raw-body errors, failures)
 * or whose new rules read fields the log did not record are counted as not
 * decided again, with the reason.
 */

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Principal } from '../core/principal.js';
import type { EvaluationRequest, EvaluationResult, Evaluator } from '../gateway/evaluator.js';
import { compileRouteInputs, fieldsFor, rebuildInputs } from './inputs.js';
import type { DecisionRecord } from './record.js';

export type Outcome = 'allow' | 'hold' | 'deny' | 'error';

/** The kinds of change replay reports. */
export const CHANGE_KINDS = ['allow->deny', 'deny->allow', 'new-hold', 'dropped-hold', 'code', 'error'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** `--allow route=payments,change=deny->allow`: every key given must match. */
export interface AllowFilter {
  source: string;
  route?: string[];
  change?: string[];
  code?: string[];
  tool?: string[];
}

/** Parse one `--allow` value; throws Error with a readable message. */
export function parseAllowFilter(text: string): AllowFilter {
  const filter: AllowFilter = { source: text };
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`--allow ${JSON.stringify(text)}: expected key=value[,key=value] (keys: route, change, code, tool)`);
    const key = part.slice(0, eq).trim();
    const values = part
      .slice(eq + 1)
      .split('|')
      .map((v) => v.trim())
      .filter(Boolean);
    if (!values.length) throw new Error(`--allow ${JSON.stringify(text)}: ${key} has no value`);
    if (key !== 'route' && key !== 'change' && key !== 'code' && key !== 'tool')
      throw new Error(`--allow ${JSON.stringify(text)}: unknown key ${key} (route, change, code, tool)`);
    if (key === 'change')
      for (const v of values)
        if (v !== '*' && !(CHANGE_KINDS as readonly string[]).includes(v))
          throw new Error(`--allow ${JSON.stringify(text)}: unknown change ${v} (${CHANGE_KINDS.join(', ')}, *)`);
    filter[key] = values;
  }
  return filter;
}

/** One record whose outcome changes. */
export interface ReplayExample {
  id: string;
  time: string;
  agent?: string;
  user?: string | null;
  method: string;
  path: string;
  tool?: string;
  /** `allow`, `deny forbidden (403)`, `hold (202)`. */
  was: string;
  now: string;
  /** The new route when it is not the recorded one. */
  now_route?: string;
  decided_by?: string;
  file: string;
  line: number;
}

export interface ChangeSummary {
  count: number;
  /** How many of them an --allow filter accepts. */
  allowed: number;
  examples: ReplayExample[];
}

export interface RouteSummary {
  evaluated: number;
  unchanged: number;
  changes: Partial<Record<ChangeKind, ChangeSummary>>;
}

export interface ReplayReport {
  files: string[];
  records: number;
  evaluated: number;
  unchanged: number;
  changed: number;
  /** Changes no --allow filter accepts: the run fails when this is not 0. */
  disallowed: number;
  not_evaluated: number;
  not_evaluated_reasons: Record<string, number>;
  routes: Record<string, RouteSummary>;
  ok: boolean;
}

export interface ReplayOptions {
  allow?: readonly AllowFilter[];
  /** Examples kept per route and change (default 3). */
  examples?: number;
  /** Called every `progressEvery` records. */
  progress?: (records: number) => void;
  progressEvery?: number;
}

type Judged = { outcome: Outcome; code?: string; status?: number } | { skip: string };

/** Codes that follow from traffic or raw bytes, not from the policy replay decides. */
const NOT_POLICY: Record<string, string> = {
  rate_limited: 'rate limits depend on the traffic before it (rate_limited)',
  budget_exceeded: 'budgets depend on the spending before it (budget_exceeded)',
  bad_request: 'the refusal came from the raw request bytes (bad_request)',
  payload_too_large: 'the refusal came from the raw request bytes (payload_too_large)',
  headers_too_large: 'the refusal came from the raw request bytes (headers_too_large)',
};
const NOT_POLICY_REASONS: Record<string, string> = {
  tool_not_pinned: 'MCP tool pinning state at the time (tool_not_pinned)',
  tool_definition_changed: 'MCP tool pinning state at the time (tool_definition_changed)',
  wrong_resource_audience: "the token's audience (wrong_resource_audience)",
};
const HOLD_CODES = new Set(['approval_pending', 'approval_denied', 'approval_expired', 'approval_mismatch']);
const STATUS_CODES: Record<number, string> = { 401: 'unauthenticated', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 429: 'rate_limited' };

/** What the recorded request's outcome was, in policy terms. */
export function recordedOutcome(r: DecisionRecord): Judged {
  if (r.shadow && r.shadow.outcome !== 'allow') {
    if (r.shadow.outcome === 'would_hold') return { outcome: 'hold', code: 'approval_pending', status: 202 };
    if (r.shadow.outcome === 'would_deny') return { outcome: 'deny', code: r.shadow.code };
    return { skip: `the original decision failed (${r.shadow.code ?? 'error'})` };
  }
  if (r.decision === 'pending' || r.approval) return { outcome: 'hold', code: 'approval_pending', status: 202 };
  if (r.decision === 'allow') return { outcome: 'allow' };
  const code = r.code ?? r.error ?? STATUS_CODES[r.status];
  if (r.reason && NOT_POLICY_REASONS[r.reason]) return { skip: `depends on ${NOT_POLICY_REASONS[r.reason]}` };
  if (code && NOT_POLICY[code]) return { skip: NOT_POLICY[code] };
  if (code && HOLD_CODES.has(code)) return { outcome: 'hold', code: 'approval_pending', status: 202 };
  // The policy let these through; what failed came after it.
  if (code === 'connection_required' || code === 'upstream_unavailable') return { outcome: 'allow' };
  if (r.decision === 'deny') return { outcome: 'deny', code, status: r.status };
  return { skip: `the original decision failed (${code ?? 'error'})` };
}

/** Claims a replayed principal carries whatever was recorded (they are the principal's own fields). */
const PRINCIPAL_CLAIMS = new Set(['claims.sub', 'claims.azp', 'claims.client_id', 'claims.scope', 'claims.iss', 'claims.act', 'claims.aud', 'claims.exp']);

function principalOf(r: DecisionRecord, claims: Record<string, unknown>, audiences: readonly string[]): Principal | undefined {
  if (!r.agent) return undefined;
  let act: Record<string, unknown> | undefined;
  for (const sub of [...(r.act ?? [])].reverse()) act = { sub, ...(act ? { act } : {}) };
  const all: Record<string, unknown> = {
    ...claims,
    azp: r.agent,
    sub: r.user ?? r.agent,
    ...(r.scopes?.length ? { scope: r.scopes.join(' ') } : {}),
    ...(r.issuer ? { iss: r.issuer } : {}),
    ...(act ? { act } : {}),
    // Authentication happened when the request was recorded: the token is taken as bound to any MCP resource.
    ...(audiences.length ? { aud: audiences } : {}),
  };
  return Object.freeze({
    agent: r.agent,
    user: r.user ?? null,
    scopes: Object.freeze([...(r.scopes ?? [])]),
    issuer: r.issuer ?? '',
    claims: Object.freeze(all),
    actors: Object.freeze([...(r.act ?? [])]),
    expiresAt: Math.floor(Date.now() / 1000) + 3600,
  });
}

/** The request a record describes, as the evaluator takes it. */
export function requestOf(r: DecisionRecord, audiences: readonly string[]): EvaluationRequest {
  const inputs = rebuildInputs(r.input);
  const mcpMethod = r.mcp_method ?? (r.tool !== undefined ? 'tools/call' : undefined);
  return {
    id: r.id,
    method: r.method,
    target: r.query ? `${r.path}?${r.query}` : r.path,
    headers: inputs.headers,
    principal: principalOf(r, inputs.claims, audiences),
    body: mcpMethod === undefined ? inputs.body : undefined,
    mcp: mcpMethod !== undefined ? { method: mcpMethod, tool: r.tool, args: inputs.args ?? {} } : undefined,
  };
}

function describe(o: { outcome: string; code?: string; status?: number }): string {
  if (o.outcome === 'allow') return 'allow';
  if (o.outcome === 'hold') return 'hold';
  return `${o.outcome}${o.code ? ` ${o.code}` : ''}${o.status ? ` (${o.status})` : ''}`;
}

/** The change from `was` to `now`, or undefined when the outcome is the same. */
export function changeOf(was: { outcome: Outcome; code?: string; status?: number }, now: EvaluationResult): ChangeKind | undefined {
  if (now.outcome === 'error') return 'error';
  if (was.outcome !== 'hold' && now.outcome === 'hold') return 'new-hold';
  if (was.outcome === 'hold' && now.outcome !== 'hold') return 'dropped-hold';
  if (was.outcome === 'allow' && now.outcome === 'deny') return 'allow->deny';
  if (was.outcome === 'deny' && now.outcome === 'allow') return 'deny->allow';
  if (was.outcome === 'deny' && now.outcome === 'deny') {
    if (was.code !== undefined && was.code !== now.code) return 'code';
    if (was.status !== undefined && was.status !== now.status) return 'code';
  }
  return undefined;
}

function allowedBy(
  filters: readonly AllowFilter[],
  route: string,
  newRoute: string | undefined,
  change: ChangeKind,
  now: EvaluationResult,
  tool?: string,
): boolean {
  const has = (list: string[] | undefined, ...values: Array<string | undefined>) =>
    !list || list.includes('*') || values.some((v) => v !== undefined && list.includes(v));
  return filters.some((f) => has(f.route, route, newRoute) && has(f.change, change) && has(f.code, now.code) && has(f.tool, tool));
}

/** Decision records of a log file, with their line numbers (checkpoints and other lines skipped). */
async function* recordsOf(file: string): AsyncGenerator<{ line: number; record?: DecisionRecord; bad?: string }> {
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    if (!text.trim()) continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      yield { line: n, bad: 'not a JSON line' };
      continue;
    }
    const v = value as Record<string, unknown>;
    if (v.t !== undefined && v.t !== 'decision') continue;
    if (typeof v.method !== 'string' || typeof v.path !== 'string' || typeof v.decision !== 'string') {
      yield { line: n, bad: 'not a decision record (no method, path or decision)' };
      continue;
    }
    yield { line: n, record: v as unknown as DecisionRecord };
  }
}

/** Replay every record of `files` (any order) through `evaluator`. */
export async function replayLogs(files: readonly string[], evaluator: Evaluator, options: ReplayOptions = {}): Promise<ReplayReport> {
  const filters = options.allow ?? [];
  const maxExamples = options.examples ?? 3;
  const every = options.progressEvery ?? 10_000;
  const plans = compileRouteInputs(evaluator.config.routes);
  const report: ReplayReport = {
    files: [...files],
    records: 0,
    evaluated: 0,
    unchanged: 0,
    changed: 0,
    disallowed: 0,
    not_evaluated: 0,
    not_evaluated_reasons: {},
    routes: {},
    ok: true,
  };
  const skip = (reason: string) => {
    report.not_evaluated++;
    report.not_evaluated_reasons[reason] = (report.not_evaluated_reasons[reason] ?? 0) + 1;
  };
  for (const file of files) {
    for await (const { line, record, bad } of recordsOf(file)) {
      report.records++;
      if (options.progress && report.records % every === 0) options.progress(report.records);
      if (!record) {
        skip(bad!);
        continue;
      }
      const was = recordedOutcome(record);
      if ('skip' in was) {
        skip(was.skip);
        continue;
      }
      const now = await evaluator.evaluate(requestOf(record, evaluator.mcpAudiences));
      // No route matched when it was recorded, so authentication never ran and the log has no identity for it.
      if (!record.agent && (was.code === 'not_found' || was.code === 'method_not_allowed') && now.code === 'unauthenticated') {
        skip('matched no route when recorded, so the log has no identity for it (a new route needs one)');
        continue;
      }
      // The new rules may read fields the old ones did not: those values were never recorded.
      if (now.routeIndex !== undefined) {
        const known = new Set([...Object.keys(record.input ?? {}), ...(record.input_missing ?? [])]);
        const unknown = fieldsFor(plans[now.routeIndex], now.tool).filter((f) => !known.has(f) && !PRINCIPAL_CLAIMS.has(f));
        if (unknown.length) {
          skip(`the new rules read fields the log did not record (${unknown.join(', ')})`);
          continue;
        }
      }
      report.evaluated++;
      const routeName = record.route ?? '-';
      const route = (report.routes[routeName] ??= { evaluated: 0, unchanged: 0, changes: {} });
      route.evaluated++;
      const change = changeOf(was, now);
      if (!change) {
        report.unchanged++;
        route.unchanged++;
        continue;
      }
      report.changed++;
      const summary = (route.changes[change] ??= { count: 0, allowed: 0, examples: [] });
      summary.count++;
      const ok = allowedBy(filters, routeName, now.route, change, now, record.tool ?? now.tool);
      if (ok) summary.allowed++;
      else report.disallowed++;
      if (summary.examples.length < maxExamples) {
        summary.examples.push({
          id: record.id,
          time: record.time,
          agent: record.agent,
          user: record.user,
          method: record.method,
          path: record.query ? `${record.path}?${record.query}` : record.path,
          tool: record.tool,
          was: describe(was),
          now: describe(now),
          now_route: now.route !== routeName ? (now.route ?? '-') : undefined,
          decided_by: now.decisive,
          file,
          line,
        });
      }
    }
  }
  // A run that decided nothing again checked nothing: as a CI gate it must not pass (not a decision log, every
  // record of routes the new config no longer has, …).
  report.ok = report.disallowed === 0 && report.evaluated > 0;
  return report;
}

/** The report for people. */
export function formatReplay(r: ReplayReport, configFile: string): string {
  const out: string[] = [];
  out.push(`replay: ${r.records} record(s) from ${r.files.length} file(s) under ${configFile}: ${r.evaluated} decided again, ${r.not_evaluated} not`);
  for (const [name, route] of Object.entries(r.routes).sort(([a], [b]) => a.localeCompare(b))) {
    const changed = route.evaluated - route.unchanged;
    out.push(`route ${name}: ${route.evaluated} decided, ${changed ? `${changed} changed` : 'no change'}`);
    for (const kind of CHANGE_KINDS) {
      const c = route.changes[kind];
      if (!c) continue;
      out.push(`  ${kind.padEnd(13)} ${String(c.count).padStart(6)}${c.allowed ? `  (${c.allowed === c.count ? 'all' : c.allowed} allowed by --allow)` : ''}`);
      for (const e of c.examples) {
        out.push(
          `      ${e.time} ${e.id} agent=${e.agent ?? '-'} user=${e.user ?? '-'} ${e.method} ${e.path}${e.tool ? ` tool=${e.tool}` : ''}: ${e.was} → ${e.now}${e.now_route ? ` (route ${e.now_route})` : ''}`,
        );
        if (e.decided_by && e.now !== 'allow') out.push(`        decided by: ${e.decided_by}`);
      }
    }
  }
  if (r.not_evaluated) {
    out.push(`not decided again: ${r.not_evaluated}`);
    for (const [reason, n] of Object.entries(r.not_evaluated_reasons).sort((a, b) => b[1] - a[1])) out.push(`  ${String(n).padStart(6)}  ${reason}`);
  }
  if (r.ok) out.push(r.changed ? `OK ${r.changed} change(s), all allowed by --allow` : 'OK no decision changes');
  else if (r.evaluated === 0) out.push(`FAIL nothing decided again (${r.records} record(s) read): there is nothing to compare`);
  else out.push(`FAIL ${r.disallowed} change(s) not allowed by --allow (of ${r.changed})`);
  return out.join('\n') + '\n';
}
