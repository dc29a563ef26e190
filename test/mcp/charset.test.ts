/**
 * One body, two texts: an MCP server built with the SDK's own Express helper
 * (`createMcpExpressApp`, whose `express.json()` decodes the body in the
 * charset its Content-Type names) reads `charset=utf-7` where Warden reads
 * UTF-8. In UTF-7 `+ACI-` is a `"`, so a tools/call whose rule saw `read_file`
 * with a harmless path would reach the server as `delete_file`. Warden reads
 * JSON as UTF-8 only, so any other charset on a JSON body is refused.
 */

import { once } from 'node:events';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';

/** What the SDK server ran: tool and path. */
const executed: Array<[string, string]> = [];

function buildServer(): McpServer {
  const server = new McpServer({ name: 'files', version: '1.0.0' });
  for (const tool of ['read_file', 'delete_file']) {
    server.registerTool(tool, { description: tool, inputSchema: { path: z.string() } }, ({ path }) => {
      executed.push([tool, path]);
      return { content: [{ type: 'text', text: `${tool} ${path}` }] };
    });
  }
  return server;
}

/** `text` in UTF-7 as iconv-lite (Express's decoder) reads it: every character a `+…-` base64 run of its UTF-16. */
function utf7(text: string): string {
  const units = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) units.writeUInt16BE(text.charCodeAt(i), i * 2);
  return `+${units.toString('base64').replace(/=+$/, '')}-`;
}

let warden: WardenHandle;
let mcp: Server;

beforeAll(async () => {
  // Stateless, as the SDK's examples serve it: a server and transport per request.
  const app = createMcpExpressApp();
  app.post('/mcp', async (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => {
    const server = buildServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void transport.close().then(() => server.close()));
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  mcp = app.listen(0, '127.0.0.1');
  await once(mcp, 'listening');
  warden = await startWarden({
    config: `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures', { cache_ttl: 0 })}
routes:
${mcpRouteYaml({ url: `http://127.0.0.1:${(mcp.address() as AddressInfo).port}/mcp` })}
    mcp:
      pin_tools: false
      tools:
        read_file:
          authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:files-mcp" }]
`,
  });
});

afterAll(async () => {
  await warden?.close();
  mcp?.closeAllConnections();
  await new Promise((r) => mcp?.close(r));
});

describe('a JSON body in another charset than UTF-8', () => {
  it('never reaches the MCP server as another tool call than the rule checked', async () => {
    const token = await warden.mcpToken('/mcp/files', 'assistant', 'alice');
    const post = (contentType: string, body: string) =>
      fetch(`${warden.url}/mcp/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': contentType, accept: 'application/json, text/event-stream' },
        body,
      });
    // As UTF-8 (Warden): read_file of a harmless path. As UTF-7: a second name and arguments follow, and win.
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { path: 'readme.txt' } } });
    const smuggled = body.replace('readme.txt', `readme.txt${utf7('"},"name":"delete_file","arguments":{"path":"secret.txt')}`);
    expect((JSON.parse(smuggled) as { params: { name: string } }).params.name).toBe('read_file');

    const refused: Array<[string, number, string]> = [];
    for (const type of ['application/json; charset=utf-7', 'application/json;charset="UTF-7"', 'application/json; charset=utf-8; charset=utf-7']) {
      const res = await post(type, smuggled);
      refused.push([type, res.status, ((await res.json()) as { code?: string }).code ?? '']);
    }
    expect(executed.filter(([tool]) => tool === 'delete_file')).toEqual([]);
    for (const [type, status, code] of refused) expect([status, code], type).toEqual([400, 'bad_request']);

    // UTF-8, said or not, is read the same by both.
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/json; charset="UTF-8"']) {
      const res = await post(type, body);
      expect(res.status, type).toBe(200);
    }
    expect(executed).toEqual([
      ['read_file', 'readme.txt'],
      ['read_file', 'readme.txt'],
      ['read_file', 'readme.txt'],
    ]);
  });
});
