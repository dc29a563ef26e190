/**
 * MCP streams held through Warden, end to end (the real SDK client and the
 * example SDK server). A GET stream is the server's channel to the agent and
 * is silent most of the time: the route's timeout, which bounds an answer's
 * silence, must not end it (before `mcp.stream_idle_timeout`, every listening
 * agent's stream was cut after 60 s of quiet and reconnected). Quiet SSE
 * answers get keep-alive comments (`mcp.keepalive`) for the proxies in front
 * of Warden. A streamed tool call is still an answer: its silence is bounded
 * by the route's timeout, as before.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';
import { until } from '../support/eventually.js';

const PATH = '/mcp/files';

/** Route timeout 1 s (an answer silent that long is cut), keep-alives every 300 ms. */
const gatewayYaml = (mcp: string) => `
server: { listen: "127.0.0.1:0", limits: { request_timeout: 1s } }
${devPolicyYaml('test/mcp/fixtures', { cache_ttl: 0 })}
routes:
${mcpRouteYaml({ name: 'files', path: PATH })}
    mcp:
      other_tools: allow
      pin_tools: false
      keepalive: 300ms
${mcp}
`;

let warden: WardenHandle | undefined;
let server: ExampleMcpServer | undefined;
let client: Client | undefined;

afterEach(async () => {
  await client?.close().catch(() => {});
  await warden?.close();
  await server?.close();
  client = warden = server = undefined;
});

async function start(mcp: string, options: { progressDelayMs?: number } = {}): Promise<{ warden: WardenHandle; server: ExampleMcpServer; token: string }> {
  server = await startExampleMcpServer(options);
  warden = await startWarden({ config: gatewayYaml(mcp), env: { MCP_URL: server.url } });
  return { warden, server, token: await warden.mcpToken(PATH, 'assistant', 'alice') };
}

const gets = (s: ExampleMcpServer) => s.calls.filter((c) => c.httpMethod === 'GET').length;

/** initialize and initialized as a client sends them, without the SDK: the session id. */
async function openSession(base: string, token: string): Promise<string> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const init = await fetch(`${base}${PATH}`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
  expect(init.status).toBe(200);
  await init.text();
  const session = init.headers.get('mcp-session-id');
  expect(session).toBeTruthy();
  const initialized = await fetch(`${base}${PATH}`, {
    method: 'POST',
    headers: { ...headers, 'mcp-session-id': session! },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  expect(initialized.status).toBe(202);
  return session!;
}

/** Read a response body to its end: each chunk's text and when it came (ms after `t0`), and how it ended. */
async function readAll(res: Response, t0: number): Promise<{ chunks: Array<[number, string]>; ended: 'end' | 'cut'; at: number }> {
  const chunks: Array<[number, string]> = [];
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return { chunks, ended: 'end', at: Date.now() - t0 };
      chunks.push([Date.now() - t0, decoder.decode(value, { stream: true })]);
    }
  } catch {
    return { chunks, ended: 'cut', at: Date.now() - t0 };
  }
}

describe('held MCP streams', () => {
  it('a GET stream outlives the route timeout while its server is silent, on one connection, and delivers the next message', async () => {
    const { warden, server, token } = await start('      stream_idle_timeout: 1h');
    const transport = new StreamableHTTPClientTransport(new URL(`${warden.url}${PATH}`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    client = new Client({ name: 'listener', version: '1.0.0' });
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      changed++;
    });
    await client.connect(transport);
    await until(() => gets(server) === 1, { timeoutMs: 5_000, what: 'the client opened its GET stream' });
    // Three route timeouts of silence (the stream was cut after one, and the client reconnected).
    await new Promise((r) => setTimeout(r, 3_000));
    expect(gets(server)).toBe(1);
    server.setDescription('read_file', 'Read a text file by path (changed).');
    await until(() => changed === 1, { timeoutMs: 5_000, what: 'tools/list_changed reached the agent' });
    expect(gets(server)).toBe(1);
  });

  it('a quiet GET stream gets keep-alive comments, and ends cleanly after stream_idle_timeout', async () => {
    const { warden, token } = await start('      stream_idle_timeout: 2s');
    const session = await openSession(warden.url, token);
    const t0 = Date.now();
    const res = await fetch(`${warden.url}${PATH}`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': session },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { chunks, ended, at } = await readAll(res, t0);
    // An end, not a cut: the agent's client reconnects without reporting an error.
    expect(ended).toBe('end');
    expect(at).toBeGreaterThanOrEqual(2_000);
    expect(at).toBeLessThan(6_000);
    const text = chunks.map(([, t]) => t).join('');
    // Nothing but keep-alives (the server said nothing), about one per 300 ms of the two seconds.
    expect(text.replace(/: keep-alive\n/g, '')).toBe('');
    const comments = text.match(/: keep-alive\n/g)?.length ?? 0;
    expect(comments).toBeGreaterThanOrEqual(3);
    // None more often than every 0.9 × 300 ms of quiet (see KeepAlives in src/mcp/sse.ts).
    expect(comments).toBeLessThanOrEqual(Math.ceil(at / 270));
    // The first came after quiet, not at once.
    expect(chunks[0][0]).toBeGreaterThanOrEqual(260);
  });

  it('a streamed tool call is still an answer: silent past the route timeout, it is cut, with keep-alives until then', async () => {
    // The server takes 2.5 s before its first progress notification: longer than the route timeout.
    const { warden, server, token } = await start('      stream_idle_timeout: 1h', { progressDelayMs: 2_500 });
    const session = await openSession(warden.url, token);
    const t0 = Date.now();
    const res = await fetch(`${warden.url}${PATH}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': session,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'count_slowly', arguments: { n: 2 }, _meta: { progressToken: 7 } } }),
    });
    if (res.status === 200) {
      // The head came at once: the answer streams, quiet, and is cut at the timeout (no result, no progress).
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const { chunks, ended, at } = await readAll(res, t0);
      expect(ended).toBe('cut');
      expect(at).toBeLessThan(2_500);
      const text = chunks.map(([, t]) => t).join('');
      expect(text).toMatch(/^(: keep-alive\n)+$/);
    } else {
      // The head never came within the timeout.
      expect(res.status).toBe(504);
      expect(Date.now() - t0).toBeLessThan(2_500);
    }
    expect(server.executions.map((e) => e.tool)).toEqual(['count_slowly']);
  });

  it('refuses a stream_idle_timeout under a second, and turns keep-alives off with keepalive: 0s', async () => {
    await expect(start('      stream_idle_timeout: 500ms')).rejects.toThrow(/stream_idle_timeout must be at least 1s/);
    await server?.close();
    server = undefined;
    const yaml = gatewayYaml('      stream_idle_timeout: 1s').replace('keepalive: 300ms', 'keepalive: 0s');
    server = await startExampleMcpServer();
    warden = await startWarden({ config: yaml, env: { MCP_URL: server.url } });
    const token = await warden.mcpToken(PATH, 'assistant', 'alice');
    const session = await openSession(warden.url, token);
    const t0 = Date.now();
    const res = await fetch(`${warden.url}${PATH}`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': session },
    });
    const { chunks, ended, at } = await readAll(res, t0);
    expect(ended).toBe('end');
    expect(at).toBeGreaterThanOrEqual(1_000);
    expect(chunks.map(([, t]) => t).join('')).toBe('');
  });
});
