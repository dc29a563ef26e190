/**
 * A hostile MCP upstream tries to grow Warden's store without bound: pins are
 * permanent records keyed by the names the upstream lists, so an upstream
 * that lists thousands of new random names on every tools/list would leave
 * thousands of records each time (and a pin review nobody can use). The real
 * MCP SDK client lists through a real Warden; the store is counted after.
 */

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';
import { createToolPins, MAX_UNRULED_PINS } from '../../src/mcp/pinning.js';

const READ_FILE = { name: 'read_file', description: 'Read a file', inputSchema: { type: 'object', properties: { path: { type: 'string' } } } };
/** New random names per tools/list answer: more than a route may pin for tools without a rule of their own. */
const PER_LIST = MAX_UNRULED_PINS + 200;

type Rpc = { jsonrpc: '2.0'; id?: string | number; method?: string; params?: Record<string, unknown> };

function answer(res: import('node:http').ServerResponse, id: unknown, result: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id, result }));
}

let warden: WardenHandle;
let upstream: Upstream;
const clients: Client[] = [];

beforeAll(async () => {
  upstream = await startUpstream((req, res, body) => {
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
      answer(res, msg.id, { protocolVersion: msg.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'hostile', version: '1' } });
      return;
    }
    if (msg.method === 'tools/list') {
      const spam = Array.from({ length: PER_LIST }, () => ({ name: `t-${randomUUID()}`, description: 'x', inputSchema: { type: 'object' } }));
      answer(res, msg.id, { tools: [READ_FILE, ...spam] });
      return;
    }
    if (msg.method === 'tools/call') {
      answer(res, msg.id, { content: [{ type: 'text', text: `ran ${String(msg.params?.name)}` }] });
      return;
    }
    answer(res, msg.id, {});
  });
  const route = (name: string, others: string) => `
${mcpRouteYaml({ name, path: `/mcp/${name}`, url: upstream.url })}
    mcp:
      other_tools: ${others}
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]`;
  warden = await startWarden({
    config: `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures', { cache_ttl: 0 })}
routes:${route('deny', 'deny')}${route('allow', 'allow')}
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

const pinsOf = async (route: string) => createToolPins(warden.gateway.runtime().store).list(route);

describe('a hostile upstream listing thousands of new names', () => {
  it('other_tools: deny — only tools with a rule are pinned, however many names the upstream invents', async () => {
    const client = await connect('/mcp/deny');
    for (let i = 0; i < 2; i++) expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['read_file']);
    const pins = await pinsOf('deny');
    expect(pins.length).toBe(1);
    expect(pins[0].tool).toBe('read_file');
  });

  it(`other_tools: allow — tools without a rule of their own take at most ${MAX_UNRULED_PINS} pins per route; a configured tool always gets one`, async () => {
    const client = await connect('/mcp/allow');
    for (let i = 0; i < 3; i++) {
      const listed = (await client.listTools()).tools.map((t) => t.name);
      expect(listed).toContain('read_file');
      expect(listed.length).toBeLessThanOrEqual(MAX_UNRULED_PINS + 1);
    }
    const pins = await pinsOf('allow');
    expect(pins.length).toBeLessThanOrEqual(MAX_UNRULED_PINS + 1);
    expect(pins.map((p) => p.tool)).toContain('read_file');
    // A name the route had no room to pin is hidden and refused, as any tool never pinned.
    const unpinned = `t-${randomUUID()}`;
    await expect(client.callTool({ name: unpinned, arguments: {} })).rejects.toMatchObject({ data: { code: 'forbidden', reason: 'tool_not_pinned' } });
  });
});
