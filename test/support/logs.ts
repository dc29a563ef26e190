/** The one log capture of the suite: a real Warden logger whose JSON lines stay in memory to be grepped. */

import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observability/logger.js';

export interface CapturedLogs {
  /** A Warden logger writing into `lines`. */
  readonly logger: Logger;
  /** The same sink as a stream, for code that builds its own logger. */
  readonly stream: Writable;
  /** Every chunk written so far (one JSON line each for pino). */
  readonly lines: string[];
  /** Everything written so far. */
  text(): string;
}

/** Capture logs at `level` (default debug, so tests can grep everything Warden says). */
export function captureLogs(level = 'debug'): CapturedLogs {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level, destination: stream }), stream, lines, text: () => lines.join('') };
}
