/**
 * The decision log's writer for one destination (a file, an HTTP endpoint,
 * stdout). It outlives config generations: each generation attaches to it and
 * starts a new chain whose signed genesis record names where the previous
 * chain of this writer ended — in memory after a reload, from the file's last
 * line after a restart — so a whole generation removed or spliced in breaks
 * verification. One writer per destination also keeps one sink, so lines of
 * consecutive chains reach it in order.
 */

import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import cluster from 'node:cluster';
import type { DecisionLogConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { Chain, genesisBody, signCheckpoint, splitLine, type ChainEnd, type CheckpointKey } from './chain.js';
import { LineBatch } from './line-batch.js';
import { fileSink, httpSink, sinkAfter, stdoutSink, type Sink } from './sinks.js';

/** A generation's way into its destination's writer. */
export interface WriterHandle {
  /** Queue one record (a JSON object text) of type `t`. */
  push(t: string, body: string): void;
  /** The generation is done: the last one out writes a final checkpoint and closes the sink. */
  close(): Promise<void>;
}

interface DecisionLogWriter {
  attach(cfg: DecisionLogConfig, key: CheckpointKey | undefined): WriterHandle;
  /** Set once the last generation detached: the sink is closing. */
  readonly closed: Promise<void> | undefined;
}

/** The writers of one process by destination, kept across reloads by the gateway. */
export type DecisionLogWriters = Map<string, DecisionLogWriter>;

interface WriterDeps {
  logger: Logger;
  metrics: Metrics;
}

/** Settings that make a sink: a reload that changes them gets a new sink on the same writer (and chain lineage). */
const SINK_SETTINGS = [
  'sink',
  'path',
  'rotate',
  'keep',
  'url',
  'headers',
  'batch',
  'flush_interval',
  'timeout',
  'retries',
  'max_buffer',
  'max_buffer_bytes',
] as const;

/** Bytes read back from a file's end, at most, to find its last line (a record is far smaller), in chunks of TAIL_CHUNK. */
const TAIL_BYTES = 4 * 1024 * 1024;
const TAIL_CHUNK = 64 * 1024;

/** Attach a generation to the writer of its destination, creating the writer (and, for a file, reading where its last chain ended). */
export async function attachWriter(
  writers: DecisionLogWriters,
  cfg: DecisionLogConfig,
  key: CheckpointKey | undefined,
  deps: WriterDeps,
): Promise<WriterHandle> {
  const dest = cfg.sink === 'file' ? `file:${workerPath(cfg.path!)}` : cfg.sink === 'http' ? `http:${cfg.url}` : 'stdout';
  let writer = writers.get(dest);
  // A writer still closing writes its last lines first: a new one then reads the file's true end.
  if (writer?.closed) await writer.closed;
  writer = writers.get(dest);
  if (!writer) {
    const end = cfg.sink === 'file' && cfg.chain ? await fileChainEnd(workerPath(cfg.path!), deps.logger) : null;
    writer = writers.get(dest);
    if (!writer) {
      const created = createWriter(cfg, end, deps, () => {
        if (writers.get(dest) === created) writers.delete(dest);
      });
      writers.set(dest, (writer = created));
    }
  }
  return writer.attach(cfg, key);
}

/** With node:cluster workers each worker writes its own file (rotation needs one writer). */
export function workerPath(path: string): string {
  return cluster.isWorker && cluster.worker ? `${path}.w${cluster.worker.id}` : path;
}

function createWriter(first: DecisionLogConfig, end: ChainEnd | null, deps: WriterDeps, onClosed: () => void): DecisionLogWriter {
  const { logger, metrics } = deps;
  let cfg = first;
  let sinkKey = sinkKeyOf(first);
  let sink = makeSink(first, deps);
  let labels = Object.freeze({ sink: first.sink });
  let key: CheckpointKey | undefined;
  let chain: Chain | undefined;
  let pending = new LineBatch(undefined);
  // Where this writer's previous chain ended: the next chain's genesis names it.
  let lastEnd = end;
  let sinceCheckpoint = 0;
  let flushTimer: NodeJS.Timeout | undefined;
  let flushTurn: NodeJS.Immediate | undefined;
  let timer: NodeJS.Timeout | undefined;
  const handles = new Set<WriterHandle>();
  let newest: WriterHandle | undefined;
  let closed: Promise<void> | undefined;

  // Records are encoded into one pending Buffer when they are decided (off the
  // V8 heap: nothing per request survives a scavenge) and go to the sink as one
  // batch at most `write_interval` later, or as soon as the buffer is full: one
  // write per batch, not one per request. A crash loses at most that window; a
  // clean shutdown (close) writes everything. The chain's prev and hash fields,
  // and checkpoint signatures, are completed at the flush (line-batch.ts).
  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    if (flushTurn) clearImmediate(flushTurn);
    flushTimer = flushTurn = undefined;
    const batch = pending.take();
    if (!batch) return;
    metrics.inc('warden_decision_log_records_total', labels, batch.lines);
    sink.write(batch.chunk, batch.lines);
  };
  const schedule = () => {
    if (cfg.write_interval === 0) flushTurn ??= setImmediate(flush);
    else flushTimer ??= setTimeout(flush, cfg.write_interval).unref();
  };
  const queue = (t: string, body: string) => {
    if (!pending.fits(body.length)) flush();
    pending.add(t, body);
  };
  const checkpoint = () => {
    if (!key || !chain || sinceCheckpoint === 0) return;
    // Its signature covers the chain head before it, known at the flush (line-batch.ts).
    queue('checkpoint', `{"time":"${new Date().toISOString()}","records":${sinceCheckpoint},"kid":${JSON.stringify(key.kid)},"alg":"${key.alg}","sig":"`);
    sinceCheckpoint = 0;
  };
  const push = (t: string, body: string) => {
    if (closed) {
      // A record after the last generation closed (its drain timed out): there is no chain left to add it to.
      metrics.inc('warden_decision_log_errors_total', labels);
      logger.warn('decision log: a record arrived after the log was closed; not written');
      return;
    }
    queue(t, body);
    if (chain && ++sinceCheckpoint >= cfg.checkpoint_every) checkpoint();
    schedule();
  };
  const endChain = () => {
    checkpoint();
    flush();
    if (chain) lastEnd = { instance: chain.instance, seq: chain.seq - 1, hash: chain.prev };
    chain = undefined;
  };
  /** End the current chain (final checkpoint, written) and start the next, linked to it, with a generation's settings. */
  const start = (next: DecisionLogConfig, nextKey: CheckpointKey | undefined) => {
    endChain();
    if (sinkKeyOf(next) !== sinkKey) {
      sink = sinkAfter(sink.close(), makeSink(next, deps));
      sinkKey = sinkKeyOf(next);
      labels = Object.freeze({ sink: next.sink });
    }
    cfg = next;
    key = nextKey;
    if (timer) clearInterval(timer);
    timer = undefined;
    if (!next.chain || !nextKey) {
      pending = new LineBatch(undefined);
      return;
    }
    chain = new Chain(`${Date.now().toString(36)}-${randomBytes(6).toString('base64url')}`);
    pending = new LineBatch(chain, (instance, seq, head) => signCheckpoint(nextKey, instance, seq, head));
    // Signed at once (it covers no chain head): a chain is covered by a signature from its first line on.
    queue('genesis', genesisBody(nextKey, chain.instance, lastEnd));
    schedule();
    timer = setInterval(() => {
      if (sinceCheckpoint === 0) return;
      checkpoint();
      flush();
    }, next.checkpoint_interval).unref();
  };
  const detach = (handle: WriterHandle): Promise<void> => {
    if (!handles.delete(handle)) return closed ?? Promise.resolve();
    if (handles.size) {
      // An older generation still drains into this chain: sign and write what the leaving one recorded.
      if (handle === newest) {
        checkpoint();
        flush();
      }
      return Promise.resolve();
    }
    endChain();
    if (timer) clearInterval(timer);
    timer = undefined;
    closed = sink.close().finally(onClosed);
    return closed;
  };

  return {
    get closed() {
      return closed;
    },
    attach(next, nextKey) {
      const handle: WriterHandle = { push, close: () => detach(handle) };
      handles.add(handle);
      newest = handle;
      start(next, nextKey);
      return handle;
    },
  };
}

function sinkKeyOf(cfg: DecisionLogConfig): string {
  return JSON.stringify(SINK_SETTINGS.map((k) => cfg[k] ?? null));
}

function makeSink(cfg: DecisionLogConfig, { logger, metrics }: WriterDeps): Sink {
  if (cfg.sink === 'stdout') return stdoutSink();
  if (cfg.sink === 'http') {
    return httpSink(
      {
        url: cfg.url!,
        headers: cfg.headers,
        batch: cfg.batch,
        flushIntervalMs: cfg.flush_interval,
        timeoutMs: cfg.timeout,
        retries: cfg.retries,
        maxBuffer: cfg.max_buffer,
        maxBufferBytes: cfg.max_buffer_bytes,
      },
      logger,
      metrics,
    );
  }
  return fileSink(workerPath(cfg.path!), cfg.rotate, cfg.keep, logger, metrics);
}

/**
 * Where the chain in a file's last line ended: the live file, else (empty or
 * missing, just after a rotation) the newest rotated one. Null when neither
 * ends with a chained record: the next chain then names no previous one.
 */
export async function fileChainEnd(path: string, logger: Logger): Promise<ChainEnd | null> {
  for (const file of [path, `${path}.1`]) {
    const line = await lastLine(file);
    if (line === undefined) continue;
    const end = chainEndOf(line);
    if (!end) logger.warn({ path: file }, 'decision log: the file does not end with a whole chained record; the new chain is not linked to it');
    return end;
  }
  return null;
}

function chainEndOf(line: string): ChainEnd | null {
  const parts = splitLine(line);
  if (!parts) return null;
  try {
    const { instance, seq } = JSON.parse(line) as { instance?: unknown; seq?: unknown };
    return typeof instance === 'string' && Number.isSafeInteger(seq) ? { instance, seq: seq as number, hash: parts.hash } : null;
  } catch {
    return null;
  }
}

/** The last line of a file without its newline, read backwards in chunks (undefined: missing or empty; cut at TAIL_BYTES). */
async function lastLine(path: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await fh.stat();
    if (size === 0) return undefined;
    const chunks: Buffer[] = [];
    let from = size;
    let skipNewline = true; // the newline that ends the last line
    while (from > 0 && size - from < TAIL_BYTES) {
      const length = Math.min(TAIL_CHUNK, from);
      from -= length;
      const chunk = Buffer.alloc(length);
      await fh.read(chunk, 0, length, from);
      let end = length;
      if (skipNewline) {
        skipNewline = false;
        if (chunk[end - 1] === 0x0a) end--;
      }
      const nl = end > 0 ? chunk.lastIndexOf(0x0a, end - 1) : -1;
      chunks.unshift(chunk.subarray(nl + 1, end));
      if (nl >= 0) break;
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    await fh.close();
  }
}
