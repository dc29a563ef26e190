/**
 * The request pipeline. The order of stages is fixed here and nowhere else:
 *
 *   normalize → match route → authenticate → [mcp] → authorize → approve → credentials → forward → audit
 *
 * A stage denies by throwing a WardenError; the request is then answered
 * locally and never reaches the upstream.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Principal } from '../identity/principal.js';
import { randomFillSync, randomUUID } from 'node:crypto';
import { WardenError } from '../core/errors.js';
import { sendError } from '../http/problem.js';
import { readBounded } from '../http/body.js';
import { checkQuery } from '../http/query-guard.js';
import { parseJsonBody } from '../http/strict-json.js';
import type { CheckRequest } from '../authz/authorizer.js';
import type { Runtime } from '../core/runtime.js';
import type { Proxy } from '../proxy/forward.js';
import type { CanonicalTarget } from './canonical.js';
import type { CheckTrace, RequestState, Stage } from './context.js';
import { upstreamPath, type CompiledRoute } from './compile.js';
import type { Feature } from './feature.js';
import { compileTemplate, renderId, renderValue, templateVars, type Template, type TemplateVars } from './templates.js';
import type { AuthorizeConfig, CheckConfig } from '../config/schema.js';

export interface PipelineDeps {
  rt: Runtime;
  routes: readonly CompiledRoute[];
  proxy: Proxy;
  features: readonly Feature[];
  /** Renders errors for MCP routes as JSON-RPC (null = problem+json). */
  jsonRpcError?: (err: WardenError, state: RequestState) => { status: number; body: unknown } | null;
  /** `warden explain`: stop before stages with side effects (approve, credentials). */
  dryRun?: boolean;
}

export interface Pipeline {
  /** Answer one agent request; `done` is called exactly once, after the response is sent (or cut) and audited. */
  handle(req: IncomingMessage, res: ServerResponse, target: CanonicalTarget, clientIp: string, done: () => void): void;
  /** Run everything up to (not including) forwarding; for `warden explain`. */
  evaluate(state: RequestState, req?: IncomingMessage): Promise<void>;
  /** Re-run authorization with higher consistency (approval release). */
  reauthorize(state: RequestState): Promise<void>;
  newState(init: { method: string; target: CanonicalTarget; headers: IncomingMessage['headers']; clientIp: string; requestId?: string }): RequestState;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** The last token a connection presented and what it verified to (see authenticate). */
const TOKEN_MEMO = Symbol('warden.tokenMemo');
interface TokenMemo {
  readonly header: string;
  readonly token: string;
  readonly principal: Principal;
  readonly authenticator: Runtime['authenticator'];
}
type MemoSocket = Socket & { [TOKEN_MEMO]?: TokenMemo };

const HIGHER_CONSISTENCY = Object.freeze({ consistency: 'higher_consistency' as const });

/** Build the pipeline for one config generation. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { rt, routes, proxy } = deps;
  const { logger, metrics, config } = rt;
  const featureStage = (name: string): Stage | undefined => deps.features.find((f) => f.name === name)?.stage;
  const mcpStage = featureStage('mcp');
  const approveStage = featureStage('approvals');
  const vaultStage = featureStage('vault');
  const limitsStage = featureStage('limits');
  const bodyLimit = config.server.limits.body_bytes;
  // X-Forwarded-Host/-Proto: from server.public_url when set (no inbound header decides them), else the prechecked Host.
  const publicUrl = config.server.public_url ? new URL(config.server.public_url) : undefined;
  const forwardedHost = publicUrl?.host;
  const forwardedProto: 'http' | 'https' = publicUrl?.protocol === 'https:' ? 'https' : 'http';

  const templates = new Map<string, Template>();
  const template = (source: string) => {
    let t = templates.get(source);
    if (!t) templates.set(source, (t = compileTemplate(source)));
    return t;
  };

  // ------------------------------------------------------------ stages

  function matchRoute(state: RequestState): CompiledRoute {
    const segments = state.segments;
    let methodMismatch = false;
    for (const route of routes) {
      const params = route.pattern.match(segments);
      if (!params) continue;
      if (route.methods && !route.methods.has(state.method)) {
        methodMismatch = true;
        continue;
      }
      state.route = route.config;
      state.routeIndex = route.index;
      state.params = params;
      state.policy = {
        // `authorize: []` (authenticated only) contributes no group, so the stage is skipped.
        authorize: route.config.authorize?.checks.length ? [route.config.authorize] : [],
        approval: (route.config.approval ?? []).map((rule, i) => ({ rule, source: `routes[${route.index}].approval[${i}]` })),
        credentials: route.config.credentials,
      };
      return route;
    }
    if (methodMismatch) throw new WardenError('method_not_allowed', `method ${state.method} is not allowed on this path`, { reason: 'method' });
    throw new WardenError('not_found', 'no route matches this path', { reason: 'no_route' });
  }

  /**
   * Verify the bearer token; without a promise when the verified-token cache has it.
   * An agent on a keep-alive connection sends the same Authorization header
   * again and again: the connection remembers the last one it verified (for
   * this authenticator, until the token's exp), so a repeat costs one string
   * comparison instead of a parse and a SHA-256 for the cache lookup.
   */
  function authenticate(state: RequestState, route: CompiledRoute, req?: IncomingMessage): Promise<void> | void {
    const header = state.headers.authorization;
    const socket = req?.socket as MemoSocket | undefined;
    const memo = socket?.[TOKEN_MEMO];
    if (memo !== undefined && memo.header === header && memo.authenticator === rt.authenticator && Date.now() < memo.principal.expiresAt * 1000) {
      metrics.inc('warden_token_cache_hits_total', NO_LABELS);
      state.token = memo.token;
      state.principal = memo.principal;
      requireScopes(state, route);
      return;
    }
    if (!header) throw new WardenError('unauthenticated', 'a bearer token is required', { headers: { 'WWW-Authenticate': wwwAuthenticate(route) }, reason: 'no_token' });
    const m = BEARER.exec(header);
    if (!m) {
      throw new WardenError('unauthenticated', 'the Authorization header must be "Bearer <token>"', {
        headers: { 'WWW-Authenticate': `${wwwAuthenticate(route)}, error="invalid_request"` },
        reason: 'bad_authorization_header',
      });
    }
    state.token = m[1];
    const cached = rt.authenticator.peek?.(m[1]);
    if (cached) {
      state.principal = cached;
      if (socket) socket[TOKEN_MEMO] = { header, token: m[1], principal: cached, authenticator: rt.authenticator };
      requireScopes(state, route);
      return;
    }
    return verifyToken(state, route, m[1]);
  }

  async function verifyToken(state: RequestState, route: CompiledRoute, token: string): Promise<void> {
    try {
      state.principal = await rt.authenticator.authenticate(token);
    } catch (err) {
      if (err instanceof WardenError && err.code === 'unauthenticated') {
        // The verifier's challenge carries the error parameters; they follow the route's own, comma-separated (RFC 9110 §11.6.1).
        const given = err.headers['WWW-Authenticate'] ?? err.headers['www-authenticate'];
        const params = given ? given.replace(/^Bearer\s*/i, '') : 'error="invalid_token"';
        const hdr = params ? `${wwwAuthenticate(route)}, ${params}` : wwwAuthenticate(route);
        throw new WardenError('unauthenticated', err.message, { headers: { 'WWW-Authenticate': hdr }, reason: err.reason, cause: err });
      }
      throw err;
    }
    requireScopes(state, route);
  }

  function requireScopes(state: RequestState, route: CompiledRoute): void {
    const required = route.config.scopes;
    if (required?.length) {
      const have = new Set(state.principal!.scopes);
      const missing = required.filter((s) => !have.has(s));
      if (missing.length) {
        throw new WardenError('forbidden', `the token lacks the required scope(s): ${missing.join(' ')}`, {
          headers: { 'WWW-Authenticate': `${wwwAuthenticate(route)}, error="insufficient_scope", scope="${required.join(' ').replace(/["\\]/g, '')}"` },
          reason: 'insufficient_scope',
        });
      }
    }
  }

  function wwwAuthenticate(route: CompiledRoute): string {
    if (route.config.mcp) {
      return `Bearer realm="warden", resource_metadata="${rt.publicUrl}/.well-known/oauth-protected-resource${route.pattern.literalPrefix}"`;
    }
    return 'Bearer realm="warden"';
  }

  async function readBody(state: RequestState, req: IncomingMessage): Promise<void> {
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) > bodyLimit) throw new WardenError('payload_too_large', `request body exceeds ${bodyLimit} bytes`);
    // Past the limit reading stops; the error answer closes the connection.
    state.body = await readBounded(req, bodyLimit, () => new WardenError('payload_too_large', `request body exceeds ${bodyLimit} bytes`));
    const size = state.body.length;
    const type = String(state.headers['content-type'] ?? '');
    if (size === 0) return;
    // Rules read this body: it must mean one thing to them, to the approver and to the upstream (#12 A.2).
    if (/\bjson\b/i.test(type) || state.route?.mcp) state.json = parseJsonBody(state.body);
    else if (looksLikeJson(state.body)) parseJsonBody(state.body); // an upstream may parse it whatever the type says
  }

  /** A body an upstream that ignores Content-Type would parse as JSON. */
  function looksLikeJson(body: Buffer): boolean {
    let i = 0;
    while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
    return body[i] === 0x7b || body[i] === 0x5b;
  }

  function buildCheck(check: CheckConfig, vars: TemplateVars): CheckRequest {
    const request: CheckRequest = {
      user: renderId(template(check.user), vars),
      relation: check.relation,
      object: renderId(template(check.object), vars),
    };
    if (check.context) {
      const ctx: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(check.context)) ctx[k] = typeof v === 'string' ? renderValue(template(v), vars) : v;
      request.context = ctx;
    }
    if (check.contextual_tuples) {
      request.contextualTuples = check.contextual_tuples.map((t) => ({
        user: renderId(template(t.user), vars),
        relation: t.relation,
        object: renderId(template(t.object), vars),
      }));
    }
    return request;
  }

  /** Evaluate the policy's checks; without a promise when the decision cache answers all of them. */
  function authorize(state: RequestState): Promise<void> | void {
    const groups: AuthorizeConfig[] = state.policy.authorize;
    if (groups.length === 0) return;
    const vars = templateVars(state);
    const requests: CheckRequest[] = [];
    const spans: Array<{ group: AuthorizeConfig; start: number; count: number }> = [];
    for (const group of groups) {
      const start = requests.length;
      for (const check of group.checks) {
        try {
          requests.push(buildCheck(check, vars));
        } catch (err) {
          state.checks.push({ user: check.user, relation: check.relation, object: check.object, allowed: null, engine: rt.authorizer.engine, error: (err as Error).message });
          throw err;
        }
      }
      spans.push({ group, start, count: requests.length - start });
    }
    if (requests.length === 0) return;
    const opts = state.releasing ? HIGHER_CONSISTENCY : undefined;
    const cached = rt.authorizer.peekBatch?.(requests, opts);
    if (cached) return decide(state, requests, spans, cached);
    return rt.authorizer.batchCheck(requests, opts).then(
      (answers) => decide(state, requests, spans, answers),
      (err: unknown) => {
        if (err instanceof WardenError) throw err;
        throw new WardenError('authz_unavailable', 'the authorization engine could not answer', { cause: err, reason: 'authz_error' });
      },
    );
  }

  function decide(state: RequestState, requests: CheckRequest[], spans: Array<{ group: AuthorizeConfig; start: number; count: number }>, answers: boolean[]): void {
    // The trace is read by audit lines (info) and `warden explain` only: don't build it for nobody.
    if (deps.dryRun || logger.isLevelEnabled('info')) {
      for (let i = 0; i < requests.length; i++) {
        const r = requests[i];
        state.checks.push({ user: r.user, relation: r.relation, object: r.object, allowed: answers[i], engine: rt.authorizer.engine });
      }
    }
    for (const span of spans) {
      const slice = answers.slice(span.start, span.start + span.count);
      if (span.group.mode === 'all') {
        const failed = slice.indexOf(false);
        if (failed >= 0) {
          const r = requests[span.start + failed];
          throw new WardenError('forbidden', `denied: ${r.user} is not ${r.relation} of ${r.object}`, { reason: 'check_denied' });
        }
      } else if (!slice.some(Boolean) && span.count > 0) {
        throw new WardenError('forbidden', `denied: none of ${span.count} alternative checks allowed`, { reason: 'check_denied' });
      }
    }
  }

  function credentials(state: RequestState): Promise<void> | void {
    const c = state.policy.credentials;
    if (!c || c.kind === 'none') return;
    if (c.kind === 'header') {
      state.upstreamHeaders.push([c.name, c.value]);
      return;
    }
    if (!vaultStage) throw new WardenError('internal', 'vault credentials are configured but the vault is not available', { reason: 'vault_missing' });
    return vaultStage(state, rt);
  }

  /**
   * Everything before forwarding: route, identity, policy, approval, credentials.
   * Stages with nothing to do are not called at all, and a stage that finishes
   * from a warm cache returns no promise: the chain stays synchronous until a
   * stage really waits on I/O, and continues from there when it settles.
   * Throws (synchronously) or rejects with the denying WardenError.
   */
  function evaluate(state: RequestState, req?: IncomingMessage, res?: ServerResponse): CompiledRoute | Promise<CompiledRoute> {
    const route = matchRoute(state);
    if (route.queryReads !== null) checkQuery(state.query, route.queryReads);
    return continueAt(0, state, route, req, res);
  }

  function continueAt(step: number, state: RequestState, route: CompiledRoute, req?: IncomingMessage, res?: ServerResponse): CompiledRoute | Promise<CompiledRoute> {
    for (;;) {
      let pending: Promise<void> | void = undefined;
      switch (step++) {
        case 0:
          if (!route.config.public) pending = authenticate(state, route, req);
          break;
        case 1:
          if (route.needsBody && req && state.body === undefined) pending = readBody(state, req);
          break;
        case 2:
          if (route.config.mcp && mcpStage) pending = mcpStage(state, rt);
          break;
        case 3:
          if (state.policy.authorize.length) pending = authorize(state);
          break;
        case 4:
          // Rate limits and budget reservations (rate-limits feature; a no-op without limits).
          if (limitsStage) pending = limitsStage(state, rt);
          break;
        case 5:
          if (deps.dryRun) return route;
          if (state.policy.approval.length) {
            if (!approveStage) throw new WardenError('internal', 'approvals are configured but not available', { reason: 'approvals_missing' });
            if (res) state.signal = disconnectSignal(res);
            pending = approveStage(state, rt);
          }
          break;
        case 6:
          if (state.afterApprove) pending = state.afterApprove();
          break;
        case 7: {
          const c = state.policy.credentials;
          if (c && c.kind !== 'none') pending = credentials(state);
          break;
        }
        default:
          return route;
      }
      if (pending) return pending.then(() => continueAt(step, state, route, req, res));
    }
  }

  // Label objects are reused (and frozen) so metrics do not rebuild keys per request.
  // Nested maps (route → decision → status): no key string is built per request.
  const requestLabels = new Map<string, Map<string, Map<number, Readonly<Record<string, string>>>>>();
  const routeLabels = new Map<string, Readonly<Record<string, string>>>();
  const labelsFor = (route: string, decision: string, status: number) => {
    let byDecision = requestLabels.get(route);
    if (!byDecision) requestLabels.set(route, (byDecision = new Map()));
    let byStatus = byDecision.get(decision);
    if (!byStatus) byDecision.set(decision, (byStatus = new Map()));
    let l = byStatus.get(status);
    if (!l) {
      // Statuses come from upstreams: bound what one route can accumulate.
      if (byStatus.size > 1_000) byStatus.clear();
      byStatus.set(status, (l = Object.freeze({ route, decision, status: String(status) })));
    }
    return l;
  };
  const routeLabel = (route: string) => {
    let l = routeLabels.get(route);
    if (!l) routeLabels.set(route, (l = Object.freeze({ route })));
    return l;
  };

  function audit(state: RequestState, err?: WardenError) {
    const latencyMs = Date.now() - state.startedAt;
    const routeName = state.route?.name ?? '-';
    metrics.inc('warden_requests_total', labelsFor(routeName, state.decision ?? 'error', state.status ?? 0));
    metrics.observe('warden_request_duration_seconds', latencyMs / 1000, routeLabel(routeName));
    // Audit lines are written at info; don't build records nobody will write.
    if (!logger.isLevelEnabled('info')) return;
    logger.info(
      {
        audit: true,
        request_id: state.id,
        route: routeName,
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
        error: err && err.status >= 500 && err.cause ? String((err.cause as Error)?.message ?? err.cause) : undefined,
      },
      'request',
    );
  }

  function newState(init: { method: string; target: CanonicalTarget; headers: IncomingMessage['headers']; clientIp: string; requestId?: string }): RequestState {
    const inbound = init.requestId ?? (init.headers['x-request-id'] as string | undefined);
    return {
      id: inbound && REQUEST_ID.test(inbound) ? inbound : randomUUID(),
      startedAt: Date.now(),
      method: init.method,
      path: init.target.path,
      segments: init.target.segments,
      query: init.target.query,
      headers: init.headers,
      clientIp: init.clientIp,
      params: {},
      policy: { authorize: [], approval: [] },
      upstreamHeaders: [],
      checks: [],
    };
  }

  // Trace and span ids come from a pooled random buffer: one randomFillSync per
  // ~170 requests instead of two randomBytes calls per request.
  const randomPool = Buffer.alloc(4096);
  let randomAt = randomPool.length;
  const randomHex = (bytes: number) => {
    if (randomAt + bytes > randomPool.length) {
      randomFillSync(randomPool);
      randomAt = 0;
    }
    const hex = randomPool.toString('hex', randomAt, randomAt + bytes);
    randomAt += bytes;
    return hex;
  };
  /** Keep the caller's trace id, start a new span; or start a new trace. */
  const traceparent = (inbound: string | string[] | undefined): string => {
    const span = randomHex(8);
    const m = typeof inbound === 'string' ? TRACEPARENT.exec(inbound) : null;
    if (m && !/^0+$/.test(m[1])) return `00-${m[1]}-${span}-${m[2]}`;
    return `00-${randomHex(16)}-${span}-01`;
  };

  /**
   * One request from evaluation to audit, written with callbacks rather than
   * async/await: when every stage is warm the whole exchange runs without a
   * single promise until the upstream answers.
   */
  class Exchange {
    constructor(
      private readonly req: IncomingMessage,
      private readonly res: ServerResponse,
      private readonly state: RequestState,
      private readonly done: () => void,
    ) {}

    start(): void {
      let route: CompiledRoute | Promise<CompiledRoute>;
      try {
        route = evaluate(this.state, this.req, this.res);
      } catch (thrown) {
        this.fail(thrown);
        return;
      }
      if (route instanceof Promise) {
        route.then(
          (r) => this.forward(r),
          (thrown: unknown) => this.fail(thrown),
        );
      } else this.forward(route);
    }

    private forward(route: CompiledRoute): void {
      const { state, req } = this;
      state.decision = 'allow';
      try {
        proxy.forward(
          state,
          req,
          this.res,
          { origin: route.origin, host: route.host, path: upstreamPath(route, state.path, state.query), timeoutMs: route.timeoutMs, headers: route.headers },
          { clientIp: state.clientIp, host: forwardedHost ?? String(req.headers.host ?? ''), proto: forwardedProto, requestId: state.id, traceparent: traceparent(req.headers.traceparent), upstreamHost: route.host },
          (err) => (err ? this.fail(err) : this.finish()),
        );
      } catch (thrown) {
        this.fail(thrown);
      }
    }

    private fail(thrown: unknown): void {
      const state = this.state;
      let failure: WardenError | undefined;
      try {
        // The rest of an oversized body is never read: the connection can't carry another request.
        if (thrown instanceof WardenError && thrown.code === 'payload_too_large' && !this.req.complete && !this.res.headersSent) {
          this.res.setHeader('connection', 'close');
        }
        failure = sendError(this.res, thrown, {
          requestId: state.id,
          jsonRpc: state.mcp && deps.jsonRpcError ? (e) => deps.jsonRpcError!(e, state) : undefined,
        });
        state.status = failure.status;
        state.decision = failure.code === 'approval_pending' ? 'pending' : failure.status >= 500 ? 'error' : state.decision === 'allow' ? 'error' : 'deny';
        state.reason = failure.reason;
      } catch (err) {
        logger.error({ err }, 'could not send an error response');
        if (!this.res.destroyed) this.res.destroy();
      }
      this.finish(failure);
    }

    private finish(failure?: WardenError): void {
      const state = this.state;
      if (state.onSettled) {
        try {
          state.onSettled(failure === undefined && state.decision === 'allow', state.status);
        } catch (err) {
          logger.error({ err }, 'could not settle a request');
        }
      }
      try {
        audit(this.state, failure);
      } catch (err) {
        logger.error({ err }, 'could not audit a request');
      }
      this.done();
    }
  }

  return {
    newState,
    async evaluate(state, req) {
      await evaluate(state, req);
    },
    async reauthorize(state) {
      const prior = state.releasing;
      state.releasing = true;
      state.checks = [];
      try {
        await authorize(state);
      } finally {
        state.releasing = prior;
      }
    },
    handle(req, res, target, clientIp, done) {
      new Exchange(req, res, newState({ method: req.method ?? 'GET', target, headers: req.headers, clientIp }), done).start();
    },
  };
}

/** A signal aborted when the client goes away before the response is complete. */
function disconnectSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}


export type { CheckTrace };
