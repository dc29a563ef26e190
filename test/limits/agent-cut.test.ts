/**
 * An agent that closes its connection once its request has gone upstream does
 * not get the spend for free: the upstream may have acted on it (a payment
 * made, a machine started), so the reservation is committed, on a plain route
 * (the relay) and on an MCP tool (the hooked exchange). An agent that leaves
 * before anything is sent still spends nothing (test/limits/agent-gone.test.ts).
 */

import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';

const config = `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures')}
routes:
  - name: pay
    match: { path: "/pay/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: []
    budget: { key: "{user}", amount: "{body.amount}", max: 100, per: 24h, over: deny }
${mcpRouteYaml()}
    mcp:
      tools:
        count_slowly:
          authorize: [{ user: "agent:{agent}", relation: can_call, object: "tool:{tool}" }]
          budget: { key: "{user}", amount: "{args.n}", max: 10, per: 24h, over: deny }
`;

/** Send a request and close the connection once `sent()` says the upstream has it; resolves when closed. */
function sendAndLeave(url: string, options: { method: string; headers: Record<string, string>; body: string }, sent: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const { hostname, port, pathname } = new URL(url);
    const req = request({ host: hostname, port, path: pathname, method: options.method, headers: options.headers });
    req.on('error', () => {});
    req.on('response', () => reject(new Error('the answer came before the agent left: make the upstream slower')));
    req.end(options.body);
    const started = Date.now();
    const timer = setInterval(() => {
      if (sent()) {
        clearInterval(timer);
        req.destroy();
        resolve();
      } else if (Date.now() - started > 5_000) {
        clearInterval(timer);
        req.destroy();
        reject(new Error('the upstream never got the request'));
      }
    }, 5);
  });
}

describe('an agent that leaves after its request went upstream', () => {
  let upstream: Upstream;
  let mcp: ExampleMcpServer;
  let w: WardenHandle;

  beforeAll(async () => {
    upstream = await startUpstream();
    // JSON answers: the answer comes only once the tool has run to the end (n steps of 100 ms).
    mcp = await startExampleMcpServer({ jsonResponse: true, progressDelayMs: 100 });
    w = await startWarden({ config, env: { UPSTREAM_URL: upstream.url, MCP_URL: mcp.url } });
  });
  afterAll(async () => {
    await w?.close();
    await mcp?.close();
    await upstream?.close();
  });

  async function budget(token: string, route: string): Promise<{ spent: number; held: number }> {
    const res = await fetch(`${w.url}/.warden/budgets`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { budgets: Array<{ route: string; spent: number; held: number }> };
    return body.budgets.find((b) => b.route === route) as { spent: number; held: number };
  }

  it('spends on a plain route: the upstream acted, so the reservation is committed, not released', async () => {
    const token = await w.token('bot', 'alice');
    let acted = 0;
    // The upstream acts on the request at once and answers 400 ms later.
    upstream.setHandler((_req, res) => {
      acted++;
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), 400);
    });
    const body = JSON.stringify({ amount: 60 });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(body.length) };
    await sendAndLeave(`${w.url}/pay/charges`, { method: 'POST', headers, body }, () => acted === 1);
    await expect.poll(async () => (await budget(token, 'pay')).held, { timeout: 5_000 }).toBe(0);
    expect(await budget(token, 'pay')).toMatchObject({ spent: 60, held: 0 });

    // A second payment of 60 would take 120 of 100: refused, never forwarded.
    const again = await fetch(`${w.url}/pay/charges`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    expect(again.status).toBe(403);
    expect(((await again.json()) as { code: string }).code).toBe('budget_exceeded');
    expect(acted).toBe(1);
  });

  it('spends on an MCP tool: the tool ran, so its amount is committed', async () => {
    const token = await w.mcpToken('/mcp/files', 'assistant', 'bob');
    const transport = new StreamableHTTPClientTransport(new URL(`${w.url}/mcp/files`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'agent-cut', version: '1.0.0' });
    await client.connect(transport);
    try {
      await client.listTools();
      const before = mcp.executions.length;
      const call = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'count_slowly', arguments: { n: 6 } } });
      const headers = {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': transport.sessionId as string,
        'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
        'content-length': String(call.length),
      };
      await sendAndLeave(`${w.url}/mcp/files`, { method: 'POST', headers, body: call }, () => mcp.executions.length > before);
      const plain = await w.token('assistant', 'bob');
      await expect.poll(async () => (await budget(plain, 'files')).held, { timeout: 5_000 }).toBe(0);
      expect(await budget(plain, 'files')).toMatchObject({ spent: 6, held: 0 });
    } finally {
      await client.close();
    }
  });
});
