/**
 * The request pipeline: match a route, run its stages in order, forward,
 * audit. Which stages exist and in what order is decided in one place
 * (gateway/stages.ts); this module only runs them. A stage denies by throwing
 * a WardenError; the request is then answered locally and never reaches the
 * upstream. See DESIGN.md in this folder.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../core/errors.js';
import { sendError } from '../http/problem.js';
import type { Audit } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import { createTraceparent } from '../observability/trace-context.js';
import type { RequestTrace, Tracing } from '../observability/tracing.js';
import type { Proxy } from '../proxy/forward.js';
import type { CanonicalTarget } from './canonical.js';
import { upstreamPath, type CompiledRoute } from './compile.js';
import type { RequestState } from './context.js';
import { matchRoute } from './match.js';
import { runStages, runTracedStages } from './run-stages.js';
import { compileRouteTable } from './route-table.js';
import type { Stage } from './stage.js';
import { newState, type NewStateInit } from './state.js';

export interface PipelineDeps {
  routes: readonly CompiledRoute[];
  /** In order (gateway/stages.ts). */
  stages: readonly Stage[];
  proxy: Proxy;
  audit: Audit;
  logger: Logger;
  /** `server.public_url`: when set it, not the inbound Host, names the public host and scheme to the upstream. */
  publicUrl?: string;
  /** Renders errors for MCP routes as JSON-RPC (null = problem+json). */
  jsonRpcError?: (err: WardenError, state: RequestState) => { status: number; body: unknown } | null;
  /** `warden explain`: stop before the first stage with effects (approve, credentials). */
  dryRun?: boolean;
  /** OpenTelemetry spans (observability.tracing); absent when tracing is off, and then nothing here touches a span. */
  tracing?: Tracing;
}

export interface Pipeline {
  /** Answer one agent request; `done` is called exactly once, after the response is sent (or cut) and audited. */
  handle(req: IncomingMessage, res: ServerResponse, target: CanonicalTarget, clientIp: string, done: () => void): void;
  /** Run everything up to (not including) forwarding; for `warden explain`. */
  evaluate(state: RequestState, req?: IncomingMessage): Promise<void>;
  newState(init: NewStateInit): RequestState;
}

/** Build the pipeline for one config generation. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const { routes, proxy, audit, logger } = deps;
  const effectsAt = deps.stages.findIndex((s) => s.effects);
  const stages = deps.dryRun && effectsAt >= 0 ? deps.stages.slice(0, effectsAt) : deps.stages;
  // Per route, only the stages that can have work there: the others are never called.
  const table = compileRouteTable(routes);
  const plans: Array<readonly Stage[]> = [];
  for (const route of routes) plans[route.index] = stages.filter((s) => !s.appliesTo || s.appliesTo(route));
  // X-Forwarded-Host/-Proto: from server.public_url when set (no inbound header decides them), else the prechecked Host.
  const publicUrl = deps.publicUrl ? new URL(deps.publicUrl) : undefined;
  const forwardedHost = publicUrl?.host;
  const forwardedProto: 'http' | 'https' = publicUrl?.protocol === 'https:' ? 'https' : 'http';
  const traceparent = createTraceparent();
  const tracing = deps.tracing;

  /** The route's stages: undefined when every one finished synchronously, else the promise of the rest. */
  function runPlan(route: CompiledRoute, state: RequestState, req?: IncomingMessage, res?: ServerResponse, trace?: RequestTrace): Promise<void> | void {
    return trace?.recording ? runTracedStages(plans[route.index], 0, state, trace, req, res) : runStages(plans[route.index], 0, state, req, res);
  }

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
      private readonly trace: RequestTrace | undefined,
    ) {}

    /** Everything before forwarding: the route, then its stages (forwarding follows the last one, with no promise of its own). */
    start(): void {
      let route: CompiledRoute;
      let pending: Promise<void> | void;
      try {
        route = matchRoute(table, this.state);
        pending = runPlan(route, this.state, this.req, this.res, this.trace);
      } catch (thrown) {
        this.fail(thrown);
        return;
      }
      if (pending) {
        pending.then(
          () => this.forward(route),
          (thrown: unknown) => this.fail(thrown),
        );
      } else this.forward(route);
    }

    private forward(route: CompiledRoute): void {
      const { state, req } = this;
      state.decision = 'allow';
      // An agent that left while its request was decided: the proxy sends nothing upstream (and
      // settles at once), so the upstream is not started (a budget then releases, src/limits/service.ts).
      if (!this.res.closed && !this.res.destroyed) state.upstreamStartedAt = performance.now();
      const path = upstreamPath(route, state.path, state.query);
      // Tracing on: the upstream joins the request's trace (its own span when sampled, with the caller's tracestate).
      const upstream = this.trace?.upstream(req.method ?? 'GET', route.origin, path);
      try {
        proxy.forward(
          state,
          req,
          this.res,
          { origin: route.origin, host: route.host, path, timeoutMs: route.timeoutMs, headers: route.headers, headerNames: route.headerNames },
          {
            clientIp: state.clientIp,
            host: forwardedHost ?? String(req.headers.host ?? ''),
            proto: forwardedProto,
            requestId: state.id,
            traceparent: upstream ? upstream.traceparent : traceparent(req.headers.traceparent),
            tracestate: upstream?.tracestate,
            upstreamHost: route.host,
          },
          (err) => {
            upstream?.end(state.status, err);
            if (err) this.fail(err);
            else this.finish();
          },
        );
      } catch (thrown) {
        upstream?.end(undefined, thrown);
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
        audit(state, failure);
      } catch (err) {
        logger.error({ err }, 'could not audit a request');
      }
      if (this.trace) {
        try {
          this.trace.end(state, failure);
        } catch (err) {
          logger.error({ err }, 'could not end a request span');
        }
      }
      this.done();
    }
  }

  return {
    newState,
    async evaluate(state, req) {
      await runPlan(matchRoute(table, state), state, req);
    },
    handle(req, res, target, clientIp, done) {
      const state = newState({ method: req.method ?? 'GET', target, headers: req.headers, clientIp });
      new Exchange(req, res, state, done, tracing?.start(req.headers, state)).start();
    },
  };
}
