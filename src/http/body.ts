/**
 * Reading a whole body into memory, bounded. Used for request bodies a rule
 * must read and for upstream answers a hook must rewrite.
 */

import type { Readable } from 'node:stream';

/**
 * Collect `stream` into one Buffer, with plain listeners (an async iterator
 * costs more than the read on the hot path). Past `max` bytes it stops
 * reading (the stream is paused, not destroyed: the caller decides whether
 * the connection can still carry an answer) and rejects with `tooLarge()`.
 * A stream that closes before its end rejects too. At the end the listeners
 * stay (the stream emits no more data; removing four listeners cost more than
 * the rest of a small read): a later 'error' or 'close' then changes nothing.
 */
export function readBounded(stream: Readable, max: number, tooLarge: () => Error): Promise<Buffer> {
  return readWhole(stream, max, tooLarge, asIs);
}

const asIs = (body: Buffer): Buffer => body;

/**
 * readBounded, then `use` on the body, in the same promise (no second one for
 * a `.then`): it resolves with what `use` returns and rejects with what it throws.
 */
export function readWhole<T>(stream: Readable, max: number, tooLarge: () => Error, use: (body: Buffer) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > max) {
        cleanup();
        stream.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(b);
    };
    const onEnd = () => {
      ended = true;
      try {
        resolve(use(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
      } catch (err) {
        reject(err as Error);
      }
    };
    const onError = (err: Error) => {
      if (ended) return;
      cleanup();
      reject(err);
    };
    const onClose = () => {
      if (ended) return;
      cleanup();
      reject(new Error('the stream closed before its end'));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/**
 * Read a fetch Response's body into one Buffer, bounded: a declared
 * Content-Length past `max` is refused before reading, and a chunked answer
 * is counted as it arrives and cancelled (its connection closed) as soon as it
 * passes `max`, rejecting with `tooLarge()` either way. For answers of other
 * servers Warden reads whole (provider tokens, key sets, metadata).
 */
export async function readResponseBounded(res: Response, max: number, tooLarge: () => Error): Promise<Buffer> {
  if (Number(res.headers.get('content-length') ?? '0') > max) {
    await res.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (res.body === null) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}
