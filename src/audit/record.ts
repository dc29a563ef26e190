/**
 * One decision as a record: who (agent, user, act chain, issuer, scopes), what
 * (method, canonical path and query, MCP tool), the checks with their results,
 * limits, approval, a digest of the body (never the body), the kind of
 * upstream credentials (never a credential), status and latency.
 */

import { createHash } from 'node:crypto';
import type { RequestState } from '../pipeline/context.js';
import type { WardenError } from '../core/errors.js';

export interface DecisionRecord {
  time: string;
  id: string;
  route: string;
  mode?: string;
  shadow?: { outcome: string; code?: string; reason?: string };
  decision: string;
  reason?: string;
  status: number;
  latency_ms: number;
  agent?: string;
  user?: string | null;
  act?: readonly string[];
  issuer?: string;
  scopes?: readonly string[];
  method: string;
  path: string;
  query?: string;
  tool?: string;
  checks?: RequestState['checks'];
  limits?: RequestState['limitTrace'];
  approval?: { id: string; outcome: 'pending' | 'approved' };
  body_sha256?: string;
  credentials?: string;
  error?: string;
}

export function decisionRecord(state: RequestState, err: WardenError | undefined, latencyMs: number): DecisionRecord {
  const p = state.principal;
  const creds = state.policy.credentials;
  return {
    time: new Date(state.startedAt).toISOString(),
    id: state.id,
    route: state.route?.name ?? '-',
    mode: state.shadowMode ? 'shadow' : undefined,
    shadow: state.shadowMode ? (state.shadow ?? { outcome: 'allow' }) : undefined,
    decision: state.decision ?? 'error',
    reason: state.reason,
    status: state.status ?? 0,
    latency_ms: latencyMs,
    agent: p?.agent,
    user: p ? p.user : undefined,
    act: p && p.actors.length ? p.actors : undefined,
    issuer: p?.issuer,
    scopes: p && p.scopes.length ? p.scopes : undefined,
    method: state.method,
    path: state.path,
    query: state.query || undefined,
    tool: state.mcp?.tool,
    checks: state.checks.length ? state.checks : undefined,
    limits: state.limitTrace?.length ? state.limitTrace : undefined,
    approval: state.approvalId ? { id: state.approvalId, outcome: state.decision === 'pending' ? 'pending' : 'approved' } : undefined,
    body_sha256: state.body && state.body.length ? createHash('sha256').update(state.body).digest('hex') : state.streamedBody?.digest('hex'),
    credentials: creds && state.decision === 'allow' ? creds.kind : undefined,
    error: err && err.status >= 500 ? err.code : undefined,
  };
}
