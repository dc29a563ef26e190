/**
 * Assertions on an MCP route, through the real MCP SDK client and server: the
 * route's assertion travels with every JSON-RPC request, a tool may say its
 * own (header, audience, claims, checks) or turn it off, and the agent's own
 * header never reaches the server.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { loadDevIssuer } from '../../src/identity/dev-issuer.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';

const config = `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures')}
routes:
${mcpRouteYaml()}
    assertion: true
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]
          assertion: { header: X-Tool-Identity, audience: "https://files.internal", claims: { mail: email }, authz: true }
        write_file:
          authorize: [{ user: "user:{user}", relation: can_write, object: "file:{args.path}" }]
          assertion: false
`;

describe('assertions on MCP tools', () => {
  let mcp: ExampleMcpServer;
  let w: WardenHandle;
  let client: Client;

  beforeAll(async () => {
    mcp = await startExampleMcpServer();
    w = await startWarden({ config, env: { MCP_URL: mcp.url } });
    // An MCP token names its resource (RFC 8707); this one also carries an email to map.
    const issuer = await loadDevIssuer({ dataDir: w.dataDir, publicUrl: w.gateway.runtime().publicUrl });
    const token = await issuer.issue({ agent: 'assistant', user: 'alice', claims: { email: 'alice@example.test' }, resource: `${w.url}/mcp/files` });
    const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.';
    const transport = new StreamableHTTPClientTransport(new URL(`${w.url}/mcp/files`), {
      requestInit: { headers: { Authorization: `Bearer ${token}`, 'Warden-Identity': forged, 'X-Tool-Identity': forged } },
    });
    client = new Client({ name: 'assertion-test', version: '1.0.0' });
    await client.connect(transport);
  });
  afterAll(async () => {
    await client?.close().catch(() => {});
    await w?.close();
    await mcp?.close();
  });

  const lastCall = (tool: string) => [...mcp.calls].reverse().find((c) => (c.body as { params?: { name?: string } } | undefined)?.params?.name === tool)!;

  it("the route's assertion travels with other methods (tools/list); the agent's header is replaced", async () => {
    await client.listTools();
    const list = [...mcp.calls].reverse().find((c) => (c.body as { method?: string } | undefined)?.method === 'tools/list')!;
    const assertion = String(list.headers['warden-identity']);
    expect(decodeJwt(assertion)).toMatchObject({ sub: 'alice', act: { sub: 'assistant' }, route: 'files', aud: new URL(mcp.url).origin });
    expect(list.headers['x-tool-identity']).toBeUndefined();
  });

  it('a tool with its own settings: its header, audience, mapped claims and checks; not the route header', async () => {
    await client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } });
    const call = lastCall('read_file');
    expect(call.headers['warden-identity']).toBeUndefined();
    const claims = decodeJwt(String(call.headers['x-tool-identity']));
    expect(claims).toMatchObject({ sub: 'alice', aud: 'https://files.internal', mail: 'alice@example.test' });
    expect(claims.authz).toEqual([
      { user: 'agent:assistant', relation: 'can_call', object: 'api:files-mcp' },
      { user: 'user:alice', relation: 'can_read', object: 'file:readme.txt' },
    ]);
  });

  it('a tool with assertion: false sends none, and the agent cannot supply one', async () => {
    await client.callTool({ name: 'write_file', arguments: { path: 'scratch.txt', content: 'x' } });
    const call = lastCall('write_file');
    expect(call.headers['warden-identity']).toBeUndefined();
    expect(call.headers['x-tool-identity']).toBeUndefined();
  });
});
