import type { Tracer } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RequestState } from '../pipeline/context.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { createRatioSampler } from './trace-context.js';
import { createTracing, type Tracing } from './tracing.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER = 'b7ad6b7169203331';

const state = {
  id: 'req-1',
  method: 'GET',
  path: '/pay/acme',
  clientIp: '127.0.0.1',
  status: 200,
  decision: 'allow',
} as unknown as RequestState;

// Every span the SDK starts, counted (the SDK's own tracer, wrapped: it still records and exports).
let started = 0;
const getTracer = BasicTracerProvider.prototype.getTracer;
beforeEach(() => {
  started = 0;
  vi.spyOn(BasicTracerProvider.prototype, 'getTracer').mockImplementation(function (this: BasicTracerProvider, ...args) {
    const tracer: Tracer = getTracer.apply(this, args);
    const startSpan = tracer.startSpan.bind(tracer);
    tracer.startSpan = (...a) => {
      started++;
      return startSpan(...a);
    };
    return tracer;
  });
});

/** Tracing exporting to a closed port (nothing here waits for an export). */
function tracingWith(sampling: number, parentBased: boolean): { tracing: Tracing; started: () => number } {
  const tracing = createTracing(
    {
      endpoint: 'http://127.0.0.1:9/v1/traces',
      headers: {},
      serviceName: 'test',
      sampling,
      parentBased,
      timeoutMs: 200,
      maxQueue: 64,
      maxBatch: 64,
      flushIntervalMs: 60_000,
    },
    { logger: createLogger({ level: 'silent' }), metrics: createMetrics() },
  );
  return { tracing, started: () => started };
}

/** One request through the trace as the pipeline drives it; returns what the upstream would get. */
function request(tracing: Tracing, headers: Record<string, string>) {
  const t = tracing.start(headers, state);
  for (const name of ['authenticate', 'authorize']) t.stage(name).end();
  const up = t.upstream('GET', 'http://127.0.0.1:8081', '/acme');
  const sent = { traceparent: up.traceparent, tracestate: up.tracestate };
  up.end(200);
  t.end(state);
  return { recording: t.recording, ...sent };
}

describe('tracing: the sampling decision is made once, at the start of the request', () => {
  const open: Tracing[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(open.splice(0).map((t) => t.shutdown()));
  });

  it('an unsampled request starts no span at all, and the upstream gets the same trace, a new parent id and the sampled flag clear', () => {
    const { tracing, started } = tracingWith(0, true);
    open.push(tracing);
    const byParent = request(tracing, { traceparent: `00-${TRACE}-${CALLER}-00`, tracestate: 'vendor=abc,Bad=1' });
    expect(byParent.recording).toBe(false);
    expect(byParent.traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
    expect(byParent.traceparent).not.toContain(CALLER);
    expect(byParent.tracestate).toBe('vendor=abc');

    const root = request(tracing, {});
    expect(root.recording).toBe(false);
    expect(root.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(root.traceparent).not.toMatch(/^00-0{32}-|-0{16}-/);
    expect(root.tracestate).toBeUndefined();

    // An invalid traceparent is no parent: a new trace, not sampled at ratio 0.
    const invalid = request(tracing, { traceparent: `00-${TRACE}-${'0'.repeat(16)}-01`, tracestate: 'vendor=abc' });
    expect(invalid.recording).toBe(false);
    expect(invalid.traceparent).not.toContain(TRACE);
    expect(invalid.tracestate).toBeUndefined();

    expect(started()).toBe(0);
  });

  it('a request sampled by its parent records spans under the caller’s span, whatever the ratio', () => {
    const { tracing, started } = tracingWith(0, true);
    open.push(tracing);
    const sent = request(tracing, { traceparent: `00-${TRACE}-${CALLER}-01`, tracestate: 'vendor=abc' });
    expect(sent.recording).toBe(true);
    expect(sent.traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    expect(sent.tracestate).toBe('vendor=abc');
    // Server span, two stages, the upstream call.
    expect(started()).toBe(4);
  });

  it('a sampled root request: the trace id the ratio decided on is the one recorded and sent', () => {
    const { tracing, started } = tracingWith(0.5, true);
    open.push(tracing);
    const keep = createRatioSampler(0.5);
    let recorded = 0;
    for (let i = 0; i < 200; i++) {
      const sent = request(tracing, {});
      const traceId = sent.traceparent.split('-')[1];
      expect(sent.traceparent).toMatch(sent.recording ? /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/ : /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(keep(traceId)).toBe(sent.recording);
      if (sent.recording) recorded++;
    }
    expect(recorded).toBeGreaterThan(50);
    expect(recorded).toBeLessThan(150);
    expect(started()).toBe(recorded * 4);
    // Not parent-based: the ratio (here 1) decides over the caller's "not sampled".
    const { tracing: ratioOnly } = tracingWith(1, false);
    open.push(ratioOnly);
    expect(request(ratioOnly, { traceparent: `00-${TRACE}-${CALLER}-00` }).traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  });
});
