/**
 * Where decision lines go. Every sink takes lines in batches (the writer
 * collects the records of up to `write_interval`) as one chunk of UTF-8
 * bytes, newline-terminated lines, so a busy gateway makes one write per
 * batch, not one per request.
 */

import { writeSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface Sink {
  /** `chunk`: `lines` complete lines, each ending with `\n`. */
  write(chunk: Buffer, lines: number): void;
  /** Everything written so far is on its way out (file: written; http: sent or given up). */
  close(): Promise<void>;
}

export function stdoutSink(): Sink {
  return {
    write(chunk) {
      process.stdout.write(chunk);
    },
    async close() {},
  };
}

/** Appends to `path`; past `rotate` bytes the file becomes `path.1` (older ones shift, `keep` kept). */
export function fileSink(path: string, rotate: number, keep: number, log: Logger, metrics: Metrics): Sink {
  let fh: FileHandle | undefined;
  let size = 0;
  let queue: Buffer[] = [];
  let running: Promise<void> | undefined;
  // A drain is under way (waiting for the file to open or rotate): what is written meanwhile joins its queue. A drain
  // whose file is open and needs no rotation writes synchronously and is over when drain() returns.
  let draining = false;

  const openFile = async () => {
    await mkdir(dirname(path), { recursive: true });
    fh = await open(path, 'a', 0o600);
    size = (await stat(path)).size;
  };
  const rotateFile = async () => {
    await fh?.close();
    fh = undefined;
    await rm(`${path}.${keep}`, { force: true });
    for (let n = keep - 1; n >= 1; n--) await rename(`${path}.${n}`, `${path}.${n + 1}`).catch(() => {});
    await rename(path, `${path}.1`);
    await openFile();
  };
  // A batch (the records of up to write_interval) is one write system call made here, to the page cache: through
  // the thread pool (FileHandle.write) the hand-off cost several times the write itself, once per batch.
  const writeOut = (bytes: Buffer) => {
    for (let off = 0; off < bytes.length;) off += writeSync(fh!.fd, bytes, off, bytes.length - off);
    size += bytes.length;
  };
  const drain = async () => {
    draining = true;
    try {
      while (queue.length) {
        // Each queued chunk is what the writer collected since its last flush;
        // chunks are coalesced into one write unless the file must rotate, which
        // happens between lines (a file never ends mid-record).
        const chunk = queue.length === 1 ? queue[0] : Buffer.concat(queue);
        queue = [];
        try {
          if (!fh) await openFile();
          let from = 0;
          while (size + chunk.length - from > rotate && from < chunk.length) {
            // Lines up to the rotation size go to this file; at least one line when the file is empty.
            let end = from;
            for (let nl = chunk.indexOf(10, end); nl >= 0 && (size + nl + 1 - from <= rotate || (size === 0 && end === from)); nl = chunk.indexOf(10, end))
              end = nl + 1;
            if (end > from) writeOut(chunk.subarray(from, end));
            from = end;
            if (from < chunk.length) await rotateFile();
          }
          if (from < chunk.length) writeOut(chunk.subarray(from));
        } catch (err) {
          metrics.inc('warden_decision_log_errors_total', { sink: 'file' });
          log.error({ err, path }, 'decision log: could not write');
        }
      }
    } finally {
      // Synchronously when no await was needed: a write right after this one starts its own drain.
      draining = false;
    }
  };

  return {
    write(chunk) {
      queue.push(chunk);
      if (!draining) running = drain();
    },
    async close() {
      while (draining) await running;
      await fh?.close();
      fh = undefined;
    },
  };
}

/**
 * `next`, receiving lines only once `before` (the sink it replaces, closing:
 * it writes or sends what it holds first) has settled, so lines stay in chain
 * order when a reload changes a destination's sink settings.
 */
export function sinkAfter(before: Promise<unknown>, next: Sink): Sink {
  let held: Array<[Buffer, number]> | undefined = [];
  // Whether the old sink closed cleanly or not (it logged and counted its own errors), the new one takes over.
  const ready = before
    .catch(() => undefined)
    .then(() => {
      for (const [chunk, lines] of held!) next.write(chunk, lines);
      held = undefined;
    });
  return {
    write(chunk, lines) {
      if (held) held.push([chunk, lines]);
      else next.write(chunk, lines);
    },
    async close() {
      await ready;
      await next.close();
    },
  };
}

export interface HttpSinkOptions {
  url: string;
  headers: Record<string, string>;
  batch: number;
  flushIntervalMs: number;
  timeoutMs: number;
  retries: number;
  maxBuffer: number;
  /** Bytes held at most (records are as long as what they record: long URLs, many inputs). */
  maxBufferBytes: number;
}

/** POSTs NDJSON batches; retries with backoff; drops the oldest records beyond maxBuffer or maxBufferBytes (counted). */
export function httpSink(o: HttpSinkOptions, log: Logger, metrics: Metrics): Sink {
  // Pending lines stay the byte chunks the writer handed over, with their line
  // counts: not one string per record, which (kept up to flush_interval, or
  // while the endpoint is down) would be promoted to V8's old generation.
  const chunks: Buffer[] = [];
  const counts: number[] = [];
  let pending = 0;
  let pendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  let closing = false;
  const labels = Object.freeze({ sink: 'http' });

  /** The oldest `max` pending lines (fewer when fewer are pending), removed from the queue. */
  const takeLines = (max: number): { body: Buffer; lines: number } => {
    const parts: Buffer[] = [];
    let n = 0;
    while (chunks.length && n < max) {
      const chunk = chunks[0];
      const k = counts[0];
      if (n + k <= max) {
        parts.push(chunk);
        n += k;
        chunks.shift();
        counts.shift();
      } else {
        // Split the chunk after its (max - n)-th line.
        let cut = 0;
        for (let want = max - n; want > 0; want--) cut = chunk.indexOf(10, cut) + 1;
        parts.push(chunk.subarray(0, cut));
        chunks[0] = chunk.subarray(cut);
        counts[0] = k - (max - n);
        n = max;
      }
    }
    pending -= n;
    const body = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    pendingBytes -= body.length;
    return { body, lines: n };
  };
  /** Drop the oldest pending records until at most maxBuffer are held, in at most maxBufferBytes. */
  const bound = () => {
    let drop = Math.max(0, pending - o.maxBuffer);
    if (drop > 0) takeLines(drop);
    // Whole chunks, oldest first, while over the bytes (one longer than the bound goes too).
    while (pendingBytes > o.maxBufferBytes && chunks.length) {
      const lines = counts[0];
      takeLines(lines);
      drop += lines;
    }
    if (drop > 0) metrics.inc('warden_decision_log_dropped_total', labels, drop);
  };
  const post = async (body: Buffer): Promise<boolean> => {
    for (let attempt = 0; attempt <= o.retries; attempt++) {
      try {
        const res = await fetch(o.url, {
          method: 'POST',
          headers: { ...o.headers, 'content-type': 'application/x-ndjson' },
          body,
          signal: AbortSignal.timeout(o.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        log.warn({ status: res.status, attempt }, 'decision log: endpoint refused a batch');
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) break;
      } catch (err) {
        log.warn({ err: (err as Error).message, attempt }, 'decision log: endpoint unreachable');
      }
      if (attempt < o.retries) await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, closing ? 200 : 10_000)).unref?.());
    }
    return false;
  };
  const pump = async () => {
    while (pending) {
      const { body, lines } = takeLines(o.batch);
      if (!(await post(body))) {
        metrics.inc('warden_decision_log_dropped_total', labels, lines);
        metrics.inc('warden_decision_log_errors_total', labels);
        log.error({ records: lines }, 'decision log: batch dropped after retries');
      }
    }
    sending = undefined;
  };
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    // With nothing pending pump() would end before it returned, clearing `sending` before `sending` was set to its
    // (settled) promise: that stale promise then stopped every later flush, and close() awaited it forever.
    if (!sending && pending > 0) sending = pump();
  };

  return {
    write(chunk, lines) {
      if (!lines) return;
      chunks.push(chunk);
      counts.push(lines);
      pending += lines;
      pendingBytes += chunk.length;
      if (pending > o.maxBuffer || pendingBytes > o.maxBufferBytes) bound();
      if (sending) return;
      if (pending >= o.batch) flush();
      else timer ??= setTimeout(flush, o.flushIntervalMs).unref();
    },
    async close() {
      closing = true;
      flush();
      while (sending) {
        await sending;
        if (pending) flush();
      }
    },
  };
}
