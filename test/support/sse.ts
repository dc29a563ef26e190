/**
 * The MCP SSE rewriter (src/mcp/sse.ts) over an iterable source, as an async
 * generator of the event texts it emits, one per event: how the parser and
 * rewriter tests feed it chunks and read what the agent would get.
 */

import { Readable } from 'node:stream';
import { createSseRewriter, type SseRewrite } from '../../src/mcp/sse.js';

export async function* rewriteSse(source: AsyncIterable<Buffer | string>, rewrite: SseRewrite, maxEventBytes: number): AsyncGenerator<string> {
  const stage = createSseRewriter(rewrite, maxEventBytes);
  const input = Readable.from(source, { objectMode: false });
  input.on('error', (err) => stage.destroy(err));
  input.pipe(stage);
  try {
    for await (const text of stage) yield text as string;
  } finally {
    input.destroy();
  }
}
