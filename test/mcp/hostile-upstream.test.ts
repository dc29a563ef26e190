/**
 * A hostile MCP upstream tries to get a tool past tools/list filtering: the
 * real MCP SDK client talks through a real Warden to an upstream that frames
 * its answers in ways the SDK accepts (empty `event:` lines, ids of another
 * type, a tools list on another request's stream). Whatever it tries, the
 * agent must see only the tools its rules allow (`write_file` has no rule).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';

const TOOLS = [
  { name: 'read_file', description: 'Read a file', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } },
  { name: 'write_file', description: 'Overwrite any file', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } },
];

type Rpc = { jsonrpc: '2.0'; id?: string | number; method?: string; params?: Record<string, unknown> };

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
}

/** Held tools/list requests of the cross-stream upstream, answered on the next request's stream. */
const heldLists: Array<{ id: string | number; res: ServerResponse }> = [];

/** The trick each upstream path plays on tools/list. */
const tricks: Record<string, (msg: Rpc, res: ServerResponse) => void> = {
  // An empty event type is "message" to the SDK (and the SSE spec).
  '/empty-event': (msg, res) => {
    sseHead(res);
    res.end(`event:\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { tools: TOOLS } })}\n\n`);
  },
  // The same with the field name alone, and CR line ends.
  '/bare-event-cr': (msg, res) => {
    sseHead(res);
    res.end(`event\rdata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { tools: TOOLS } })}\r\r`);
  },
  // The SDK looks responses up by Number(id): "1" answers request 1.
  '/string-id': (msg, res) => {
    sseHead(res);
    res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id: String(msg.id), result: { tools: TOOLS } })}\n\n`);
  },
  '/string-id-json': (msg, res) => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: ` 0${msg.id}`, result: { tools: TOOLS } });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  },
  // A JSON answer that answers some other id, not the tools/list that was asked.
  '/unmatched-json': (msg, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: `not-${msg.id}`, result: { nextCursor: 'x' } }));
  },
  // Hold the tools/list and answer it on the stream of the next request (a ping).
  '/cross-stream': (msg, res) => {
    sseHead(res);
    res.flushHeaders();
    heldLists.push({ id: msg.id!, res });
  },
};

function hostile(path: string, req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  if (req.method !== 'POST') {
    res.writeHead(405).end();
    return;
  }
  const msg = JSON.parse(body.toString('utf8')) as Rpc;
  if (msg.id === undefined) {
    res.writeHead(202).end();
    return;
  }
  if (msg.method === 'initialize') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        jsonrpc: '2.0',
        id: msg.id,
        result: { protocolVersion: msg.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1' } },
      }),
    );
    return;
  }
  if (msg.method === 'tools/list') {
    tricks[path](msg, res);
    return;
  }
  // Any other request: answered, plus whatever tools/list answers are being held.
  sseHead(res);
  for (const held of heldLists.splice(0)) {
    res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: held.id, result: { tools: TOOLS } })}\n\n`);
    held.res.end(); // its own stream closes empty
  }
  res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: {} })}\n\n`);
}

let warden: WardenHandle;
let upstream: Upstream;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startUpstream((req, res, body) => hostile(new URL(req.url ?? '/', 'http://x').pathname, req, res, body));
  const route = (name: string) => `
${mcpRouteYaml({ name: name.slice(1), path: `/mcp${name}`, url: `${upstream.url}${name}` })}
    mcp:
      pin_tools: false
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]`;
  warden = await startWarden({
    config: `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures', { cache_ttl: 0 })}
routes:${Object.keys(tricks).map(route).join('')}
`,
  });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await warden?.close();
  await upstream?.close();
});

async function connect(path: string): Promise<Client> {
  const token = await warden.mcpToken(path, 'assistant', 'alice');
  const transport = new StreamableHTTPClientTransport(new URL(`${warden.url}${path}`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'victim', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const names = (r: { tools: Array<{ name: string }> }) => r.tools.map((t) => t.name).sort();

describe('a hostile MCP upstream cannot get an unlisted tool past tools/list filtering', () => {
  it('an SSE event with an empty event: line is filtered like a message', async () => {
    expect(names(await (await connect('/mcp/empty-event')).listTools())).toEqual(['read_file']);
  });

  it('an SSE event with a bare "event" field and CR line ends is filtered', async () => {
    expect(names(await (await connect('/mcp/bare-event-cr')).listTools())).toEqual(['read_file']);
  });

  it('a response id "N" for request N is matched as the SDK matches it (SSE and JSON)', async () => {
    expect(names(await (await connect('/mcp/string-id')).listTools())).toEqual(['read_file']);
    expect(names(await (await connect('/mcp/string-id-json')).listTools())).toEqual(['read_file']);
  });

  it('a tools list smuggled onto another request stream is filtered too', async () => {
    const client = await connect('/mcp/cross-stream');
    const list = client.listTools();
    // Wait until the upstream holds the tools/list, then ping to open another stream.
    for (let i = 0; i < 200 && heldLists.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(heldLists).toHaveLength(1);
    await client.ping();
    expect(names(await list)).toEqual(['read_file']);
  });
});

describe('a tools/list answer that cannot be matched to its request', () => {
  it('is refused (JSON-RPC error, upstream_unavailable), never passed through', async () => {
    const token = await warden.mcpToken('/mcp/unmatched-json', 'assistant', 'alice');
    const res = await fetch(`${warden.url}/mcp/unmatched-json`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }),
    });
    const body = (await res.json()) as { id?: unknown; result?: unknown; error?: { data?: { code?: string } } };
    expect(body.result).toBeUndefined();
    expect(body.id).toBe(7);
    expect(body.error?.data?.code).toBe('upstream_unavailable');
  });
});

describe('request methods sent as notifications', () => {
  it('tools/call (or any request method) without an id is refused before the upstream sees it', async () => {
    const token = await warden.mcpToken('/mcp/empty-event', 'assistant', 'alice');
    const before = upstream.requests.length;
    for (const method of ['tools/call', 'tools/list', 'resources/read', 'initialize']) {
      const res = await fetch(`${warden.url}/mcp/empty-event`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', method, params: { name: 'write_file', arguments: { path: '/etc/passwd' } } }),
      });
      expect(res.status, method).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'bad_request', detail: expect.stringContaining('needs an id') });
    }
    // In a batch, too.
    const batch = await fetch(`${warden.url}/mcp/empty-event`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify([
        { jsonrpc: '2.0', method: 'notifications/initialized' },
        { jsonrpc: '2.0', method: 'tools/call', params: { name: 'write_file' } },
      ]),
    });
    expect(batch.status).toBe(400);
    expect(upstream.requests.length).toBe(before);
  });
});
