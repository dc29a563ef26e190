/**
 * The decision record as JSON text, written straight from the request state:
 * the same text as `JSON.stringify(decisionRecord(…))` (same keys, same order,
 * absent fields left out), without building the record object first. The
 * decision log writes one per request, so this is its hot path.
 */

import { createHash } from 'node:crypto';
import type { CheckTrace, RequestState } from '../pipeline/context.js';
import type { WardenError } from '../core/errors.js';
import type { Principal } from '../core/principal.js';
import { createIsoTime } from '../observability/iso-time.js';
import { jsonString } from '../observability/json-text.js';
import { captureInputs, fieldsFor, type RouteInputs } from './inputs.js';

/** Serializes one finished request's record; `inputs` as for `decisionRecord`. */
export type RecordSerializer = (state: RequestState, err: WardenError | undefined, latencyMs: number) => string;

const str = jsonString;

/** Entries a serializer's text cache keeps (the values it caches come from config and the code: routes, methods, engines, relations). */
const CACHED = 256;

/**
 * `jsonString` for strings that repeat across requests (route names, methods,
 * decisions, engines, relations, credential kinds): a Map hit instead of the
 * scan. Bounded: past CACHED distinct values the rest is escaped per call.
 */
function cachedJsonString(): (s: string) => string {
  const texts = new Map<string, string>();
  return (s) => {
    let t = texts.get(s);
    if (t === undefined) {
      t = str(s);
      if (texts.size < CACHED) texts.set(s, t);
    }
    return t;
  };
}

function checkJson(c: CheckTrace, known: (s: string) => string): string {
  let s = `{"user":${str(c.user)},"relation":${known(c.relation)},"object":${str(c.object)},"allowed":${c.allowed},"engine":${known(c.engine)}`;
  if (c.model !== undefined) s += `,"model":${str(c.model)}`;
  if (c.consistency !== undefined) s += `,"consistency":${str(c.consistency)}`;
  if (c.cached !== undefined) s += `,"cached":${c.cached}`;
  if (c.error !== undefined) s += `,"error":${str(c.error)}`;
  return s + '}';
}

function stringList(list: readonly string[]): string {
  let s = '[';
  for (let i = 0; i < list.length; i++) s += (i ? ',' : '') + str(list[i]);
  return s + ']';
}

/** `,"agent":…,"user":…[,"act":…],"issuer":…[,"scopes":…]` (a principal is immutable). */
function principalJson(p: Principal): string {
  let s = `,"agent":${str(p.agent)},"user":${p.user === null ? 'null' : str(p.user)}`;
  if (p.actors.length) s += `,"act":${stringList(p.actors)}`;
  s += `,"issuer":${str(p.issuer)}`;
  if (p.scopes.length) s += `,"scopes":${stringList(p.scopes)}`;
  return s;
}

/** Build the serializer for one config generation (its time cache lives here, not in the module). */
export function createRecordSerializer(inputs?: readonly RouteInputs[]): RecordSerializer {
  // Date's formatter once per second; the milliseconds are written per record.
  const isoTime = createIsoTime();
  // A verified token's principal is one object reused by every request that presents the token (identity's caches): its members are written once.
  const principals = new WeakMap<Principal, string>();
  const known = cachedJsonString();
  return function recordJson(state, err, latencyMs) {
    const p = state.principal;
    let s = `{"time":"${isoTime(state.startedAt)}","id":${str(state.id)},"route":${str(state.route?.name ?? '-')}`;
    if (state.shadowMode) s += `,"mode":"shadow","shadow":${JSON.stringify(state.shadow ?? { outcome: 'allow' })}`;
    s += `,"decision":${known(state.decision ?? 'error')}`;
    if (state.reason !== undefined) s += `,"reason":${str(state.reason)}`;
    if (err?.code !== undefined) s += `,"code":${str(err.code)}`;
    s += `,"status":${state.status ?? 0},"latency_ms":${latencyMs}`;
    if (state.cut !== undefined) s += `,"cut":"${state.cut}"`;
    if (p) {
      let who = principals.get(p);
      if (who === undefined) principals.set(p, (who = principalJson(p)));
      s += who;
    }
    s += `,"method":${known(state.method)},"path":${str(state.path)}`;
    if (state.query) s += `,"query":${str(state.query)}`;
    if (state.routeIndex !== undefined) {
      let params = '';
      for (const k in state.params) params += `${params ? ',' : ''}${str(k)}:${str(state.params[k])}`;
      if (params) s += `,"params":{${params}}`;
    }
    const mcp = state.mcp;
    if (mcp) {
      if (mcp.method !== undefined) s += `,"mcp_method":${str(mcp.method)}`;
      if (mcp.tool !== undefined) s += `,"tool":${str(mcp.tool)}`;
    }
    const plan = inputs && state.routeIndex !== undefined ? inputs[state.routeIndex] : undefined;
    if (plan) {
      const fields = fieldsFor(plan, mcp?.tool);
      if (fields.length) {
        const recorded = captureInputs(fields, { body: state.json, args: mcp?.args, claims: p?.claims, headers: state.headers });
        if (recorded.input) s += `,"input":${JSON.stringify(recorded.input)}`;
        if (recorded.input_missing) s += `,"input_missing":${stringList(recorded.input_missing)}`;
      }
    }
    const checks = state.checks;
    if (checks.length) {
      s += `,"checks":[`;
      for (let i = 0; i < checks.length; i++) s += (i ? ',' : '') + checkJson(checks[i], known);
      s += ']';
    }
    if (state.limitTrace?.length) s += `,"limits":${JSON.stringify(state.limitTrace)}`;
    if (state.approvalId) s += `,"approval":{"id":${str(state.approvalId)},"outcome":"${state.decision === 'pending' ? 'pending' : 'approved'}"}`;
    if (state.body && state.body.length) s += `,"body_sha256":"${createHash('sha256').update(state.body).digest('hex')}"`;
    else if (state.streamedBody) s += `,"body_sha256":"${state.streamedBody.digest('hex')}"`;
    const creds = state.policy.credentials;
    if (creds && state.decision === 'allow') s += `,"credentials":${known(creds.kind)}`;
    if (err && err.status >= 500) s += `,"error":${str(err.code)}`;
    return s + '}';
  };
}
