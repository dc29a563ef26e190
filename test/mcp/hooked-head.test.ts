/**
 * The head of a hooked (MCP) answer (#17): when the MCP response hook hands
 * the upstream's answer back with its headers unread (a tools/call answer
 * passed unchanged), the proxy writes the upstream's raw head, filtered as
 * Relay filters it, instead of building header objects. The agent must see
 * the same fields either way, values byte for byte.
 *
 * A raw TCP upstream gives full control of the head (duplicates, Connection
 * tokens, cookies, the identity assertion, a reflected x-request-id).
 */

import { createServer as createHttpServer, request as httpRequest, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { WardenError } from '../../src/core/errors.js';
import { createMcpResponseBuffer, createMcpResponseHook, essenceOf, mediaTypeEssence } from '../../src/mcp/response-hook.js';
import { createToolsListRewriter } from '../../src/mcp/list-filter.js';
import type { SessionBindings } from '../../src/mcp/sessions.js';
import type { RequestState } from '../../src/pipeline/context.js';
import { createProxy, type ForwardRequest, type HookedResponse, type Proxy, type UpstreamResponse } from '../../src/proxy/forward.js';
import { downstreamField, downstreamHeaders, rawHeaderNames } from '../../src/proxy/headers.js';
import { trustedProxies } from '../../src/proxy/trust.js';
import { util as undiciUtil } from '../../src/proxy/undici-pool.js';

const BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'hello' }], isError: false } });

/** The head lines the upstream sends next (after its status line); `{len}` becomes the body's length. */
let headLines: string[] = [];
let upstream: NetServer;
let front: Server;
let proxy: Proxy;
let frontUrl: string;
let upstreamUrl: string;
/** Whether the proxy wrote the agent's last head from a flat list (the raw head) rather than an object. */
let headWasList = false;
/** Which hook the next request runs. */
let hookOf: () => ForwardRequest['responseHook'];

function answer(socket: Socket): void {
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      buf = buf.subarray(end + 4 + length);
      const body = Buffer.from(BODY);
      const lines = headLines.map((l) => l.replace('{len}', String(body.length)));
      socket.write(Buffer.concat([Buffer.from(['HTTP/1.1 200 OK', ...lines, '', ''].join('\r\n'), 'latin1'), body]));
    }
  });
}

/** The MCP stage's response hook for a tools/call. */
function mcpHook(): NonNullable<ForwardRequest['responseHook']> {
  return createMcpResponseHook({
    routeName: 'files',
    state: { method: 'POST' } as RequestState,
    sessions: {} as SessionBindings,
    rewriter: createToolsListRewriter(new Set(), async (tools) => [...tools]),
    maxBytes: 1 << 20,
    expectsMessages: true,
    expectsLists: false,
  });
}

/** The MCP stage's hooks for a tools/call, on a route whose identity assertion header is `x-assert`. */
function mcpState(): ForwardRequest {
  return {
    id: 'warden-req',
    method: 'POST',
    body: Buffer.from('{}'),
    upstreamHeaders: [],
    assertionHeaders: new Set(['x-assert']),
    responseHeaders: ['X-Extra', 'warden', 'link', '</warden>; rel=preload'],
    responseBuffer: createMcpResponseBuffer(1 << 20),
    responseHook: hookOf() ?? mcpHook(),
  };
}

beforeAll(async () => {
  upstream = createNetServer(answer);
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  proxy = createProxy({ trusted: trustedProxies([]), bodyLimit: 1 << 20 });
  front = createHttpServer((req, res) => {
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = ((...args: unknown[]) => {
      headWasList = Array.isArray(args[1]);
      return writeHead(...args);
    }) as typeof res.writeHead;
    proxy.forward(
      mcpState(),
      req,
      res,
      { origin: upstreamUrl, host: 'upstream', path: '/mcp', timeoutMs: 2_000 },
      {
        clientIp: '127.0.0.1',
        host: 'warden',
        upstreamHost: 'upstream',
        proto: 'http',
        requestId: 'warden-req',
        traceparent: '00-' + '1'.repeat(32) + '-' + '2'.repeat(16) + '-01',
      },
      (err?: WardenError) => {
        if (err && !res.headersSent) {
          res.writeHead(err.status ?? 500);
          res.end(err.message);
        }
      },
    );
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  frontUrl = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await proxy.close();
  front.closeAllConnections();
  await new Promise((r) => front.close(r));
  await new Promise((r) => upstream.close(r));
});

/** POST through the proxy; the agent's head as lower-case name/latin1 value pairs, grouped by name in arrival order. */
function post(): Promise<{ status: number; head: Record<string, string[]>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${frontUrl}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const head: Record<string, string[]> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) (head[res.rawHeaders[i].toLowerCase()] ??= []).push(res.rawHeaders[i + 1]);
        // Node's own framing fields of the agent's response, not the upstream's.
        delete head['date'];
        delete head['connection'];
        delete head['keep-alive'];
        resolve({ status: res.statusCode!, head, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end('{}');
  });
}

/** The MCP hook, after reading `headers` (the object path the proxy took for every answer before). */
function readingHook(): ForwardRequest['responseHook'] {
  const inner = mcpHook();
  return (res: UpstreamResponse) => {
    void res.headers;
    return inner(res) as HookedResponse;
  };
}

/** The answer with the head `lines`, through the MCP hook as it is and through one that reads `headers` first. */
async function bothWays(lines: string[], rawHead = true) {
  headLines = lines;
  hookOf = () => undefined;
  const raw = await post();
  const rawWasList = headWasList;
  hookOf = readingHook;
  const built = await post();
  expect({ rawWasList, builtWasList: headWasList }).toEqual({ rawWasList: rawHead, builtWasList: false });
  return { raw, built };
}

const HEADS: Array<[string, string[], boolean?]> = [
  ['a plain answer', ['Content-Type: application/json', 'Content-Length: {len}', 'Server: up']],
  [
    'cookies, the identity assertion, a reflected x-request-id and the route assertion header',
    [
      'content-type: application/json',
      'Content-Length: {len}',
      'Set-Cookie: a=1',
      'set-cookie: b=2',
      'Warden-Identity: reflected',
      'X-Request-Id: upstream-id',
      'X-Assert: reflected',
    ],
  ],
  [
    'repeated fields and Warden’s own names',
    ['Content-Type: application/json', 'Content-Length: {len}', 'Link: </a>; rel=preload', 'Vary: a', 'link: </b>; rel=preload', 'Vary: b', 'x-extra: up'],
  ],
  [
    'hop-by-hop fields',
    ['Content-Type: application/json', 'Content-Length: {len}', 'Keep-Alive: timeout=5', 'Connection: keep-alive', 'Proxy-Authenticate: x'],
  ],
  // (Rare: the hook reads the fields through the headers object then, and the head is written from it.)
  ['Connection naming a field', ['Content-Type: application/json', 'Content-Length: {len}', 'Connection: x-hop', 'X-Hop: 1', 'X-Kept: 2'], false],
];

describe('the head of a tools/call answer passed unchanged', () => {
  it.each(HEADS)('is the same from the raw head as from header objects: %s', async (_what, lines, rawHead) => {
    const { raw, built } = await bothWays(lines, rawHead);
    expect(raw.status).toBe(200);
    expect(raw.body).toBe(BODY);
    expect(built.body).toBe(BODY);
    expect(raw.head).toEqual(built.head);
    // What the agent must (not) see, whichever way the head was written.
    expect(raw.head['x-request-id']).toEqual(['warden-req']);
    expect(raw.head['x-extra']?.at(-1)).toBe('warden');
    expect(raw.head['link']?.at(-1)).toBe('</warden>; rel=preload');
    for (const hidden of ['set-cookie', 'warden-identity', 'x-assert', 'keep-alive', 'proxy-authenticate', 'x-hop']) expect(raw.head[hidden]).toBeUndefined();
    expect(raw.head['content-length']).toEqual([String(Buffer.byteLength(BODY))]);
  });

  it('passes a value that is not ASCII as the upstream’s bytes', async () => {
    const { raw, built } = await bothWays(['Content-Type: application/json', 'Content-Length: {len}', 'X-Name: caf\u00c3\u00a9']);
    // The agent reads values as latin1: the upstream's two UTF-8 bytes of é arrive as two characters.
    expect(raw.head['x-name']).toEqual(['caf\u00c3\u00a9']);
    expect(built.head['x-name']).toEqual(['caf\u00c3\u00a9']);
  });
});

describe('the MCP hook on a tools/call answer', () => {
  it('hands the proxy’s answer back with its headers unread (what lets the proxy send the raw head)', () => {
    const body = Buffer.from(BODY);
    const fields: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(body.length) };
    const res = {
      statusCode: 200,
      body,
      field: (name: string) => fields[name],
      get headers(): Record<string, string> {
        throw new Error('the headers object was built');
      },
    };
    expect(mcpHook()(res)).toBe(res);
  });
});

// downstreamField against the object it stands in for, on random heads.
const NAMES = ['content-type', 'content-length', 'content-encoding', 'mcp-session-id', 'connection', 'x-hop', 'set-cookie', 'x-assert', 'keep-alive', 'close'];
const nameCase = fc
  .tuple(fc.constantFrom(...NAMES), fc.constantFrom('lower', 'upper', 'title'))
  .map(([n, c]) => (c === 'lower' ? n : c === 'upper' ? n.toUpperCase() : n.replace(/(^|-)([a-z])/g, (_m, d: string, l: string) => d + l.toUpperCase())));
const value = fc.oneof(fc.constantFrom('keep-alive', 'close', 'x-hop', 'application/json', 'x-hop, close', '12', 'a\u00e9'), fc.string({ maxLength: 6 }));
const rawHead = fc
  .array(fc.tuple(nameCase, value), { maxLength: 8 })
  .map((pairs) => pairs.flatMap(([n, v]) => [Buffer.from(n, 'latin1'), Buffer.from(v, 'utf8')]));

describe('downstreamField', () => {
  it('reads what downstreamHeaders(parseHeaders(raw)) holds, or says it cannot (null)', () => {
    fc.assert(
      fc.property(rawHead, fc.constantFrom(...NAMES), fc.boolean(), (raw, name, assertion) => {
        const hidden = assertion ? new Set(['x-assert']) : undefined;
        const got = downstreamField(raw, rawHeaderNames(raw), name, hidden);
        if (got === null) return;
        expect(got).toEqual(downstreamHeaders(undiciUtil.parseHeaders(raw), hidden)[name]);
      }),
      { numRuns: 5_000 },
    );
  });

  it('answers without building the object for an ordinary head', () => {
    const raw = ['Content-Type', 'application/json', 'Connection', 'keep-alive', 'content-length', '12'].map((s) => Buffer.from(s));
    const names = rawHeaderNames(raw);
    expect(names).toEqual(['content-type', 'connection', 'content-length']);
    expect(downstreamField(raw, names, 'content-type')).toBe('application/json');
    expect(downstreamField(raw, names, 'content-encoding')).toBeUndefined();
    expect(downstreamField(raw, names, 'content-length')).toBe('12');
  });
});

describe('mediaTypeEssence', () => {
  it('remembers the last Content-Type and still answers every value as computed', () => {
    const types = fc.oneof(
      fc.constantFrom('application/json', 'Application/JSON; charset=utf-8', 'text/event-stream', 'application/json, text/html', 'text/plain', ' json ', ''),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.array(types, { maxLength: 12 }), (values) => {
        for (const v of values) expect(mediaTypeEssence(v)).toBe(essenceOf(v));
      }),
      { numRuns: 2_000 },
    );
    expect(mediaTypeEssence('application/json')).toBe('application/json');
    expect(mediaTypeEssence('application/json')).toBe('application/json');
    expect(mediaTypeEssence('text/event-stream; x=1')).toBe('text/event-stream');
    expect(mediaTypeEssence('a, b')).toBeUndefined();
    expect(mediaTypeEssence(undefined)).toBeUndefined();
  });
});
