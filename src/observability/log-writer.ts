/**
 * Log lines to a file descriptor (stdout) in batches: one write for the lines
 * of up to LOG_FLUSH_INTERVAL_MS instead of one per line, so the per-request
 * audit line costs its serialization and not a write system call (#17).
 * Warnings and errors are written at once (with everything before them), and
 * the rest on exit, so only a process killed outright (SIGKILL, OOM) loses
 * lines: at most those of the last interval.
 */

import { writeSync } from 'node:fs';

/** The longest a buffered log line waits before it is written (docs/observability.md, "Logs"). */
export const LOG_FLUSH_INTERVAL_MS = 50;
/** Pending text (UTF-16 units) that is written at once, without waiting for the interval. */
const PENDING_CHARS = 64 * 1024;
/** pino's numeric level for warn: lines at this level and above are not held back. */
const WARN = 40;
/** POSIX PIPE_BUF on Linux: a write of at most this many bytes to a pipe is never interleaved with another process's. */
export const PIPE_ATOMIC_BYTES = 4096;

export interface BatchedWriterOptions {
  /** File descriptor to write to (default 1, stdout). */
  fd?: number;
  intervalMs?: number;
  /**
   * Largest single write, cut between lines (a longer line is written alone).
   * Processes that share one pipe (cluster workers) use PIPE_ATOMIC_BYTES so
   * their lines never interleave mid-line.
   */
  maxWriteBytes?: number;
}

export interface BatchedWriter {
  /** pino calls this with one complete line (it sets `lastLevel` first, see below). */
  write(line: string): boolean;
  /** Write everything pending now. */
  flushSync(): void;
  /** pino's `logger.flush(cb)`: write everything pending, then call back. */
  flush(cb?: (err?: Error) => void): void;
  /** pino sets the numeric level of the line it is about to write. */
  lastLevel: number;
}

// Sleeping between retries when the descriptor is non-blocking and full (EAGAIN).
const pause = new Int32Array(new SharedArrayBuffer(4));

/** A pino destination that batches lines (see the module note). Flushes on process exit. */
export function createBatchedWriter(options: BatchedWriterOptions = {}): BatchedWriter {
  const fd = options.fd ?? 1;
  const intervalMs = options.intervalMs ?? LOG_FLUSH_INTERVAL_MS;
  const maxWrite = options.maxWriteBytes ?? Infinity;
  let pending: string[] = [];
  let chars = 0;
  let timer: NodeJS.Timeout | undefined;
  // EPIPE: nobody reads stdout any more; stop logging instead of failing every request (as pino does).
  let broken = false;

  const writeAll = (text: string) => {
    // The string goes to the kernel as is; only a partial write (a full non-blocking pipe) needs its bytes.
    let rest: string | Buffer = text;
    for (;;) {
      try {
        const n = typeof rest === 'string' ? writeSync(fd, rest) : writeSync(fd, rest);
        const size: number = typeof rest === 'string' ? Buffer.byteLength(rest) : rest.length;
        if (n >= size) return;
        rest = (typeof rest === 'string' ? Buffer.from(rest) : rest).subarray(n);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EBUSY') {
          Atomics.wait(pause, 0, 0, 10);
          continue;
        }
        if (code === 'EPIPE') {
          broken = true;
          return;
        }
        throw err;
      }
    }
  };

  const flushSync = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const lines = pending;
    pending = [];
    chars = 0;
    if (broken) return;
    if (maxWrite === Infinity) writeAll(lines.join(''));
    else for (const chunk of writeChunks(lines, maxWrite)) writeAll(chunk);
  };

  const writer: BatchedWriter & { [key: symbol]: unknown } = {
    // pino sets `lastLevel` on destinations that ask for it with this symbol.
    [Symbol.for('pino.metadata')]: true,
    lastLevel: 0,
    write(line) {
      pending.push(line);
      chars += line.length;
      if (writer.lastLevel >= WARN || chars >= PENDING_CHARS) flushSync();
      else timer ??= setTimeout(flushSync, intervalMs).unref();
      return true;
    },
    flushSync,
    flush(cb) {
      flushSync();
      cb?.();
    },
  };
  // 'exit' also runs after an uncaught exception and after process.exit(): nothing pending is lost then.
  process.on('exit', flushSync);
  return writer;
}

/** `lines` joined into writes of whole lines, each at most `maxBytes` (a longer line is a write of its own). */
export function writeChunks(lines: readonly string[], maxBytes: number): string[] {
  const chunks: string[] = [];
  let chunk = '';
  let size = 0;
  for (const line of lines) {
    const n = Buffer.byteLength(line);
    if (size > 0 && size + n > maxBytes) {
      chunks.push(chunk);
      chunk = '';
      size = 0;
    }
    chunk += line;
    size += n;
  }
  if (size > 0) chunks.push(chunk);
  return chunks;
}
