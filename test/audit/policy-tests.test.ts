/**
 * `warden test` through the built CLI: the repository's own policy tests pass
 * against gateway.yaml and policies/; a wrong expectation fails with the
 * case's file:line, expected and got, and the check that decided; a file's own
 * tuples change answers for that file only; a malformed file is a usage error.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/gateway.js';
import { requireBuiltCli, runCli } from '../support/cli.js';

describe('warden test', () => {
  let dir: string;
  beforeAll(() => {
    requireBuiltCli();
    dir = mkdtempSync(join(tmpdir(), 'warden-policy-test-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("passes the repository's own policies/gateway.test.yaml against gateway.yaml", async () => {
    const r = await runCli(['test', '-c', 'gateway.yaml', 'policies/gateway.test.yaml'], { cwd: REPO_ROOT });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^OK (\d+) passed, 0 failed \(\1 case\(s\) in 1 file\(s\)\)\n$/);
    expect(Number(/OK (\d+) passed/.exec(r.stdout)![1])).toBeGreaterThanOrEqual(15);
  });

  it('names the file and line of each failing case, expected and got, and what decided', async () => {
    const file = join(dir, 'wrong.test.yaml');
    writeFileSync(
      file,
      [
        'tests:',
        '  - name: alice reads her document',
        '    agent: demo-agent',
        '    user: alice',
        '    request: GET /notes/docs/1',
        '    expect: allow',
        '  - name: wrongly expects bob to read it',
        '    agent: demo-agent',
        '    user: bob',
        '    request: GET /notes/docs/1',
        '    expect: allow',
        '  - name: wrongly expects the MCP delete to pass',
        '    agent: demo-agent',
        '    user: alice',
        '    request: POST /mcp/files',
        '    tool: delete_file',
        '    args: { path: notes.txt }',
        '    expect: allow',
        '  - name: wrong status',
        '    token: none',
        '    request: GET /notes/docs/1',
        '    expect: deny unauthenticated',
        '    status: 403',
        '',
      ].join('\n'),
    );
    const r = await runCli(['test', '-c', join(REPO_ROOT, 'gateway.yaml'), file], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `FAIL ${file}:7 wrongly expects bob to read it\n     expected allow, got deny forbidden (403) on route notes-read\n     decided by: user:bob can_read doc:1 = false\n`,
    );
    expect(r.stdout).toContain(`FAIL ${file}:12 wrongly expects the MCP delete to pass\n     expected allow, got hold (202) on route files-mcp\n`);
    expect(r.stdout).toContain(`FAIL ${file}:19 wrong status\n     expected deny unauthenticated (403), got deny unauthenticated (401) on route notes-read\n`);
    expect(r.stdout).not.toContain(':2 ');
    expect(r.stdout).toMatch(/FAIL 1 passed, 3 failed \(4 case\(s\) in 1 file\(s\)\)\n$/);

    const j = await runCli(['test', '--json', '-c', join(REPO_ROOT, 'gateway.yaml'), file], { cwd: dir });
    expect(j.code).toBe(1);
    const out = JSON.parse(j.stdout) as { passed: number; failed: number; cases: Array<Record<string, any>> };
    expect(out.passed).toBe(1);
    expect(out.failed).toBe(3);
    expect(out.cases[1]).toMatchObject({
      line: 7,
      passed: false,
      expected: { outcome: 'allow' },
      got: { outcome: 'deny', code: 'forbidden', status: 403, route: 'notes-read' },
    });
  });

  it("a file's own tuples and config apply to that file only", async () => {
    const withTuples = join(dir, 'tuples.test.yaml');
    writeFileSync(
      withTuples,
      `config: ${join(REPO_ROOT, 'gateway.yaml')}\ntuples:\n  - { user: "user:bob", relation: viewer, object: "doc:1" }\ntests:\n  - name: bob may read doc 1 here\n    agent: demo-agent\n    user: bob\n    request: GET /notes/docs/1\n    expect: allow\n`,
    );
    const plain = join(dir, 'plain.test.yaml');
    writeFileSync(plain, 'tests:\n  - name: but not here\n    agent: demo-agent\n    user: bob\n    request: GET /notes/docs/1\n    expect: deny forbidden\n');
    const r = await runCli(['test', '-c', join(REPO_ROOT, 'gateway.yaml'), withTuples, plain], { cwd: dir });
    expect(r.stdout).toBe('OK 2 passed, 0 failed (2 case(s) in 2 file(s))\n');
    expect(r.code).toBe(0);
    // The policies on disk are untouched.
    expect(readFileSync(join(REPO_ROOT, 'policies/tuples.yaml'), 'utf8')).not.toContain('relation: viewer, object: "doc:1"');
  });

  it('a malformed case is a usage error naming its line (exit 2)', async () => {
    const bad = join(dir, 'bad.test.yaml');
    writeFileSync(bad, 'tests:\n  - name: ok\n    request: GET /x\n    expect: allow\n  - name: typo\n    requets: GET /x\n    expect: allow\n');
    const r = await runCli(['test', '-c', join(REPO_ROOT, 'gateway.yaml'), bad], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:5: unknown key requets in a case`);
    const noExpect = join(dir, 'noexpect.test.yaml');
    writeFileSync(noExpect, 'tests:\n  - name: x\n    request: GET /x\n    expect: maybe\n');
    const r2 = await runCli(['test', '-c', join(REPO_ROOT, 'gateway.yaml'), noExpect], { cwd: dir });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`${noExpect}:2: expect: "maybe" is not allow`);
  });
});
