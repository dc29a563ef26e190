/**
 * What Warden adds to an MCP tool call: the same `tools/call` (SDK client,
 * SSE answers) sent directly to the example server and through Warden
 * (JWT, session binding, pin lookup, one OpenFGA check, header swap).
 * Run: npx vitest bench --run test/mcp/overhead.bench.ts
 */

import { afterAll, beforeAll, bench, describe } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';

let warden: WardenHandle;
let server: ExampleMcpServer;
let direct: Client;
let viaWarden: Client;

async function client(url: string, token?: string): Promise<Client> {
  const c = new Client({ name: 'bench', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : undefined));
  await c.listTools();
  return c;
}

beforeAll(async () => {
  server = await startExampleMcpServer();
  warden = await startWarden({
    logLevel: 'warn',
    env: { MCP_URL: server.url },
    config: `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures', { cache_ttl: 0 })}
routes:
${mcpRouteYaml({ name: 'files-mcp' })}
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]
`,
  });
  direct = await client(server.url);
  viaWarden = await client(`${warden.url}/mcp/files`, await warden.mcpToken('/mcp/files', 'assistant', 'alice'));
});

afterAll(async () => {
  await Promise.allSettled([direct?.close(), viaWarden?.close()]);
  await warden?.close();
  await server?.close();
});

describe('tools/call read_file', () => {
  bench(
    'direct to the MCP server',
    async () => {
      await direct.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } });
    },
    { iterations: 300, warmupIterations: 30 },
  );
  bench(
    'through Warden',
    async () => {
      await viaWarden.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } });
    },
    { iterations: 300, warmupIterations: 30 },
  );
});
