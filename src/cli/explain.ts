/**
 * `warden explain`: runs the pipeline for one request up to (not including)
 * anything with side effects, and reports each decision it made.
 */

import { parseStrictJson } from '../http/strict-json.js';
import { canonicalize } from '../pipeline/canonical.js';
import { startGateway } from '../gateway/gateway.js';
import { createLogger } from '../observability/logger.js';
import { WardenError } from '../core/errors.js';
import { templateVars } from '../templates/request-vars.js';
import { renderMessage } from '../templates/template.js';
import { compileAssertionPlan } from '../identity/assertion/settings.js';
import type { CheckTrace, LimitTrace } from '../pipeline/context.js';
import { USAGE, configPath, fail, commandArgs } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = commandArgs(argv, {
    token: { type: 'string' },
    request: { type: 'string', short: 'X', default: 'GET' },
    data: { type: 'string', short: 'd' },
    header: { type: 'string', short: 'H', multiple: true },
    json: { type: 'boolean', default: false },
  });
  if (positionals.length !== 1) fail('warden explain: exactly one PATH is required\n\n' + USAGE, 2);
  const trace = await explain({
    configFile: configPath(values),
    token: values.token,
    method: values.request.toUpperCase(),
    target: positionals[0],
    body: values.data,
    headers: values.header ?? [],
  });
  process.stdout.write(values.json ? JSON.stringify(trace, null, 2) + '\n' : formatTrace(trace));
  process.exitCode = trace.decision === 'allow' ? 0 : trace.decision === 'pending' ? 0 : 1;
}

export interface ExplainInput {
  configFile: string;
  token?: string;
  method: string;
  target: string;
  body?: string;
  headers: string[];
}

export interface ExplainTrace {
  request: { method: string; path: string; query: string };
  route?: { name: string; pattern: string; upstream: string; params: Record<string, string> };
  identity?: { agent: string; user: string | null; scopes: readonly string[]; issuer: string };
  mcp?: { method: string; tool?: string; note?: string };
  engine?: string;
  checks: CheckTrace[];
  /** Rate limits and budgets as they stand (peeked: nothing consumed or reserved). */
  limits: LimitTrace[];
  approval: Array<{ source: string; when: string; message?: string; template?: string }>;
  credentials: string;
  /** The identity assertion the upstream would get (never signed here). */
  assertion?: { header: string; audience: string; claims: string[] };
  decision: 'allow' | 'deny' | 'pending' | 'error';
  error?: { code: string; status: number; detail: string };
}

/** Evaluate one request against the config without forwarding. */
export async function explain(input: ExplainInput): Promise<ExplainTrace> {
  const gateway = await startGateway({
    configFile: input.configFile,
    logger: createLogger({ level: 'silent' }),
    listen: '127.0.0.1:0',
    adminListen: null,
    dryRun: true,
  });
  const trace: ExplainTrace = {
    request: { method: input.method, path: input.target, query: '' },
    checks: [],
    limits: [],
    approval: [],
    credentials: 'none',
    decision: 'error',
  };
  try {
    const target = canonicalize(input.target);
    trace.request = { method: input.method, path: target.path, query: target.query };
    const headers: Record<string, string> = { host: 'warden.local' };
    for (const h of input.headers) {
      const i = h.indexOf(':');
      if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
    }
    if (input.token) headers.authorization = `Bearer ${input.token}`;
    if (input.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const pipeline = gateway.pipeline();
    const state = pipeline.newState({ method: input.method, target, headers, clientIp: '127.0.0.1' });
    if (input.body !== undefined) {
      state.body = Buffer.from(input.body);
      try {
        state.json = parseStrictJson(state.body);
      } catch {
        /* not strict JSON: templates over {body.*} will be missing (the gateway would refuse it with 400) */
      }
    }
    trace.engine = gateway.runtime().authorizer.engine;
    try {
      await pipeline.evaluate(state);
      trace.decision = state.policy.approval.length ? 'pending' : 'allow';
    } catch (err) {
      const e = err instanceof WardenError ? err : new WardenError('internal', (err as Error).message);
      trace.decision = e.status >= 500 ? 'error' : 'deny';
      trace.error = { code: e.code, status: e.status, detail: e.message };
    }
    if (state.route) {
      trace.route = { name: state.route.name, pattern: state.route.match.path, upstream: state.route.upstream.url, params: state.params };
    }
    if (state.principal) {
      const p = state.principal;
      trace.identity = { agent: p.agent, user: p.user, scopes: p.scopes, issuer: p.issuer };
    }
    if (state.mcp)
      trace.mcp = {
        method: state.mcp.method,
        tool: state.mcp.tool,
        ...(state.mcp.pin ? { note: 'tool not listed yet: a real call is refused (tool_not_pinned) until an agent lists tools on this route' } : {}),
      };
    trace.checks = state.checks;
    trace.limits = state.limitTrace ?? [];
    // The message as the approver would read it: rendered from this request (a missing value renders empty).
    const vars = templateVars(state);
    trace.approval = state.policy.approval.map((a) => ({
      source: a.source,
      when: a.rule.when ?? 'always',
      message: a.rule.message !== undefined ? renderMessage(a.rule.message, vars) : undefined,
      template: a.rule.message,
    }));
    const c = state.policy.credentials;
    const settings =
      state.routeIndex === undefined ? null : compileAssertionPlan(gateway.runtime().config.routes).settingsFor(state.routeIndex, state.mcp?.tool);
    if (settings)
      trace.assertion = {
        header: settings.header,
        audience: settings.audience,
        claims: settings.mapped.map(([to]) => to).concat(settings.authz ? ['authz'] : []),
      };
    trace.credentials =
      !c || c.kind === 'none'
        ? 'none'
        : c.kind === 'vault'
          ? `vault:${c.provider}`
          : c.kind === 'header'
            ? `header:${c.name}`
            : `token_exchange:${c.token_url}`;
    return trace;
  } finally {
    await gateway.close();
  }
}

/** Human-readable trace. */
export function formatTrace(t: ExplainTrace): string {
  const lines: string[] = [];
  lines.push(`request     ${t.request.method} ${t.request.path}${t.request.query ? '?' + t.request.query : ''}`);
  lines.push(`route       ${t.route ? `${t.route.name} (${t.route.pattern} → ${t.route.upstream})` : '(none)'}`);
  if (t.route && Object.keys(t.route.params).length)
    lines.push(
      `params      ${Object.entries(t.route.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  if (t.identity)
    lines.push(
      `identity    agent=${t.identity.agent} user=${t.identity.user ?? '(none: machine token)'} scopes=[${t.identity.scopes.join(' ')}] iss=${t.identity.issuer}`,
    );
  if (t.mcp) lines.push(`mcp         ${t.mcp.method}${t.mcp.tool ? ` tool=${t.mcp.tool}` : ''}${t.mcp.note ? ` (${t.mcp.note})` : ''}`);
  if (t.checks.length) {
    lines.push(`checks      (engine: ${t.engine})`);
    for (const c of t.checks)
      lines.push(
        `  ${c.allowed === true ? 'ALLOW' : c.allowed === false ? 'DENY ' : 'ERROR'} ${c.user} ${c.relation} ${c.object}${c.error ? `  (${c.error})` : ''}`,
      );
  } else lines.push('checks      (none)');
  for (const l of t.limits) {
    const detail = Object.entries(l.detail)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    lines.push(`${l.kind === 'budget' ? 'budget     ' : 'rate limit '} ${l.policy} key=${JSON.stringify(l.key)}: ${l.outcome.toUpperCase()} (${detail})`);
  }
  if (t.approval.length) for (const a of t.approval) lines.push(`approval    ${a.source}: when ${a.when}${a.message ? ` — "${a.message}"` : ''}`);
  else lines.push('approval    (none)');
  lines.push(`credentials ${t.credentials}`);
  if (t.assertion)
    lines.push(
      `assertion   ${t.assertion.header}: signed identity for aud=${t.assertion.audience}${t.assertion.claims.length ? ` (+ ${t.assertion.claims.join(' ')})` : ''}`,
    );
  lines.push(
    `decision    ${t.decision.toUpperCase()}${t.error ? ` — ${t.error.code} (${t.error.status}): ${t.error.detail}` : t.decision === 'pending' ? ' — if an approval rule matches, the request is held for the user' : ''}`,
  );
  return lines.join('\n') + '\n';
}
