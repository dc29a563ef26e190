/**
 * The hooked forwarding path (MCP) at the proxy's level: a real upstream and a
 * real agent connection around createProxy, the response hook and buffering
 * decision set by hand as the MCP stage does. Covers the dispatch handler
 * (HookedExchange): a JSON answer read whole however it is chunked, the bound
 * and its error, streaming with backpressure, and the agent leaving aborting
 * the upstream in both modes, and the upstream's deadlines (Warden's, as for
 * the relay: its silence counts, a hook's wait does not).
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { WardenError } from '../core/errors.js';
import { createProxy, type ForwardRequest, type HookedResponse, type Proxy, type UpstreamResponse } from './forward.js';
import { trustedProxies } from './trust.js';
import { forwardOnce } from '../../test/support/forward.js';

type UpstreamHandler = (req: IncomingMessage, res: ServerResponse) => void;

let upstreamHandler: UpstreamHandler = (_req, res) => res.end();
let upstream: Server;
let upstreamUrl: string;
/** Resolves with whether the upstream's last response was cut (closed before it finished). */
let upstreamCut: Promise<boolean>;
let front: Server;
let frontUrl: string;
let proxy: Proxy;
let makeState: () => ForwardRequest;
/** The state of the last forwarded request (the proxy sets `cut` on it). */
let lastState: ForwardRequest;
let settled: Promise<WardenError | undefined>;
/** The route's upstream timeout (tests of the deadlines shorten it). */
let timeoutMs = 2_000;

const LIMIT = 1000;
const tooLarge = () => new WardenError('upstream_unavailable', `upstream MCP answer exceeds ${LIMIT} bytes`, { status: 502, reason: 'upstream_too_large' });
let seen: { body: Readable | Buffer } | null = null;

/** Buffers JSON like the MCP stage; the hook echoes what it got (wrapped) so the test sees the mode and the bytes. */
function hookedState(): ForwardRequest {
  return {
    id: 'req-1',
    method: 'POST',
    body: Buffer.from('{}'),
    upstreamHeaders: [],
    responseBuffer: (status, header) => (status === 200 && header('content-type') === 'application/json' ? { maxBytes: LIMIT, tooLarge } : undefined),
    responseHook: async (res: UpstreamResponse): Promise<HookedResponse> => {
      seen = { body: res.body };
      if (Buffer.isBuffer(res.body)) {
        const out = Buffer.from(JSON.stringify({ got: res.body.toString('utf8') }));
        return { statusCode: res.statusCode, headers: { 'content-type': 'application/json', 'content-length': String(out.length) }, body: out };
      }
      return res as HookedResponse;
    },
  };
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    upstreamCut = new Promise((resolve) => res.on('close', () => resolve(!res.writableFinished)));
    req.resume();
    req.on('end', () => upstreamHandler(req, res));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  proxy = createProxy({ trusted: trustedProxies([]), bodyLimit: 1 << 20 });
  front = createServer((req, res) => {
    lastState = makeState();
    settled = forwardOnce(proxy, lastState, req, res, { origin: upstreamUrl, host: 'upstream', path: '/mcp', timeoutMs });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  makeState = hookedState;
});

afterEach(() => {
  seen = null;
  timeoutMs = 2_000;
  makeState = hookedState;
});

afterAll(async () => {
  await proxy.close();
  front.closeAllConnections();
  upstream.closeAllConnections();
  await new Promise((r) => front.close(r));
  await new Promise((r) => upstream.close(r));
});

function post(): Promise<{ status: number; headers: IncomingMessage['headers']; rawHeaders: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${frontUrl}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end('{}');
  });
}

/** Writes `parts` one per event-loop turn (each its own TCP write: undici sees many small chunks). */
async function trickle(res: ServerResponse, parts: string[], end = true): Promise<void> {
  for (const p of parts) {
    res.write(p);
    await new Promise((r) => setTimeout(r, 1));
  }
  if (end) res.end();
}

describe('hooked forwarding (dispatch handler)', () => {
  it('reads a JSON answer split across many small chunks into one Buffer for the hook', async () => {
    const json = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'x'.repeat(300) } });
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no Content-Length
      void trickle(res, json.match(/.{1,7}/gs)!);
    };
    const got = await post();
    expect(got.status).toBe(200);
    expect(got.headers['x-request-id']).toBe('req-1');
    expect(Buffer.isBuffer(seen!.body)).toBe(true);
    expect(JSON.parse(got.body)).toEqual({ got: json });
    expect(await settled).toBeUndefined();
  });

  it('refuses an answer over the bound with the hook error and stops reading the upstream', async () => {
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Over the bound, then the upstream would go on forever: only an abort ends it.
      void trickle(
        res,
        Array.from({ length: 30 }, () => 'y'.repeat(100)),
        false,
      );
    };
    const got = await post();
    expect(got.status).toBe(502);
    expect(got.body).toBe(`upstream MCP answer exceeds ${LIMIT} bytes`);
    const err = await settled;
    expect(err).toBeInstanceOf(WardenError);
    expect(err!.reason).toBe('upstream_too_large');
    expect(seen).toBeNull(); // the hook never ran
    expect(await upstreamCut).toBe(true);
  });

  it('accepts an answer of exactly the bound', async () => {
    const json = JSON.stringify({ s: 'z'.repeat(LIMIT - 8) });
    expect(json.length).toBe(LIMIT);
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      void trickle(res, json.match(/.{1,50}/gs)!);
    };
    const got = await post();
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body)).toEqual({ got: json });
  });

  it('sends what a hook answers synchronously (no promise) with the head, and settles', async () => {
    const json = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text: 'y'.repeat(200) } });
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      void trickle(res, json.match(/.{1,40}/gs)!);
    };
    let returned: unknown;
    makeState = () => ({
      ...hookedState(),
      responseHook: (res: UpstreamResponse): HookedResponse => {
        seen = { body: res.body };
        const out = { statusCode: 201, headers: { 'content-type': 'application/json', 'content-length': String((res.body as Buffer).length) }, body: res.body };
        returned = out;
        return out;
      },
    });
    try {
      const got = await post();
      expect(returned).not.toBeInstanceOf(Promise);
      expect(got.status).toBe(201);
      expect(got.headers['x-request-id']).toBe('req-1');
      expect(got.body).toBe(json);
      expect(await settled).toBeUndefined();
    } finally {
      makeState = hookedState;
    }
  });

  it('sends an answer the hook hands back as it came with the same head whether or not the hook read its fields as an object', async () => {
    const json = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [] } });
    upstreamHandler = (_req, res) => {
      // Lines the agent gets (a repeated name among them) and lines it never gets (its own request id is replaced).
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-a', ['1', '2']);
      res.setHeader('set-cookie', 'session=upstream');
      res.setHeader('x-request-id', 'upstream-id');
      res.setHeader('x-secret-assertion', 'for the upstream only');
      res.end(json);
    };
    /** The hook hands the proxy's answer back (as the MCP hook does for a tools/call answer); `read` reads `headers` first. */
    const asItCame =
      (read: boolean) =>
      (res: UpstreamResponse): HookedResponse => {
        seen = { body: res.body };
        if (read) expect(res.headers['x-a']).toEqual(['1', '2']);
        else expect(res.field?.('x-a')).toEqual(['1', '2']);
        return res as HookedResponse;
      };
    const heads: Array<Array<[string, string]>> = [];
    for (const read of [false, true]) {
      makeState = () => ({
        ...hookedState(),
        assertionHeaders: new Set(['x-secret-assertion']),
        responseHeaders: ['RateLimit', '"default";r=9;t=1'],
        responseHook: asItCame(read),
      });
      const got = await post();
      expect(got.status).toBe(200);
      expect(got.body).toBe(json);
      expect(await settled).toBeUndefined();
      const lines: Array<[string, string]> = [];
      for (let i = 0; i < got.rawHeaders.length; i += 2) lines.push([got.rawHeaders[i].toLowerCase(), got.rawHeaders[i + 1]]);
      heads.push(lines.filter(([n]) => n !== 'date' && n !== 'connection' && n !== 'keep-alive').sort());
    }
    makeState = hookedState;
    expect(heads[0]).toEqual(heads[1]);
    expect(heads[0]).toEqual(
      [
        ['content-type', 'application/json'],
        ['x-a', '1'],
        ['x-a', '2'],
        ['content-length', String(json.length)],
        ['x-request-id', 'req-1'],
        ['content-security-policy', 'sandbox'],
        ['ratelimit', '"default";r=9;t=1'],
      ].sort(),
    );
  });

  it('refuses with the error a synchronous hook throws, before anything is sent', async () => {
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    };
    makeState = () => ({
      ...hookedState(),
      responseHook: (): HookedResponse => {
        throw new WardenError('upstream_unavailable', 'upstream MCP answer is not JSON', { status: 502, reason: 'upstream_bad_json' });
      },
    });
    try {
      const got = await post();
      expect(got.status).toBe(502);
      expect(got.body).toBe('upstream MCP answer is not JSON');
      expect((await settled)!.reason).toBe('upstream_bad_json');
    } finally {
      makeState = hookedState;
    }
  });

  it('streams anything else to the hook as a Readable, with backpressure, byte for byte', async () => {
    const big = Buffer.alloc(4 << 20, 'a');
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(big);
    };
    const got = await post();
    expect(got.status).toBe(200);
    expect(seen!.body).toBeInstanceOf(Readable);
    expect(got.body.length).toBe(big.length);
    expect(got.headers['x-request-id']).toBe('req-1');
    expect(lastState.cut).toBeUndefined();
  });

  it('marks a streamed answer the upstream breaks off as cut by the upstream', async () => {
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"one":1}\n\n');
      setTimeout(() => res.socket?.destroy(), 30);
    };
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest(`${frontUrl}/mcp`, { method: 'POST' }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('end'));
        res.on('aborted', () => resolve('cut'));
        res.on('error', () => resolve('cut'));
      });
      req.on('error', () => resolve('cut'));
      req.end('{}');
    });
    expect(outcome).toBe('cut');
    await settled;
    expect(lastState.cut).toBe('upstream');
  });

  it.each([
    ['a JSON answer being read whole', 'application/json'],
    ['a streamed answer', 'text/event-stream'],
  ])('aborts the upstream when the agent leaves during %s', async (_what, type) => {
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': type });
      res.write('{"partial":');
      // and never finishes: only the abort ends it
    };
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${frontUrl}/mcp`, { method: 'POST' }, (res) => {
        res.once('data', () => req.destroy());
      });
      req.on('error', () => {});
      req.on('close', resolve);
      req.end('{}');
      // Buffered: the agent sees nothing before the end, so it leaves once the upstream has started answering.
      if (type === 'application/json') setTimeout(() => req.destroy(), 150);
      setTimeout(() => reject(new Error('the agent request never closed')), 5_000);
    });
    const left = Date.now();
    expect(await upstreamCut).toBe(true);
    // Cut because the agent left, not by the 2 s body timeout.
    expect(Date.now() - left).toBeLessThan(1_000);
    await settled;
    expect(lastState.cut).toBe('agent');
  });

  it("reads the upstream's own fields in the head hooks, dropped ones included, on both header paths", async () => {
    for (const connection of ['keep-alive', 'x-a, keep-alive']) {
      upstreamHandler = (_req, res) => {
        res.setHeader('connection', connection);
        res.setHeader('mcp-session-id', 's-1');
        res.setHeader('x-a', ['1', '2']);
        res.setHeader('set-cookie', 'c=1');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      };
      const asked: Record<string, string | undefined> = {};
      let fields: Record<string, string | string[]> = {};
      makeState = () => {
        const state = hookedState();
        return {
          ...state,
          responseHead: (_status, header) => {
            for (const name of ['connection', 'mcp-session-id', 'x-a', 'set-cookie', 'content-type', 'content-encoding']) asked[name] = header(name);
          },
          responseHook: (res) => {
            fields = { ...res.headers };
            return state.responseHook!(res);
          },
        };
      };
      try {
        const got = await post();
        expect(got.status).toBe(200);
      } finally {
        makeState = hookedState;
      }
      expect(asked, connection).toEqual({
        connection,
        'mcp-session-id': 's-1',
        'x-a': '1',
        'set-cookie': 'c=1',
        'content-type': 'application/json',
        'content-encoding': undefined,
      });
      // The hook gets the fields the agent may see: no hop-by-hop, no Set-Cookie, nothing Connection names.
      expect(fields['mcp-session-id'], connection).toBe('s-1');
      expect(fields['x-a'], connection).toEqual(connection === 'keep-alive' ? ['1', '2'] : undefined);
      expect(fields.connection, connection).toBeUndefined();
      expect(fields['set-cookie'], connection).toBeUndefined();
    }
  });

  it('answers 502 when the upstream cannot be reached and 504 when it does not answer in time', async () => {
    upstreamHandler = (_req, res) => res.socket!.destroy();
    const gone = await post();
    expect(gone.status).toBe(502);
    upstreamHandler = () => {}; // never answers
    const slow = await post();
    expect(slow.status).toBe(504);
    expect((await settled)!.reason).toBe('upstream_timeout');
  });
});

describe('hooked forwarding: the upstream deadline', () => {
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  it('answers 504 upstream_body_timeout when the upstream goes silent in the middle of a JSON answer', async () => {
    timeoutMs = 200;
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"jsonrpc":"2.0",'); // and nothing more
    };
    const got = await post();
    expect(got.status).toBe(504);
    const err = await settled;
    expect(err?.status).toBe(504);
    expect(err?.reason).toBe('upstream_body_timeout');
    expect(await upstreamCut).toBe(true);
  });

  it('does not count a head hook holding the answer as the upstream being silent', async () => {
    timeoutMs = 200;
    makeState = () => ({ ...hookedState(), responseHead: () => sleep(700) });
    upstreamHandler = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":1}');
    const got = await post();
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body)).toEqual({ got: '{"ok":1}' });
    expect(await settled).toBeUndefined();
  });

  it('does not count a hook that has not read its stream yet (backpressure) as the upstream being silent', async () => {
    timeoutMs = 200;
    const big = 'y'.repeat(256 * 1024);
    makeState = () => ({
      ...hookedState(),
      // The hook takes its time before it reads: the upstream waits on Warden, not the other way round.
      responseHook: async (res: UpstreamResponse): Promise<HookedResponse> => {
        await sleep(700);
        return res as HookedResponse;
      },
    });
    upstreamHandler = (_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(big);
    const got = await post();
    expect(got.status).toBe(200);
    expect(got.body.length).toBe(big.length);
    expect(await settled).toBeUndefined();
  });

  it('still times out an upstream that never sends its head', async () => {
    timeoutMs = 200;
    upstreamHandler = () => {}; // never answers
    const started = Date.now();
    const got = await post();
    expect(got.status).toBe(504);
    expect((await settled)!.reason).toBe('upstream_timeout');
    // Two ticks (100 ms) late at most; never early.
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });
});

describe('hooked forwarding: a stream that failed before the hook returned it', () => {
  it('answers with the failure (504 upstream_body_timeout), not a response that never ends', async () => {
    timeoutMs = 200;
    makeState = () => ({
      ...hookedState(),
      responseHook: async (res: UpstreamResponse): Promise<HookedResponse> => {
        await new Promise((r) => setTimeout(r, 700));
        return res as HookedResponse;
      },
    });
    upstreamHandler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part of it'); // and nothing more
    };
    const got = await post();
    expect(got.status).toBe(504);
    expect((await settled)?.reason).toBe('upstream_body_timeout');
  });
});
