/**
 * A real HTTP upstream that records every request it receives (method, raw
 * target, raw headers, body), so tests can assert what Warden forwarded — or
 * that nothing was forwarded at all.
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
  body: Buffer;
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
    if (streaming) {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0) });
      streaming(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      Promise.resolve(current(req, res, body)).catch((err) => {
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
