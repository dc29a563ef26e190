/**
 * A real HTTP upstream that records every request it receives (method, raw
 * target, raw headers, body), so tests can assert what Warden forwarded — or
 * that nothing was forwarded at all. A request is recorded as soon as its head
 * arrives, so one whose body was cut off on the way is recorded too.
 */

import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** The raw request target as received (path and query). */
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  /** The body bytes received so far (all of them once `complete`; none for a streaming handler's requests). */
  readonly body: Buffer;
  /** True once the whole body arrived (the message's end). */
  complete: boolean;
  /** True when the connection closed before the whole body arrived (the sender aborted the request). */
  aborted: boolean;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void | Promise<void>;

export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly requests: RecordedRequest[];
  /** Replace the handler (default: 200 JSON echo of method, url and body). */
  setHandler(handler: UpstreamHandler): void;
  /** The handler for requests whose body must stream (not read before the handler runs). */
  setStreamingHandler(handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

const echo: UpstreamHandler = (req, res, body) => {
  const payload = JSON.stringify({ ok: true, method: req.method, url: req.url, body: body.toString('utf8') });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
};

/** Start a recording upstream on a free loopback port. */
export async function startUpstream(handler: UpstreamHandler = echo): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  let current = handler;
  let streaming: ((req: IncomingMessage, res: ServerResponse) => void) | null = null;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let joined: Buffer | null = null;
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      get body() {
        return (joined ??= Buffer.concat(chunks));
      },
      complete: false,
      aborted: false,
    };
    requests.push(recorded);
    req.on('end', () => (recorded.complete = true));
    // req.complete: the parser saw the message's end, whether or not a handler read the body.
    req.on('close', () => {
      recorded.complete ||= req.complete;
      recorded.aborted = !recorded.complete;
    });
    // A streaming handler reads the body itself (a 'data' listener here would take its backpressure away).
    if (streaming) return void streaming(req, res);
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      joined = null;
    });
    req.on('end', () => {
      Promise.resolve(current(req, res, recorded.body)).catch((err) => {
        res.destroy(err as Error);
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setHandler(h) {
      streaming = null;
      current = h;
    },
    setStreamingHandler(h) {
      streaming = h;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Write `chunk` `count` times to `res` as fast as its reader takes them (waiting on 'drain'), then end it. */
export function writeRepeated(res: ServerResponse, chunk: Buffer, count: number): void {
  let sent = 0;
  const pump = () => {
    while (sent < count) {
      sent++;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}
