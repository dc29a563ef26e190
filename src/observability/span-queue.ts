/**
 * A batch span processor with a bounded queue that never blocks a request:
 * when the queue is full or an export fails (collector down, slow, refusing),
 * the spans are dropped and counted. One export at a time; every export is
 * bounded by the exporter's timeout plus a guard of our own.
 */

import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { TraceFlags } from '@opentelemetry/api';
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';

export type DropReason = 'queue_full' | 'export_failed' | 'shut_down';

export interface SpanQueueOptions {
  maxQueue: number;
  maxBatch: number;
  flushIntervalMs: number;
  /** An export that has not answered after this long (plus a second) counts as failed. */
  timeoutMs: number;
  onDrop(count: number, reason: DropReason, err?: unknown): void;
  onExported(count: number): void;
}

/** The SpanProcessor the tracer provider is built with (see tracing.ts). */
export function createSpanQueue(exporter: SpanExporter, o: SpanQueueOptions): SpanProcessor {
  let queue: ReadableSpan[] = [];
  let timer: NodeJS.Timeout | undefined;
  let exporting: Promise<void> | undefined;
  let closed = false;

  const exportBatch = (batch: ReadableSpan[]): Promise<void> =>
    new Promise((resolve) => {
      let settled = false;
      const settle = (result: ExportResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (result.code === ExportResultCode.SUCCESS) o.onExported(batch.length);
        else o.onDrop(batch.length, 'export_failed', result.error);
        resolve();
      };
      const guard = setTimeout(() => settle({ code: ExportResultCode.FAILED, error: new Error('export timed out') }), o.timeoutMs + 1000);
      guard.unref();
      try {
        exporter.export(batch, settle);
      } catch (err) {
        settle({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
      }
    });

  /** Export what is queued, one batch after another, unless an export is already running. */
  const drain = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (!exporting && queue.length > 0) {
      exporting = (async () => {
        while (queue.length > 0) {
          const batch = queue.length <= o.maxBatch ? queue : queue.slice(0, o.maxBatch);
          queue = queue.length <= o.maxBatch ? [] : queue.slice(o.maxBatch);
          await exportBatch(batch);
          // Between batches, wait for a full one or the interval (unless shutting down).
          if (!closed && queue.length < o.maxBatch) break;
        }
      })().finally(() => {
        exporting = undefined;
        if (queue.length >= o.maxBatch) void drain();
        else if (queue.length > 0) schedule();
      });
    }
    return exporting ?? Promise.resolve();
  };

  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      void drain();
    }, o.flushIntervalMs);
    timer.unref();
  };

  return {
    onStart() {},
    onEnd(span) {
      if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
      if (closed) return o.onDrop(1, 'shut_down');
      if (queue.length >= o.maxQueue) return o.onDrop(1, 'queue_full');
      queue.push(span);
      if (queue.length >= o.maxBatch) void drain();
      else schedule();
    },
    async forceFlush() {
      while (queue.length > 0 || exporting) {
        await drain();
        if (exporting) await exporting;
      }
    },
    async shutdown() {
      closed = true;
      await this.forceFlush();
      await exporter.shutdown();
    },
  };
}
