/**
 * The per-request audit line's fields as JSON text, written straight from the
 * request state: what pino wrote for `logger.info(auditFields(…), 'request')`
 * through Warden's scrub hook (same keys, same order, absent fields left out,
 * every string scrubbed), without the object, its scrubbed copy and pino's walk
 * over it. One line per request at the default level, so this is on the hot path.
 */

import type { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import type { Principal } from '../core/principal.js';
import { scrubbedJson } from './logger.js';

/** The audit line's fields in the order they are written. None is a secret field name, so the text below censors no field by name (audit-line.test.ts checks). */
export const AUDIT_LINE_FIELDS = [
  'audit',
  'request_id',
  'route',
  'method',
  'path',
  'agent',
  'user',
  'tool',
  'decision',
  'reason',
  'status',
  'approval_id',
  'checks',
  'latency_ms',
  'error',
] as const;

/** What the line says about a request whose answer was `err` (if any): an error's cause, for 5xx only. */
function errorText(err: WardenError | undefined): string | undefined {
  return err && err.status >= 500 && err.cause ? String((err.cause as Error)?.message ?? err.cause) : undefined;
}

/** The audit line's fields as an object (what pino is given for loggers the text writer does not frame, and the reference the text is tested against). */
export function auditFields(state: RequestState, err: WardenError | undefined, latencyMs: number): Record<string, unknown> {
  return {
    audit: true,
    request_id: state.id,
    route: state.route?.name ?? '-',
    method: state.method,
    path: state.path,
    agent: state.principal?.agent,
    user: state.principal?.user ?? undefined,
    tool: state.mcp?.tool,
    decision: state.decision,
    reason: state.reason,
    status: state.status,
    approval_id: state.approvalId,
    checks: state.checks.length ? state.checks.map((c) => `${c.user} ${c.relation} ${c.object}=${c.allowed}`) : undefined,
    latency_ms: latencyMs,
    error: errorText(err),
  };
}

/** Serializes one finished request's audit fields as `,"audit":true,…` (the text between pino's bindings and its message). */
export type AuditLineSerializer = (state: RequestState, err: WardenError | undefined, latencyMs: number) => string;

/** A string as the scrub hook and pino leave it, as JSON text. */
const text = scrubbedJson;
/** A number as pino writes it (not finite: null). */
const num = (n: number) => (Number.isFinite(n) ? String(n) : 'null');

/** Values that repeat from request to request (route names, methods, decisions, reasons): their text is kept, up to a bound. */
const MEMO_MAX = 256;

/** `,"agent":…[,"user":…]` of a principal (empty when it has neither). */
function principalText(p: Principal): string {
  let s = '';
  if (p.agent !== undefined) s += `,"agent":${text(p.agent)}`;
  if (p.user != null) s += `,"user":${text(p.user)}`;
  return s;
}

/** Build the serializer for one config generation (its memo of repeated values lives here). */
export function createAuditLineSerializer(): AuditLineSerializer {
  const memo = new Map<string, string>();
  // A verified token's principal is one object reused by every request that presents the token (identity's caches, as
  // record-json.ts relies on): its members are written once.
  const principals = new WeakMap<Principal, string>();
  const known = (s: string) => {
    let t = memo.get(s);
    if (t === undefined) {
      t = text(s);
      if (memo.size < MEMO_MAX) memo.set(s, t);
    }
    return t;
  };
  return function auditLine(state, err, latencyMs) {
    let s = `,"audit":true,"request_id":${text(state.id)},"route":${known(state.route?.name ?? '-')},"method":${known(state.method)},"path":${text(state.path)}`;
    const p = state.principal;
    if (p) {
      let who = principals.get(p);
      if (who === undefined) principals.set(p, (who = principalText(p)));
      s += who;
    }
    const tool = state.mcp?.tool;
    if (tool !== undefined) s += `,"tool":${text(tool)}`;
    if (state.decision !== undefined) s += `,"decision":${known(state.decision)}`;
    if (state.reason !== undefined) s += `,"reason":${known(state.reason)}`;
    if (state.status !== undefined) s += `,"status":${num(state.status)}`;
    if (state.approvalId !== undefined) s += `,"approval_id":${text(state.approvalId)}`;
    const checks = state.checks;
    if (checks.length) {
      s += ',"checks":[';
      for (let i = 0; i < checks.length; i++) {
        const c = checks[i];
        s += (i ? ',' : '') + text(`${c.user} ${c.relation} ${c.object}=${c.allowed}`);
      }
      s += ']';
    }
    s += `,"latency_ms":${num(latencyMs)}`;
    const error = errorText(err);
    if (error !== undefined) s += `,"error":${text(error)}`;
    return s;
  };
}
