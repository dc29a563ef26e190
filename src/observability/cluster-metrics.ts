/**
 * One /metrics for every `server.workers` worker. The workers share the admin
 * port, so a scrape lands on any one of them; that worker asks the cluster
 * primary, the primary asks every ready worker for a snapshot of its series
 * (prom-client's JSON shape), sums them with prom-client's
 * `AggregatorRegistry.aggregate` (counters and histograms add up; gauges say
 * how they combine: see catalog.ts) and sends the text back.
 *
 * A worker that does not answer within the timeout fails the scrape (503):
 * a partial sum would look like a counter reset to Prometheus. A worker that
 * restarts starts its counters at zero again, which Prometheus' rate() reads as
 * the reset it is.
 */

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { MetricSnapshot } from './metrics.js';

const TAG = 'warden:metrics';

type Message =
  | { [TAG]: 'ready' }
  | { [TAG]: 'scrape'; id: number }
  | { [TAG]: 'scrape-result'; id: number; text?: string; error?: string }
  | { [TAG]: 'snapshot'; id: number }
  | { [TAG]: 'snapshot-result'; id: number; metrics?: MetricSnapshot[][]; error?: string };

const isOurs = (m: unknown): m is Message => typeof m === 'object' && m !== null && TAG in m;

/** Sum snapshots of several processes into one exposition text. */
export async function aggregateSnapshots(snapshots: MetricSnapshot[][]): Promise<string> {
  // prom-client's own types describe its metric objects loosely; ours are the same shape.
  return AggregatorRegistry.aggregate(snapshots as unknown as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}

/**
 * In the primary: answer workers' scrape requests by gathering every ready
 * worker's snapshot. Call once, before forking.
 */
export function servePrimaryMetrics(options: { timeoutMs?: number } = {}): void {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const ready = new Set<Worker>();
  let next = 0;
  const waiting = new Map<number, { pending: Set<Worker>; got: MetricSnapshot[][]; done: (r: { text?: string; error?: string }) => void }>();

  cluster.on('exit', (worker) => {
    ready.delete(worker);
    // A worker that died mid-scrape will not answer: that scrape fails now rather than at its timeout.
    for (const w of waiting.values()) if (w.pending.has(worker)) w.done({ error: `worker ${worker.process.pid} exited during the scrape` });
  });
  cluster.on('message', (worker, message: unknown) => {
    if (!isOurs(message)) return;
    const kind = message[TAG];
    if (kind === 'ready') ready.add(worker);
    else if (kind === 'scrape') {
      const reply = (r: { text?: string; error?: string }) => {
        if (worker.isConnected()) worker.send({ [TAG]: 'scrape-result', id: (message as { id: number }).id, ...r });
      };
      gather().then(
        (text) => reply({ text }),
        (err: Error) => reply({ error: err.message }),
      );
    } else if (kind === 'snapshot-result') {
      const w = waiting.get(message.id);
      if (!w || !w.pending.has(worker)) return;
      if (message.error !== undefined || !message.metrics) return w.done({ error: `worker ${worker.process.pid}: ${message.error ?? 'no metrics'}` });
      w.pending.delete(worker);
      w.got.push(message.metrics.flat());
      if (w.pending.size === 0) w.done({});
    }
  });

  function gather(): Promise<string> {
    const id = next++;
    const workers = [...ready].filter((w) => w.isConnected());
    return new Promise<MetricSnapshot[][]>((resolve, reject) => {
      const timer = setTimeout(() => entry.done({ error: `no answer from ${entry.pending.size} worker(s) within ${timeoutMs} ms` }), timeoutMs);
      const entry = {
        pending: new Set(workers),
        got: [] as MetricSnapshot[][],
        done: (r: { error?: string }) => {
          if (!waiting.delete(id)) return;
          clearTimeout(timer);
          if (r.error) reject(new Error(r.error));
          else resolve(entry.got);
        },
      };
      waiting.set(id, entry);
      if (workers.length === 0) return entry.done({ error: 'no worker is ready yet' });
      for (const w of workers) w.send({ [TAG]: 'snapshot', id });
    }).then(aggregateSnapshots);
  }
}

/** What a worker uses in place of rendering its own metrics. */
export interface WorkerMetrics {
  /** The whole cluster's metrics text; rejects when the primary or a worker did not answer. */
  scrape(): Promise<string>;
  /** Stop answering the primary (the gateway is closing). */
  close(): void;
}

/**
 * In a worker: answer the primary's snapshot requests with `snapshot()`, tell
 * it this worker is ready, and scrape through it.
 */
export function workerMetrics(snapshot: () => Promise<MetricSnapshot[][]>, options: { timeoutMs?: number } = {}): WorkerMetrics {
  const timeoutMs = options.timeoutMs ?? 8_000;
  const send = process.send?.bind(process);
  if (!send) throw new Error('workerMetrics() needs an IPC channel to the cluster primary');
  let next = 0;
  const waiting = new Map<number, (r: { text?: string; error?: string }) => void>();
  const onMessage = (message: unknown) => {
    if (!isOurs(message)) return;
    if (message[TAG] === 'snapshot') {
      const id = message.id;
      snapshot().then(
        (metrics) => send({ [TAG]: 'snapshot-result', id, metrics }),
        (err: Error) => send({ [TAG]: 'snapshot-result', id, error: err.message }),
      );
    } else if (message[TAG] === 'scrape-result') waiting.get(message.id)?.(message);
  };
  process.on('message', onMessage);
  send({ [TAG]: 'ready' });
  return {
    scrape() {
      const id = next++;
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => finish({ error: `the cluster primary did not answer within ${timeoutMs} ms` }), timeoutMs);
        const finish = (r: { text?: string; error?: string }) => {
          if (!waiting.delete(id)) return;
          clearTimeout(timer);
          if (r.text !== undefined) resolve(r.text);
          else reject(new Error(r.error ?? 'no metrics'));
        };
        waiting.set(id, finish);
        send({ [TAG]: 'scrape', id });
      });
    },
    close() {
      process.off('message', onMessage);
    },
  };
}
