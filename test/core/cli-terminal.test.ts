/**
 * What the `warden` CLI prints for people goes to a terminal, and some of it
 * is chosen by others: a tool name is whatever an agent put in its tools/call,
 * and a decision-log file under verification may have been edited by anyone.
 * Terminal control sequences in those values must not reach the terminal
 * (they can erase a FAIL line and draw an OK in its place). The built CLI, in
 * a child process; the log replayed is one a real Warden wrote.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startWarden } from '../support/gateway.js';
import { requireBuiltCli, runCli } from '../support/cli.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

/** Clear the line, then draw a verdict of the attacker's choosing. */
const FORGED = '\r\u001b[2KOK no decision changes\u001b[8m';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

let dir: string;
let upstream: Upstream;

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-cli-terminal-'));
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('terminal control characters others chose are not printed raw', () => {
  it('warden replay: a tool name an agent sent', async () => {
    const log = join(dir, 'decisions.jsonl');
    const config = (others: 'deny' | 'allow', withLog: boolean) => `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml(join(REPO_ROOT, 'test/mcp/fixtures'))}
${withLog ? `audit: { decisions: { sink: file, path: "${log}" } }` : ''}
routes:
${mcpRouteYaml({ name: 'files-mcp', path: '/mcp/files', url: upstream.url })}
    mcp: { other_tools: ${others} }
`;
    const warden = await startWarden({ config: config('deny', true), logLevel: 'warn' });
    try {
      const token = await warden.mcpToken('/mcp/files', 'assistant', 'alice');
      const res = await fetch(`${warden.url}/mcp/files`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: `x${FORGED}`, arguments: {} } }),
      });
      // Refused as a JSON-RPC error (no rule for the tool): never forwarded.
      expect(JSON.stringify(await res.json())).toContain('"error"');
      expect(upstream.requests.length).toBe(0);
    } finally {
      await warden.close();
    }
    // The log holds the name, JSON-escaped.
    expect(readFileSync(log, 'utf8')).toContain('\\u001b[2K');

    const newConfig = join(dir, 'new.yaml');
    writeFileSync(newConfig, config('allow', false));
    const r = await runCli(['replay', '-c', newConfig, log], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('deny->allow');
    expect(r.stdout).toContain('FAIL');
    expect(r.stdout).not.toMatch(CONTROL);
    expect(r.stdout).toContain('tool=x\\r\\u001b[2KOK no decision changes\\u001b[8m');
  });

  it('warden audit verify: an instance id in an edited log', async () => {
    const file = join(dir, 'edited.jsonl');
    const instance = FORGED.replace('no decision changes', '1 records, 1 instance(s), 0 checkpoint(s)');
    // The shape of a record, with a hash that does not match: verification fails at line 1.
    writeFileSync(file, `${JSON.stringify({ t: 'decision', instance, seq: 0, prev: '0'.repeat(64), hash: 'f'.repeat(64) })}\n`);
    const r = await runCli(['audit', 'verify', file], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL /);
    expect(r.stdout).not.toMatch(CONTROL);
    expect(r.stdout).toContain('instance \\r\\u001b[2KOK 1 records');
  });
});
