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
import type { CheckTrace } from '../pipeline/context.js';
import { isPlainBeforeSpace, isPlainText, scrubbedJson, scrubbedJsonContent } from './logger.js';
import { flatText } from './json-text.js';

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
  'cut',
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
    cut: state.cut,
    approval_id: state.approvalId,
    checks: state.checks.length ? state.checks.map((c) => `${c.user} ${c.relation} ${c.object}=${c.allowed}`) : undefined,
    latency_ms: latencyMs,
    error: errorText(err),
  };
}

/**
 * Serializes one finished request's audit fields as `,"audit":true,…` (the text between pino's bindings and its message),
 * after `head` and followed by the serializer's `tail` (both empty unless given: see createAuditLineSerializer).
 */
export type AuditLineSerializer = (state: RequestState, err: WardenError | undefined, latencyMs: number, head?: string) => string;

/** A string as the scrub hook and pino leave it, as JSON text. */
const text = scrubbedJson;
/** A number as pino writes it (not finite: null). */
const num = (n: number) => (Number.isFinite(n) ? String(n) : 'null');

/** Values that repeat from request to request (route names, methods, decisions, reasons): their text is kept, up to a bound. */
const MEMO_MAX = 256;
/** Latencies below this (ms) have their `,"latency_ms":n` text (and the tail) kept. */
const LATENCY_TEXTS = 1_000;

/** `,"agent":…[,"user":…]` of a principal (empty when it has neither). */
function principalText(p: Principal): string {
  let s = '';
  if (p.agent !== undefined) s += `,"agent":${text(p.agent)}`;
  if (p.user != null) s += `,"user":${text(p.user)}`;
  return s;
}

/**
 * Build the serializer for one config generation (its memo of repeated values lives here). A line is written as
 * few pieces of text (a string built by `+` is a tree of its pieces, copied piece by piece when it is written): the
 * request id and the path between texts that repeat from request to request (route and method; principal, decision,
 * reason and status; latency and `tail`), each kept for the last request or up to a bound.
 */
export function createAuditLineSerializer(tail = ''): AuditLineSerializer {
  const memo = new Map<string, string>();
  // A verified token's principal is one object reused by every request that presents the token (identity's caches, as
  // record-json.ts relies on): its members are written once.
  const principals = new WeakMap<Principal, string>();
  const known = (s: string) => {
    let t = memo.get(s);
    if (t === undefined) {
      t = flatText(text(s));
      if (memo.size < MEMO_MAX) memo.set(s, t);
    }
    return t;
  };
  // `","route":…,"method":…,"path":"` (closing the id's quote, opening the path's) for the last route name and method.
  let rmRoute = '';
  let rmMethod = '';
  let rm = '';
  // `,"decision":…,"reason":…,"status":…` (those present) for the last three values.
  let dsDecision: string | undefined;
  let dsReason: string | undefined;
  let dsStatus: number | undefined;
  let ds: string | undefined;
  // `"` (closing the path's quote), the principal's text, the MCP tool's field and `ds`, for the last three (a route's
  // agents call a few tools: an MCP line is as cheap to build as a REST one).
  let restWho = '';
  let restTool: string | undefined;
  let restDs = '';
  let rest = '';
  // `"<user> <relation> ` of the last check's user and relation when both are plain before a space (else undefined): a
  // check's text is that, its object and its answer when the object is plain too, without building and scanning the
  // whole text (see isPlainBeforeSpace).
  let ckUser = '';
  let ckRelation = '';
  let ckPrefix: string | undefined;
  let ckSet = false;
  const checkText = (c: CheckTrace): string => {
    const { user, relation, object, allowed } = c;
    if (typeof allowed === 'boolean' && typeof user === 'string' && typeof relation === 'string' && typeof object === 'string') {
      if (!ckSet || user !== ckUser || relation !== ckRelation) {
        ckSet = true;
        ckUser = user;
        ckRelation = relation;
        ckPrefix = isPlainBeforeSpace(user) && isPlainBeforeSpace(relation) ? flatText(`"${user} ${relation} `) : undefined;
      }
      if (ckPrefix !== undefined && isPlainText(object)) return ckPrefix + object + (allowed ? '=true"' : '=false"');
    }
    return text(`${user} ${relation} ${object}=${allowed}`);
  };
  // `,"latency_ms":n` and the tail, by n.
  const latencies: string[] = [];
  return function auditLine(state, err, latencyMs, head = '') {
    const routeName = state.route?.name ?? '-';
    const method = state.method;
    if (rm === '' || routeName !== rmRoute || method !== rmMethod) {
      rmRoute = routeName;
      rmMethod = method;
      rm = flatText(`","route":${known(routeName)},"method":${known(method)},"path":"`);
    }
    let s = head + ',"audit":true,"request_id":"' + scrubbedJsonContent(state.id) + rm + scrubbedJsonContent(state.path);
    const p = state.principal;
    let who = '';
    if (p) {
      const w = principals.get(p);
      if (w === undefined) principals.set(p, (who = flatText(principalText(p))));
      else who = w;
    }
    const { decision, reason, status } = state;
    if (ds === undefined || decision !== dsDecision || reason !== dsReason || status !== dsStatus) {
      dsDecision = decision;
      dsReason = reason;
      dsStatus = status;
      ds = '';
      if (decision !== undefined) ds += `,"decision":${known(decision)}`;
      if (reason !== undefined) ds += `,"reason":${known(reason)}`;
      if (status !== undefined) ds += `,"status":${num(status)}`;
      ds = flatText(ds);
    }
    const tool = state.mcp?.tool;
    if (rest === '' || who !== restWho || tool !== restTool || ds !== restDs) {
      restWho = who;
      restTool = tool;
      restDs = ds;
      rest = flatText('"' + who + (tool === undefined ? '' : `,"tool":${text(tool)}`) + ds);
    }
    s += rest;
    // Rare (the agent left, or the upstream broke off mid-answer): the status alone would read like a success.
    if (state.cut !== undefined) s += `,"cut":"${state.cut}"`;
    if (state.approvalId !== undefined) s += `,"approval_id":${text(state.approvalId)}`;
    const checks = state.checks;
    if (checks.length) {
      s += ',"checks":[';
      for (let i = 0; i < checks.length; i++) {
        s += (i ? ',' : '') + checkText(checks[i]);
      }
      s += ']';
    }
    const error = errorText(err);
    if (error !== undefined) return s + `,"latency_ms":${num(latencyMs)},"error":${text(error)}` + tail;
    if (latencyMs >= 0 && latencyMs < LATENCY_TEXTS && latencyMs === Math.floor(latencyMs)) {
      let t = latencies[latencyMs];
      if (t === undefined) latencies[latencyMs] = t = flatText(`,"latency_ms":${num(latencyMs)}${tail}`);
      return s + t;
    }
    return s + `,"latency_ms":${num(latencyMs)}` + tail;
  };
}
