/**
 * OpenTelemetry traces: a server span per agent request (continuing the
 * caller's W3C traceparent), a child span per pipeline stage and one for the
 * upstream call, exported over OTLP/HTTP (protobuf). The only module that
 * imports the OpenTelemetry SDK. When tracing is off the pipeline never calls
 * in here. Sampling is decided once, at the start of a request
 * (trace-context.ts); an unsampled request never reaches the SDK: no span,
 * no attribute, no clock read, only the upstream traceparent the W3C spec asks
 * for (see docs/observability.md).
 */

import type { IncomingHttpHeaders } from 'node:http';
import {
  createTraceState,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { createSpanQueue, type DropReason } from './span-queue.js';
import { createIdSource, createSampler, normalizeTracestate, parseTraceparent, type IdSource } from './trace-context.js';
import type { ResolvedTracing } from './tracing-config.js';

/** A stage's span: ended once, by `end` (the stage finished) or `fail` (it threw). */
export interface StageSpan {
  end(): void;
  fail(err: unknown): void;
}

/** The upstream call's span and what to send the upstream so its spans join the trace. */
export interface UpstreamSpan {
  readonly traceparent: string;
  readonly tracestate?: string;
  /** `status` is the upstream's answer, absent when it never answered (`err`). */
  end(status: number | undefined, err?: unknown): void;
}

/** One request's trace. */
export interface RequestTrace {
  /** False when the request is not sampled: no span is recorded, only the context travels on. */
  readonly recording: boolean;
  stage(name: string): StageSpan;
  upstream(method: string, origin: string, path: string): UpstreamSpan;
  /** The request was answered (or cut) and audited. */
  end(state: RequestState, failure?: WardenError): void;
}

export interface Tracing {
  start(headers: IncomingHttpHeaders, state: RequestState): RequestTrace;
  /** Export what is queued (bounded by the export timeout), then stop. */
  shutdown(): Promise<void>;
}

export interface TracingDeps {
  logger: Logger;
  metrics: Metrics;
  /** service.version of the exported resource. */
  version?: string;
}

const DROPPED = 'warden_tracing_dropped_spans_total';
const EXPORTED = 'warden_tracing_exported_spans_total';
const WARN_EVERY_MS = 60_000;

const NOOP_STAGE: StageSpan = { end() {}, fail() {} };

function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`;
}

/** What a thrown value means for a span: a held request is not an error; a refusal or failure is. */
function outcomeOf(err: unknown): { outcome: 'pending' | 'deny' | 'error'; code: string } {
  if (err instanceof WardenError) {
    if (err.code === 'approval_pending') return { outcome: 'pending', code: err.code };
    return { outcome: err.status < 500 ? 'deny' : 'error', code: err.code };
  }
  return { outcome: 'error', code: 'internal' };
}

/**
 * A request that is not sampled: no span, no attribute, no clock read. It is
 * its own upstream "span": the upstream gets the same trace id, a new parent
 * id and the sampled flag clear, plus the caller's valid tracestate.
 */
class UnsampledTrace implements RequestTrace, UpstreamSpan {
  readonly recording = false;
  traceparent = '';
  tracestate: string | undefined;
  constructor(
    private readonly traceId: string,
    private readonly inboundTracestate: string | string[] | undefined,
    private readonly ids: IdSource,
  ) {}
  stage(): StageSpan {
    return NOOP_STAGE;
  }
  upstream(): UpstreamSpan {
    this.traceparent = `00-${this.traceId}-${this.ids.spanId()}-00`;
    if (this.inboundTracestate !== undefined) this.tracestate = normalizeTracestate(this.inboundTracestate);
    return this;
  }
  end(): void {}
}

class RecordingTrace implements RequestTrace {
  readonly recording = true;
  private readonly context: Context;
  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    parent: Context,
    private readonly method: string,
    private readonly tracestate: string | undefined,
  ) {
    this.context = trace.setSpan(parent, span);
  }

  stage(name: string): StageSpan {
    const span = this.tracer.startSpan(`warden.${name}`, { kind: SpanKind.INTERNAL, attributes: { 'warden.stage': name } }, this.context);
    return {
      end() {
        span.setAttribute('warden.stage.outcome', 'ok');
        span.end();
      },
      fail(err) {
        const { outcome, code } = outcomeOf(err);
        span.setAttribute('warden.stage.outcome', outcome);
        if (outcome !== 'pending') {
          span.setAttribute('error.type', code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        }
        span.end();
      },
    };
  }

  upstream(method: string, origin: string, path: string): UpstreamSpan {
    const url = new URL(origin);
    const q = path.indexOf('?');
    const span = this.tracer.startSpan(
      `upstream ${method}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': method,
          'server.address': url.hostname,
          'server.port': Number(url.port) || (url.protocol === 'https:' ? 443 : 80),
          // Never the query: it can carry what an API treats as a secret.
          'url.full': `${url.origin}${q >= 0 ? path.slice(0, q) : path}`,
        },
      },
      this.context,
    );
    const sc = span.spanContext();
    return {
      traceparent: traceparentOf(sc),
      tracestate: this.tracestate,
      end(status, err) {
        if (status !== undefined) span.setAttribute('http.response.status_code', status);
        if (err !== undefined || status === undefined) {
          const code = err instanceof WardenError ? err.code : 'upstream_failed';
          span.setAttribute('error.type', code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        } else if (status >= 400) {
          span.setAttribute('error.type', String(status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    };
  }

  end(state: RequestState, failure?: WardenError): void {
    const span = this.span;
    const route = state.route;
    if (route) {
      span.updateName(`${this.method} ${route.match.path}`);
      span.setAttribute('http.route', route.match.path);
      span.setAttribute('warden.route', route.name);
    }
    if (state.status !== undefined) span.setAttribute('http.response.status_code', state.status);
    if (state.decision) span.setAttribute('warden.decision', state.decision);
    if (state.principal) span.setAttribute('warden.agent', state.principal.agent);
    if (state.reason) span.setAttribute('warden.reason', state.reason);
    if (state.shadow) span.setAttribute('warden.shadow.outcome', state.shadow.outcome);
    if (failure && failure.code !== 'approval_pending') {
      span.setAttribute('error.type', failure.code);
      span.setStatus({ code: SpanStatusCode.ERROR, message: failure.code });
    } else if (state.status !== undefined && state.status >= 500) {
      span.setAttribute('error.type', String(state.status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }
}

/** Build tracing for one config generation (`resolved` from tracing-config.ts). */
export function createTracing(resolved: ResolvedTracing, deps: TracingDeps): Tracing {
  const { logger, metrics } = deps;
  const exporter = new OTLPTraceExporter({
    url: resolved.endpoint,
    headers: resolved.headers,
    timeoutMillis: resolved.timeoutMs,
    concurrencyLimit: 1,
  });
  let lastWarn = 0;
  let droppedSinceWarn = 0;
  const dropLabels = new Map<DropReason, Readonly<Record<string, string>>>();
  const queue = createSpanQueue(exporter, {
    maxQueue: resolved.maxQueue,
    maxBatch: resolved.maxBatch,
    flushIntervalMs: resolved.flushIntervalMs,
    timeoutMs: resolved.timeoutMs,
    onExported: (n) => metrics.inc(EXPORTED, {}, n),
    onDrop: (n, reason, err) => {
      let labels = dropLabels.get(reason);
      if (!labels) dropLabels.set(reason, (labels = Object.freeze({ reason })));
      metrics.inc(DROPPED, labels, n);
      droppedSinceWarn += n;
      const now = Date.now();
      if (now - lastWarn < WARN_EVERY_MS) return;
      lastWarn = now;
      // The error's message only: never the exporter's headers (collector credentials).
      const error = err instanceof Error ? err.message.slice(0, 200) : undefined;
      logger.warn({ dropped: droppedSinceWarn, reason, error }, 'tracing: spans dropped (collector unreachable, slow or refusing?)');
      droppedSinceWarn = 0;
    },
  });
  const ids = createIdSource();
  const sampled = createSampler(resolved.sampling, resolved.parentBased);
  // The SDK sees sampled requests only (decided above), so it records every span it is asked for.
  // A root span takes the trace id the decision was made on: `nextTraceId` is set just before it starts.
  let nextTraceId: string | undefined;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': resolved.serviceName, ...(deps.version ? { 'service.version': deps.version } : {}) }),
    sampler: new AlwaysOnSampler(),
    idGenerator: {
      generateTraceId: () => nextTraceId ?? ids.traceId(),
      generateSpanId: () => ids.spanId(),
    },
    spanProcessors: [queue],
    spanLimits: { attributeValueLengthLimit: 1024 },
  });
  const tracer = provider.getTracer('warden', deps.version);

  return {
    start(headers, state) {
      // One decision per request, before anything is built: an unsampled request costs a parse and an id.
      const parent = headers.traceparent === undefined ? undefined : parseTraceparent(headers.traceparent);
      const traceId = parent ? parent.traceId : ids.traceId();
      if (!sampled(traceId, parent)) return new UnsampledTrace(traceId, parent ? headers.tracestate : undefined, ids);
      let context = ROOT_CONTEXT;
      const traceState = parent ? normalizeTracestate(headers.tracestate) : undefined;
      if (parent) {
        context = trace.setSpanContext(ROOT_CONTEXT, {
          traceId,
          spanId: parent.spanId,
          traceFlags: parent.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
          isRemote: true,
          traceState: traceState ? createTraceState(traceState) : undefined,
        });
      }
      nextTraceId = parent ? undefined : traceId;
      let span: Span;
      try {
        span = tracer.startSpan(state.method, { kind: SpanKind.SERVER }, context);
      } finally {
        nextTraceId = undefined;
      }
      span.setAttributes({
        'http.request.method': state.method,
        'url.path': state.path,
        'client.address': state.clientIp,
        'warden.request_id': state.id,
      });
      return new RecordingTrace(tracer, span, context, state.method, traceState);
    },
    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, resolved.timeoutMs + 1000);
        timer.unref();
      });
      await Promise.race([provider.shutdown().catch(() => {}), limit]);
      clearTimeout(timer);
    },
  };
}
