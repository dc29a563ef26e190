/**
 * Shadow mode on MCP routes, with the real MCP SDK client and server: the same
 * tool calls sent to an enforce route and its shadow twin. Tool-level
 * refusals (a tool without a rule, an argument check) are forwarded on the
 * shadow route and recorded with the code and reason the enforce route answered;
 * a tools/list answer reaches the agent unfiltered and the tools enforce mode
 * hides are recorded (would_filter).
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';

const TOOLS = `
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]`;

const yaml = (file: string) => `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures', { cache_ttl: 0 })}
audit:
  decisions: { sink: file, path: "${file}" }
routes:
${mcpRouteYaml({ name: 'enf', path: '/mcp/enf' })}${TOOLS}
${mcpRouteYaml({ name: 'sh', path: '/mcp/sh' })}
    mode: shadow${TOOLS}
`;

describe('shadow mode on MCP routes', () => {
  let server: ExampleMcpServer;
  let warden: WardenHandle;
  let dir: string;
  beforeAll(async () => {
    server = await startExampleMcpServer();
    dir = mkdtempSync(join(tmpdir(), 'warden-shadow-mcp-'));
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards tool-level refusals on the shadow route and records what the enforce route decided', async () => {
    const file = join(dir, 'decisions.jsonl');
    warden = await startWarden({ config: yaml(file), env: { MCP_URL: server.url }, logLevel: 'warn' });
    const calls: Array<[string, Record<string, string>]> = [
      ['read_file', { path: 'readme.txt' }], // allow
      ['read_file', { path: 'secret.txt' }], // check denied
      ['write_file', { path: 'x.txt', content: 'x' }], // no rule: tool_not_allowed
    ];
    const outcome = async (path: string) => {
      const token = await warden.mcpToken(path, 'assistant', 'alice');
      const client = new Client({ name: 'shadow-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${warden.url}${path}`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }),
      );
      const out: string[] = [];
      try {
        await client.listTools(); // pins the tools (pin_tools is on by default)
        for (const [name, args] of calls) {
          try {
            await client.callTool({ name, arguments: args });
            out.push('ok');
          } catch (err) {
            if (!(err instanceof McpError)) throw err;
            out.push(String((err.data as { code?: string })?.code));
          }
        }
      } finally {
        await client.close();
      }
      return out;
    };
    let metrics = '';
    try {
      expect(await outcome('/mcp/enf')).toEqual(['ok', 'forbidden', 'forbidden']);
      const before = server.executions.length;
      expect(await outcome('/mcp/sh')).toEqual(['ok', 'ok', 'ok']);
      expect(server.executions.length - before).toBe(3);
      metrics = await (await fetch(`${warden.adminUrl}/metrics`)).text();
    } finally {
      await warden.close();
    }
    const recs = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((r) => r.t === 'decision' && r.tool);
    const enf = recs.filter((r) => r.route === 'enf');
    const sh = recs.filter((r) => r.route === 'sh');
    expect(enf.map((r) => [r.tool, r.decision, r.reason])).toEqual([
      ['read_file', 'allow', undefined],
      ['read_file', 'deny', 'check_denied'],
      ['write_file', 'deny', 'tool_not_allowed'],
    ]);
    expect(sh.map((r) => [r.tool, r.decision, r.shadow.outcome, r.shadow.code, r.shadow.reason])).toEqual([
      ['read_file', 'allow', 'allow', undefined, undefined],
      ['read_file', 'allow', 'would_deny', 'forbidden', 'check_denied'],
      ['write_file', 'allow', 'would_deny', 'forbidden', 'tool_not_allowed'],
    ]);
    expect(metrics).toMatch(/warden_shadow_decisions_total\{outcome="would_deny",route="sh"\} 2\b/);
  });

  it('tools/list on the shadow route shows every tool and records exactly those the enforce route hides', async () => {
    const file = join(dir, 'decisions-list.jsonl');
    // read_file: its check needs arguments (shown, the call decides); count_slowly: allowed for the
    // assistant; delete_file: a check alice fails (hidden); write_file: no rule (hidden).
    const tools = `
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]
        count_slowly:
          authorize: [{ user: "agent:{agent}", relation: can_call, object: "tool:count_slowly" }]
        delete_file:
          authorize: [{ user: "user:{user}", relation: owner, object: "file:secret.txt" }]`;
    const config = `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures', { cache_ttl: 0 })}
audit:
  decisions: { sink: file, path: "${file}" }
routes:
${mcpRouteYaml({ name: 'enf', path: '/mcp/enf' })}${tools}
${mcpRouteYaml({ name: 'sh', path: '/mcp/sh' })}
    mode: shadow${tools}
`;
    warden = await startWarden({ config, env: { MCP_URL: server.url }, logLevel: 'warn' });
    const list = async (url: string, headers: Record<string, string> = {}) => {
      const client = new Client({ name: 'shadow-list-test', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
      try {
        return (await client.listTools()).tools.map((t) => t.name);
      } finally {
        await client.close();
      }
    };
    const through = async (path: string) => list(`${warden.url}${path}`, { Authorization: `Bearer ${await warden.mcpToken(path, 'assistant', 'alice')}` });
    let upstreamTools: string[] = [];
    let enforced: string[] = [];
    let shadowed: string[] = [];
    let metrics = '';
    try {
      upstreamTools = await list(server.url);
      enforced = await through('/mcp/enf');
      shadowed = await through('/mcp/sh');
      metrics = await (await fetch(`${warden.adminUrl}/metrics`)).text();
    } finally {
      await warden.close();
    }
    expect(upstreamTools).toEqual(expect.arrayContaining(['read_file', 'delete_file', 'write_file', 'count_slowly']));
    expect(enforced).toEqual(['read_file', 'count_slowly']);
    // The shadow route changes nothing the agent sees.
    expect(shadowed).toEqual(upstreamTools);
    const lists = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((r) => r.t === 'decision' && r.mcp_method === 'tools/list');
    expect(lists.filter((r) => r.route === 'enf').map((r) => [r.decision, r.shadow])).toEqual([['allow', undefined]]);
    const sh = lists.filter((r) => r.route === 'sh');
    expect(sh).toHaveLength(1);
    expect(sh[0]).toMatchObject({ decision: 'allow', mode: 'shadow', shadow: { outcome: 'would_filter' } });
    // Exactly the tools the enforce route hid, in the upstream's order.
    expect(sh[0].shadow.tools).toEqual(upstreamTools.filter((t) => !enforced.includes(t)));
    expect(metrics).toMatch(/warden_shadow_decisions_total\{outcome="would_filter",route="sh"\} 1\b/);
  });
});
