/**
 * The relay's last-chunk fast path at the proxy's level: a real upstream and a
 * real agent connection around createProxy. When the upstream's head declares
 * the body's length (one Content-Length, no Transfer-Encoding), the chunk that
 * completes it goes out with `res.end(chunk)` (no separate `res.write`); any
 * other answer is written chunk by chunk and ended on undici's onComplete.
 * Each case checks the bytes the agent got, and how they were written.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { WardenError } from '../core/errors.js';
import { createProxy, type ForwardRequest, type Proxy } from './forward.js';
import { trustedProxies } from './trust.js';
import { forwardOnce } from '../../test/support/forward.js';
import { writeRepeated } from '../../test/support/upstream.js';

type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void;

let upstreamHandler: UpstreamHandler = (_req, res) => res.end();
let upstream: Server;
let upstreamUrl: string;
let upstreamPort: number;
let front: Server;
let frontUrl: string;
let proxy: Proxy;
/** How the last response was written to the agent: body bytes passed to res.write, and to res.end. */
let written: { writes: number; endChunks: number };
/** res.write calls of the last response with an empty chunk, and how many 'drain' listeners were added to it. */
let empties = 0;
let drainListeners = 0;
let settled: Promise<WardenError | undefined>;

const state = (method = 'GET'): ForwardRequest => ({ id: 'req-1', method, upstreamHeaders: [] });

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => upstreamHandler(req, res));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = (upstream.address() as AddressInfo).port;
  upstreamUrl = `http://127.0.0.1:${upstreamPort}`;
  proxy = createProxy({ trusted: trustedProxies([]), bodyLimit: 1 << 20 });
  front = createServer((req, res) => {
    const seen = (written = { writes: 0, endChunks: 0 });
    empties = drainListeners = 0;
    res.on('newListener', (event: string) => {
      if (event === 'drain') drainListeners++;
    });
    const write = res.write.bind(res) as (chunk: Buffer) => boolean;
    const end = res.end.bind(res) as (chunk?: Buffer) => ServerResponse;
    res.write = ((chunk: Buffer) => {
      seen.writes++;
      if (chunk.length === 0) empties++;
      return write(chunk);
    }) as typeof res.write;
    res.end = ((chunk?: Buffer) => {
      if (chunk !== undefined && typeof chunk !== 'function') seen.endChunks++;
      return end(chunk);
    }) as typeof res.end;
    settled = forwardOnce(proxy, state(req.method), req, res, { origin: upstreamUrl, host: 'upstream', path: '/x', timeoutMs: 2_000 });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await proxy.close();
  front.closeAllConnections();
  upstream.closeAllConnections();
  await new Promise((r) => front.close(r));
  await new Promise((r) => upstream.close(r));
});

function get(method = 'GET'): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${frontUrl}/x`, { method }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const tick = () => new Promise((r) => setTimeout(r, 5));

/** A body of `n` bytes that differ from one position to the next (a misplaced or lost byte shows). */
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff));

describe('relay: the chunk that completes a declared body ends the response', () => {
  it('a body in one chunk goes out with res.end, never res.write', async () => {
    const body = bytes(612);
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
      res.end(body);
    };
    const got = await get();
    expect(got.status).toBe(200);
    expect(got.headers['content-length']).toBe('612');
    expect(got.headers['x-request-id']).toBe('req-1');
    expect(got.body.equals(body)).toBe(true);
    expect(written).toEqual({ writes: 0, endChunks: 1 });
    expect(await settled).toBeUndefined();
  });

  it('a declared body in several chunks: all but the last are written, the last ends the response', async () => {
    const body = bytes(3000);
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-length': String(body.length) });
      void (async () => {
        for (const [a, b] of [
          [0, 1000],
          [1000, 2000],
          [2000, 3000],
        ]) {
          res.write(body.subarray(a, b));
          await tick();
        }
        res.end();
      })();
    };
    const got = await get();
    expect(got.status).toBe(200);
    expect(got.body.equals(body)).toBe(true);
    expect(written.endChunks).toBe(1);
    expect(written.writes).toBeGreaterThanOrEqual(1);
    expect(await settled).toBeUndefined();
  });

  it('a chunked answer (no Content-Length) is written chunk by chunk and ended on completion', async () => {
    const body = bytes(2000);
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      void (async () => {
        res.write(body.subarray(0, 700));
        await tick();
        res.write(body.subarray(700));
        await tick();
        res.end();
      })();
    };
    const got = await get();
    expect(got.body.equals(body)).toBe(true);
    expect(written.endChunks).toBe(0);
    expect(written.writes).toBeGreaterThanOrEqual(2);
  });

  it('an empty declared body (Content-Length: 0) and a HEAD answer end on completion with no body', async () => {
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    };
    let got = await get();
    expect(got.status).toBe(200);
    expect(got.body.length).toBe(0);
    expect(written).toEqual({ writes: 0, endChunks: 0 });
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-length': '5000' });
      res.end();
    };
    got = await get('HEAD');
    expect(got.status).toBe(200);
    expect(got.headers['content-length']).toBe('5000');
    expect(got.body.length).toBe(0);
    expect(written).toEqual({ writes: 0, endChunks: 0 });
  });

  it('an upstream that dies before the declared length is reached gives the agent a cut, not a complete-looking answer', async () => {
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(bytes(400));
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest(`${frontUrl}/x`, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('end'));
        res.on('error', () => resolve('cut'));
        res.on('aborted', () => resolve('cut'));
      });
      req.on('error', () => resolve('cut'));
      req.end();
    });
    expect(outcome).toBe('cut');
    expect(written.endChunks).toBe(0);
  });

  it('keep-alive survives: two answers on one agent connection, each complete', async () => {
    const body = bytes(100);
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.end(body);
    };
    const port = (front.address() as AddressInfo).port;
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c) => {
        chunks.push(c);
        const all = Buffer.concat(chunks);
        const answers = all.toString('latin1').split('HTTP/1.1 200').length - 1;
        if (answers === 2 && all.length >= 2 * 100) {
          // Wait until the second body has fully arrived.
          const last = all.lastIndexOf('\r\n\r\n');
          if (all.length - (last + 4) >= 100) {
            socket.end();
            resolve(all);
          }
        }
      });
      socket.on('error', reject);
      socket.write('GET /x HTTP/1.1\r\nhost: warden\r\n\r\nGET /x HTTP/1.1\r\nhost: warden\r\n\r\n');
    });
    const text = raw.toString('latin1');
    const parts = text.split('HTTP/1.1 200').slice(1);
    expect(parts).toHaveLength(2);
    for (const part of parts) expect(Buffer.from(part.slice(part.indexOf('\r\n\r\n') + 4, part.indexOf('\r\n\r\n') + 104), 'latin1').equals(body)).toBe(true);
  });
});

describe('relay: a large body to an agent that reads slowly', () => {
  it('arrives whole, with no empty writes and one drain listener however often the agent makes the upstream wait', async () => {
    // 8 MB in 64 KB chunks: the agent's socket fills many times over.
    const chunk = bytes(64 * 1024);
    const count = 128;
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length * count) });
      writeRepeated(res, chunk, count);
    };
    const got = await new Promise<{ length: number; same: boolean }>((resolve, reject) => {
      const req = httpRequest(`${frontUrl}/x`, (res) => {
        let length = 0;
        let same = true;
        let carry = 0;
        res.on('data', (c: Buffer) => {
          // Compare with the repeating chunk, wherever the reads split it.
          for (let i = 0; i < c.length; i += 4096) {
            const n = Math.min(4096, c.length - i);
            const at = (carry + i) % chunk.length;
            if (at + n <= chunk.length && !c.subarray(i, i + n).equals(chunk.subarray(at, at + n))) same = false;
          }
          carry = (carry + c.length) % chunk.length;
          length += c.length;
          // Read slowly: the relay must wait on this agent again and again.
          res.pause();
          setTimeout(() => res.resume(), 1);
        });
        res.on('end', () => resolve({ length, same }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    expect(got).toEqual({ length: chunk.length * count, same: true });
    // Each wait used to end with an empty chunk from undici written to the agent (an empty write(2)).
    expect(written.writes).toBeGreaterThan(10);
    expect(empties).toBe(0);
    // One listener for the whole answer, not one per wait.
    expect(drainListeners).toBe(1);
    expect(await settled).toBeUndefined();
  });
});
