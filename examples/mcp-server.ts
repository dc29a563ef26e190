/**
 * A demo MCP server (Streamable HTTP, stateful sessions) used by `npm start` and
 * the MCP tests. It keeps an in-memory "file system" and records every HTTP
 * request it receives, so tests can assert on what reached the upstream.
 */

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { McpServer, type RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

/** One HTTP request as the upstream received it. */
export interface RecordedCall {
  httpMethod: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON-RPC body for POSTs (message or batch). */
  body?: unknown;
  sessionId?: string;
}

/** What a tool did (one entry per tool execution). */
export interface ToolExecution {
  tool: string;
  args: Record<string, unknown>;
  sessionId?: string;
}

export interface ExampleMcpServerOptions {
  /** Listen port on 127.0.0.1 (default 0 = any free port). */
  port?: number;
  /** Answer POSTs with JSON instead of SSE streams. */
  jsonResponse?: boolean;
  /** Initial files (path → content). */
  files?: Record<string, string>;
  /** Delay between progress notifications of `count_slowly`, ms (default 50). */
  progressDelayMs?: number;
}

/** Definition fields a test may set on a tool. */
export interface ToolFields {
  title?: string;
  annotations?: { title?: string; readOnlyHint?: boolean; destructiveHint?: boolean; idempotentHint?: boolean; openWorldHint?: boolean };
  _meta?: Record<string, unknown>;
}

export interface ExampleMcpServer {
  /** The MCP endpoint URL (`http://127.0.0.1:P/mcp`). */
  readonly url: string;
  /** Every HTTP request received, in order. */
  readonly calls: RecordedCall[];
  /** Every tool execution, in order. */
  readonly executions: ToolExecution[];
  /** The in-memory files (mutable by tests). */
  readonly files: Map<string, string>;
  /** Change a tool's description (live sessions get `tools/list_changed`; new sessions see it). */
  setDescription(tool: string, description: string): void;
  /** Set fields of a tool's definition other than its description and input schema (likewise). */
  setToolFields(tool: string, fields: ToolFields): void;
  /**
   * `count_slowly` awaits `gate(step)` after sending progress `step` and before
   * the next one, so a test can prove each event reached the client on its own.
   */
  setProgressGate(gate: ((step: number) => Promise<void>) | null): void;
  close(): Promise<void>;
}

const DEFAULT_FILES: Record<string, string> = {
  'readme.txt': 'hello from the example MCP server',
  'notes.txt': 'shopping list: coffee',
  'secret.txt': 'the launch codes',
  'scratch.txt': 'temporary notes',
};

/** Start the demo MCP server on a loopback port. */
export async function startExampleMcpServer(options: ExampleMcpServerOptions = {}): Promise<ExampleMcpServer> {
  const files = new Map(Object.entries(options.files ?? DEFAULT_FILES));
  const calls: RecordedCall[] = [];
  const executions: ToolExecution[] = [];
  const progressDelayMs = options.progressDelayMs ?? 50;
  const descriptions = new Map<string, string>([
    ['read_file', 'Read a text file by path.'],
    ['delete_file', 'Delete a file by path.'],
    ['write_file', 'Write a text file.'],
    ['count_slowly', 'Count to n, reporting progress after each step.'],
  ]);
  const fields = new Map<string, ToolFields>();
  let progressGate: ((step: number) => Promise<void>) | null = null;
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; tools: Map<string, RegisteredTool> }>();

  const text = (t: string, isError = false) => ({ content: [{ type: 'text' as const, text: t }], ...(isError ? { isError } : {}) });

  function buildServer(sessionRef: { id?: string }): { server: McpServer; tools: Map<string, RegisteredTool> } {
    const server = new McpServer({ name: 'warden-example-files', version: '1.0.0' });
    const tools = new Map<string, RegisteredTool>();
    const record = (tool: string, args: Record<string, unknown>) => executions.push({ tool, args, sessionId: sessionRef.id });

    tools.set(
      'read_file',
      server.registerTool(
        'read_file',
        { description: descriptions.get('read_file'), inputSchema: { path: z.string() }, ...fields.get('read_file') },
        async ({ path }) => {
          record('read_file', { path });
          const content = files.get(path);
          return content === undefined ? text(`no such file: ${path}`, true) : text(content);
        },
      ),
    );
    tools.set(
      'delete_file',
      server.registerTool(
        'delete_file',
        { description: descriptions.get('delete_file'), inputSchema: { path: z.string() }, ...fields.get('delete_file') },
        async ({ path }) => {
          record('delete_file', { path });
          return files.delete(path) ? text(`deleted ${path}`) : text(`no such file: ${path}`, true);
        },
      ),
    );
    tools.set(
      'write_file',
      server.registerTool(
        'write_file',
        { description: descriptions.get('write_file'), inputSchema: { path: z.string(), content: z.string() }, ...fields.get('write_file') },
        async ({ path, content }) => {
          record('write_file', { path });
          files.set(path, content);
          return text(`wrote ${path}`);
        },
      ),
    );
    tools.set(
      'count_slowly',
      server.registerTool(
        'count_slowly',
        { description: descriptions.get('count_slowly'), inputSchema: { n: z.number().int().min(1).max(100) }, ...fields.get('count_slowly') },
        async ({ n }, extra) => {
          record('count_slowly', { n });
          const token = extra._meta?.progressToken;
          for (let i = 1; i <= n; i++) {
            await new Promise((r) => setTimeout(r, progressDelayMs));
            if (token !== undefined) {
              await extra.sendNotification({
                method: 'notifications/progress',
                params: { progressToken: token, progress: i, total: n, message: `step ${i}` },
              });
              if (progressGate && i < n) await progressGate(i);
            }
          }
          return text(`counted to ${n}`);
        },
      ),
    );
    return { server, tools };
  }

  async function readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    return raw ? JSON.parse(raw) : undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const sessionHeader = req.headers['mcp-session-id'];
    const sessionId = typeof sessionHeader === 'string' ? sessionHeader : undefined;
    let body: unknown;
    if (req.method === 'POST') {
      try {
        body = await readJson(req);
      } catch {
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }));
        return;
      }
    }
    calls.push({ httpMethod: req.method ?? '', path: url.pathname, headers: { ...req.headers }, body, sessionId });
    if (url.pathname !== '/mcp') {
      res.writeHead(404).end();
      return;
    }

    const existing = sessionId ? sessions.get(sessionId) : undefined;
    if (existing) {
      await existing.transport.handleRequest(req, res, body);
      return;
    }
    if (sessionId) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
      return;
    }
    const isInitialize = req.method === 'POST' && !Array.isArray(body) && (body as { method?: string } | undefined)?.method === 'initialize';
    if (!isInitialize) {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request: no session' } }));
      return;
    }
    const sessionRef: { id?: string } = {};
    const { server, tools } = buildServer(sessionRef);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: options.jsonResponse ?? false,
      onsessioninitialized: (id) => {
        sessionRef.id = id;
        sessions.set(id, { transport, tools });
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const httpServer = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err instanceof Error ? err.message : err));
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    executions,
    files,
    setDescription(tool, description) {
      descriptions.set(tool, description);
      for (const s of sessions.values()) s.tools.get(tool)?.update({ description });
    },
    setToolFields(tool, set) {
      fields.set(tool, { ...fields.get(tool), ...set });
      for (const s of sessions.values()) s.tools.get(tool)?.update(set);
    },
    setProgressGate(gate) {
      progressGate = gate;
    },
    async close() {
      for (const s of sessions.values()) await s.transport.close().catch(() => undefined);
      sessions.clear();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}
