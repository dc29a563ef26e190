/**
 * Shutdown with keep-alive connections: once draining begins, every answer
 * says `Connection: close` and its connection is closed after it. Without it a client (or a load balancer's pool)
 * sends its next request on the kept-alive connection during the drain;
 * Warden forwards it, and cuts it at `shutdown_timeout`: the upstream ran it,
 * the client never learns the answer.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { until } from '../support/eventually.js';

let upstream: Upstream;
beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

const config = (up: string) => `
server: { shutdown_timeout: 1s }
store: { driver: memory }
routes:
  - name: work
    match: { path: "/work/*" }
    upstream: { url: "${up}" }
    public: true
`;

/** One keep-alive connection that reads whole answers (Content-Length framed) and says when the server closed it. */
function keepAlive(url: string) {
  const { hostname, port } = new URL(url);
  const socket: Socket = connect(Number(port), hostname);
  let buffered = '';
  let closed = false;
  const waiting: Array<(answer: string) => void> = [];
  const pump = () => {
    for (;;) {
      const head = buffered.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffered.slice(0, head))?.[1] ?? 0);
      if (buffered.length < head + 4 + length || waiting.length === 0) return;
      const answer = buffered.slice(0, head + 4 + length);
      buffered = buffered.slice(head + 4 + length);
      waiting.shift()!(answer);
    }
  };
  socket.on('data', (c) => {
    buffered += c.toString('latin1');
    pump();
  });
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  return {
    send(path: string): Promise<string> {
      const answer = new Promise<string>((r) => waiting.push(r));
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`);
      pump();
      return answer;
    },
    closed: () => closed,
    destroy: () => socket.destroy(),
  };
}

describe('shutdown with keep-alive connections', () => {
  let warden: WardenHandle;
  afterAll(async () => {
    await warden?.close().catch(() => {});
  });

  it('answers in flight when draining begins say Connection: close, their connection is closed, and nothing sent on it after reaches the upstream', async () => {
    warden = await startWarden({ config: config(upstream.url) });
    const slow = new Map<string, () => void>();
    upstream.setHandler(async (req, res) => {
      // /work/hold-* waits until the test lets it go; the rest answer after 300 ms.
      await new Promise<void>((r) => (req.url!.startsWith('/work/hold') ? slow.set(req.url!, r) : setTimeout(r, 300)));
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    });
    const a = keepAlive(warden.url);
    const b = keepAlive(warden.url);
    try {
      // A keeps the drain busy; B's first request is in flight when it begins.
      const held = a.send('/work/hold-a');
      const first = b.send('/work/first');
      await until(() => slow.has('/work/hold-a') && upstream.requests.some((r) => r.url === '/work/first'), { what: 'both at the upstream' });
      const closing = warden.gateway.close();

      const answer = await first;
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer).toMatch(/\r\nconnection: close\r\n/i);
      // What B sends next, on the connection it was told to close, is not run upstream.
      void b.send('/work/after-drain-began');
      await until(() => b.closed(), { timeoutMs: 2_000, what: 'B closed by Warden' });
      slow.get('/work/hold-a')!();
      expect(await held).toMatch(/\r\nconnection: close\r\n/i);
      await closing;
      expect(upstream.requests.map((r) => r.url)).not.toContain('/work/after-drain-began');
    } finally {
      a.destroy();
      b.destroy();
      for (const release of slow.values()) release();
    }
  });
});
