/**
 * One decision as a record: who (agent, user, act chain, issuer, scopes), what
 * (method, canonical path and query, MCP tool), the checks with their results,
 * limits, approval, a digest of the body (never the body), the kind of
 * upstream credentials (never a credential), status and latency.
 */

import { createHash } from 'node:crypto';
import type { RequestState } from '../pipeline/context.js';
import type { WardenError } from '../core/errors.js';
import { captureInputs, fieldsFor, type RouteInputs } from './inputs.js';

export interface DecisionRecord {
  time: string;
  id: string;
  route: string;
  mode?: string;
  shadow?: { outcome: string; code?: string; reason?: string; tools?: string[] };
  decision: string;
  reason?: string;
  /** The error code the request was answered with (refusals, holds and failures). */
  code?: string;
  status: number;
  latency_ms: number;
  /** The answer did not reach the agent whole: the agent left first (`agent`), or the upstream broke off mid-answer (`upstream`). */
  cut?: RequestState['cut'];
  agent?: string;
  user?: string | null;
  act?: readonly string[];
  issuer?: string;
  scopes?: readonly string[];
  method: string;
  path: string;
  query?: string;
  /** Path parameters of the matched route. */
  params?: Record<string, string>;
  /** MCP JSON-RPC method (`tools/call`, `tools/list`, …). */
  mcp_method?: string;
  tool?: string;
  /** The fields the route's rules read (body, MCP arguments, claims, headers): replay decides from these. */
  input?: Record<string, unknown>;
  /** Fields the rules read that the request did not have (or that were too large to record). */
  input_missing?: string[];
  checks?: RequestState['checks'];
  limits?: RequestState['limitTrace'];
  approval?: { id: string; outcome: 'pending' | 'approved' };
  body_sha256?: string;
  credentials?: string;
  error?: string;
}

/**
 * The record of one finished request, as an object: the reference for its
 * shape. The decision log writes the same record as text with
 * `createRecordSerializer` (record-json.ts), which must stay equal to
 * `JSON.stringify(decisionRecord(…))` (record-json.test.ts). `inputs` (by route index, from
 * compileRouteInputs) says which request fields the route's rules read: only
 * those are recorded.
 */
export function decisionRecord(state: RequestState, err: WardenError | undefined, latencyMs: number, inputs?: readonly RouteInputs[]): DecisionRecord {
  const p = state.principal;
  const creds = state.policy.credentials;
  const plan = inputs && state.routeIndex !== undefined ? inputs[state.routeIndex] : undefined;
  const recorded = plan
    ? captureInputs(fieldsFor(plan, state.mcp?.tool), { body: state.json, args: state.mcp?.args, claims: p?.claims, headers: state.headers })
    : undefined;
  return {
    time: new Date(state.startedAt).toISOString(),
    id: state.id,
    route: state.route?.name ?? '-',
    mode: state.shadowMode ? 'shadow' : undefined,
    shadow: state.shadowMode ? (state.shadow ?? { outcome: 'allow' }) : undefined,
    decision: state.decision ?? 'error',
    reason: state.reason,
    code: err?.code,
    status: state.status ?? 0,
    latency_ms: latencyMs,
    cut: state.cut,
    agent: p?.agent,
    user: p ? p.user : undefined,
    act: p && p.actors.length ? p.actors : undefined,
    issuer: p?.issuer,
    scopes: p && p.scopes.length ? p.scopes : undefined,
    method: state.method,
    path: state.path,
    query: state.query || undefined,
    params: state.routeIndex !== undefined && Object.keys(state.params).length ? state.params : undefined,
    mcp_method: state.mcp?.method,
    tool: state.mcp?.tool,
    input: recorded?.input,
    input_missing: recorded?.input_missing,
    checks: state.checks.length ? state.checks : undefined,
    limits: state.limitTrace?.length ? state.limitTrace : undefined,
    approval: state.approvalId ? { id: state.approvalId, outcome: state.decision === 'pending' ? 'pending' : 'approved' } : undefined,
    body_sha256: state.body && state.body.length ? createHash('sha256').update(state.body).digest('hex') : state.streamedBody?.digest('hex'),
    credentials: creds && state.decision === 'allow' ? creds.kind : undefined,
    error: err && err.status >= 500 ? err.code : undefined,
  };
}
