/**
 * `warden explain` shows what the approver would read (the message rendered
 * from this request) and explains an MCP tools/call for a tool no agent has
 * listed yet, saying that a real call would be refused until then.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';

let dir: string;
const CONFIG = join(REPO_ROOT, 'gateway.yaml');
const warden = (args: string[]) =>
  runCli([...args, '-c', CONFIG], { cwd: dir, env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), WARDEN_LISTEN: '', WARDEN_ADMIN_LISTEN: '' } });

beforeAll(() => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-explain-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('warden explain', () => {
  it('renders the approval message from the request, as the approver would read it', async () => {
    const token = (await warden(['token', '--agent', 'demo-agent', '--user', 'alice'])).stdout.trim();
    const r = await warden(['explain', '--token', token, '-X', 'DELETE', '/notes/docs/1', '--json']);
    expect(r.code).toBe(0);
    const trace = JSON.parse(r.stdout) as { decision: string; approval: Array<{ message: string; template: string }> };
    expect(trace.decision).toBe('pending');
    expect(trace.approval[0]).toMatchObject({ message: 'Delete document 1', template: 'Delete document {path.doc}' });
  });

  it('explains an MCP tools/call before the tool was ever listed, and says a real call needs the listing', async () => {
    const token = (await warden(['token', '--agent', 'demo-agent', '--user', 'alice', '--route', 'files-mcp'])).stdout.trim();
    const call = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_file', arguments: { path: 'notes.txt' } } });
    const r = await warden(['explain', '--token', token, '-X', 'POST', '/mcp/files', '--data', call, '--json']);
    expect(r.stderr).toBe('');
    const trace = JSON.parse(r.stdout) as {
      decision: string;
      mcp: { tool: string; note?: string };
      checks: Array<{ allowed: boolean }>;
      approval: Array<{ message: string }>;
    };
    expect(trace.mcp.tool).toBe('delete_file');
    expect(trace.mcp.note).toContain('tool_not_pinned');
    expect(trace.checks.length).toBeGreaterThan(0);
    expect(trace.checks.every((c) => c.allowed)).toBe(true);
    expect(trace.approval[0].message).toBe('Delete file notes.txt');
    expect(trace.decision).toBe('pending');
  });
});
