/**
 * Limits on MCP tools, through the real MCP SDK client and server: a tool's
 * rate limit and budget refuse with JSON-RPC errors whose `error.data` carries
 * the Warden code and the same figures as the HTTP headers; other tools and
 * methods on the route are not counted.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';

const config = `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures')}
routes:
${mcpRouteYaml()}
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]
          rate_limit: { requests: 2, per: 1h }
        count_slowly:
          authorize: [{ user: "agent:{agent}", relation: can_call, object: "tool:{tool}" }]
          budget: { key: "{user}", amount: "{args.n}", max: 10, per: 24h, over: deny }
`;

describe('limits on MCP tools', () => {
  let mcp: ExampleMcpServer;
  let w: WardenHandle;
  const clients: Client[] = [];

  beforeAll(async () => {
    mcp = await startExampleMcpServer();
    w = await startWarden({ config, env: { MCP_URL: mcp.url } });
  });
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await w?.close();
    await mcp?.close();
  });

  /** RateLimit fields of every HTTP answer the client received, in order. */
  const seen: Array<{ policy: string | null; limit: string | null }> = [];

  async function connect(user: string): Promise<Client> {
    const token = await w.mcpToken('/mcp/files', 'assistant', user);
    const transport = new StreamableHTTPClientTransport(new URL(`${w.url}/mcp/files`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        seen.push({ policy: res.headers.get('ratelimit-policy'), limit: res.headers.get('ratelimit') });
        return res;
      },
    });
    const client = new Client({ name: 'limits-test', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    await client.listTools();
    return client;
  }

  async function refusal(p: Promise<unknown>): Promise<{ rpc: number; data: Record<string, unknown> }> {
    try {
      await p;
    } catch (err) {
      if (err instanceof McpError) return { rpc: err.code, data: err.data as Record<string, unknown> };
      throw err;
    }
    throw new Error('expected the call to be refused');
  }

  it('a tool rate limit answers a JSON-RPC error carrying rate_limited, Retry-After and the RateLimit fields', async () => {
    const client = await connect('alice');
    for (let i = 0; i < 2; i++) {
      seen.length = 0;
      await client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } });
      // The HTTP answer to a tools/call let through carries the tool's fields (JSON or SSE: headers come first).
      expect(seen.at(-1)).toEqual({ policy: '"files/read_file";q=2;w=3600', limit: `"files/read_file";r=${1 - i};t=${1800 * (i + 1)}` });
    }
    const before = mcp.executions.length;
    const { rpc, data } = await refusal(client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } }));
    expect(rpc).toBe(-32029);
    expect(data.code).toBe('rate_limited');
    expect(data.policy).toBe('files/read_file');
    expect(data.ratelimit_policy).toBe('"files/read_file";q=2;w=3600');
    expect(data.ratelimit).toBe(`"files/read_file";r=0;t=${data.retry_after as number}`);
    expect(data.retry_after).toBeGreaterThan(1700);
    expect(mcp.executions.length).toBe(before);
    // Listing and other tools are not counted against read_file, and their answers carry no RateLimit fields.
    seen.length = 0;
    await client.listTools();
    await client.callTool({ name: 'count_slowly', arguments: { n: 1 } });
    expect(seen.every((s) => s.policy === null && s.limit === null)).toBe(true);
  });

  it('a tool budget spends {args.n}, refuses past max with budget_exceeded and a non-number with bad_request', async () => {
    const client = await connect('bob');
    await client.callTool({ name: 'count_slowly', arguments: { n: 6 } });
    const over = await refusal(client.callTool({ name: 'count_slowly', arguments: { n: 5 } }));
    expect(over.rpc).toBe(-32003);
    expect(over.data).toMatchObject({ code: 'budget_exceeded', budget: 'files/count_slowly', amount: 5, max: 10, spent: 6, remaining: 4 });
    await client.callTool({ name: 'count_slowly', arguments: { n: 4 } });
    const bad = await refusal(client.callTool({ name: 'count_slowly', arguments: { n: '1' } }));
    expect(bad.data.code).toBe('bad_request');
    const token = await w.token('assistant', 'bob');
    const res = await fetch(`${w.url}/.warden/budgets`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { budgets: Array<Record<string, unknown>> };
    expect(body.budgets).toEqual([expect.objectContaining({ route: 'files', tool: 'count_slowly', key: 'bob', spent: 10, remaining: 0, max: 10 })]);
  });
});
