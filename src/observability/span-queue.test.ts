import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createSpanQueue, type DropReason } from './span-queue.js';

/** An exporter whose answers the test gives by hand (or never). */
function manualExporter() {
  const calls: Array<{ spans: ReadableSpan[]; answer: (r: ExportResult) => void }> = [];
  let shutDown = false;
  const exporter: SpanExporter = {
    export: (spans, answer) => void calls.push({ spans, answer }),
    shutdown: async () => void (shutDown = true),
  };
  return { exporter, calls, isShutDown: () => shutDown };
}

function setup(o: { maxQueue: number; maxBatch: number; timeoutMs?: number }) {
  const { exporter, calls, isShutDown } = manualExporter();
  const drops: Array<[number, DropReason]> = [];
  let exported = 0;
  const queue = createSpanQueue(exporter, {
    maxQueue: o.maxQueue,
    maxBatch: o.maxBatch,
    flushIntervalMs: 60_000,
    timeoutMs: o.timeoutMs ?? 60_000,
    onDrop: (n, reason) => void drops.push([n, reason]),
    onExported: (n) => void (exported += n),
  });
  const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
  const spans = (n: number) => {
    for (let i = 0; i < n; i++) tracer.startSpan(`s${i}`).end();
  };
  return { queue, calls, drops, spans, exported: () => exported, isShutDown };
}

const ok: ExportResult = { code: ExportResultCode.SUCCESS };
const tick = () => new Promise((r) => setImmediate(r));

describe('createSpanQueue', () => {
  it('exports a full batch at once, one export at a time, and drops (counts) what does not fit the queue', async () => {
    const q = setup({ maxQueue: 4, maxBatch: 2 });
    q.spans(2);
    await tick();
    expect(q.calls).toHaveLength(1);
    expect(q.calls[0].spans).toHaveLength(2);
    // While that export hangs, the queue fills to its bound; the rest is dropped, nobody waits.
    q.spans(6);
    await tick();
    expect(q.calls).toHaveLength(1);
    expect(q.drops).toEqual([
      [1, 'queue_full'],
      [1, 'queue_full'],
    ]);
    q.calls[0].answer(ok);
    await tick();
    expect(q.exported()).toBe(2);
    expect(q.calls).toHaveLength(2);
  });

  it('counts a failed export as dropped, and an export that never answers after its timeout', async () => {
    const q = setup({ maxQueue: 10, maxBatch: 2, timeoutMs: 10 });
    q.spans(2);
    await tick();
    q.calls[0].answer({ code: ExportResultCode.FAILED, error: new Error('503') });
    await tick();
    expect(q.drops).toEqual([[2, 'export_failed']]);
    q.spans(2);
    await new Promise((r) => setTimeout(r, 1100));
    expect(q.drops).toEqual([
      [2, 'export_failed'],
      [2, 'export_failed'],
    ]);
    // A late answer after the guard fired changes nothing.
    q.calls[1].answer(ok);
    expect(q.exported()).toBe(0);
  });

  it('flushes what is queued on shutdown, then drops spans that end later', async () => {
    const q = setup({ maxQueue: 10, maxBatch: 5 });
    q.spans(3);
    const closing = q.queue.shutdown();
    await tick();
    expect(q.calls).toHaveLength(1);
    q.calls[0].answer(ok);
    await closing;
    expect(q.exported()).toBe(3);
    expect(q.isShutDown()).toBe(true);
    q.spans(1);
    expect(q.drops).toEqual([[1, 'shut_down']]);
  });
});
