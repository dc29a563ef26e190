/**
 * Who is asked to approve comes from the user's identity, never from what the
 * agent sent (SECURITY.md, approvals: wrong approver). An email recipient or a
 * CIBA login_hint templated from `{body.*}`, `{query.*}`, `{path.*}` or
 * `{args.*}` would let an agent have the review link (which alone approves in
 * `review_auth: link`) sent to an address it chose: `warden validate` and
 * `warden start` refuse such a config.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';

let dir: string;
const model = join(REPO_ROOT, 'policies/model.fga');

function config(to: string, loginHint: string): string {
  return [
    'server: { listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0" }',
    'identity: { dev_issuer: true }',
    `authz: { model: ${model} }`,
    'approvals:',
    '  notify:',
    `    - email: { smtp: "smtp://127.0.0.1:2525", from: warden@example.test, to: "${to}" }`,
    '  ciba:',
    '    issuer: https://idp.example.test/',
    '    client_id: warden',
    '    client_secret: not-a-real-secret',
    `    login_hint: "${loginHint}"`,
    'routes:',
    '  - name: pay',
    '    match: { path: "/pay/:account" }',
    '    upstream: { url: "http://127.0.0.1:9" }',
    '    authorize: []',
    '    approval: [{ message: "Pay {body.amount}" }]',
    '',
  ].join('\n');
}

async function run(command: 'validate' | 'start', name: string, text: string) {
  writeFileSync(join(dir, name), text);
  // A start that does not refuse would serve until stopped: the timeout stops it (and fails the test).
  return runCli([command, '-c', name], { cwd: dir, env: { ...process.env, NODE_ENV: 'development' }, timeoutMs: 15_000 });
}

beforeAll(() => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-recipients-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('approval recipients come from the identity', () => {
  it('refuses an email recipient and a CIBA login_hint the agent chooses', async () => {
    const r = await run('validate', 'agent-chosen.yaml', config('{body.approver}', '{query.who}'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('approvals.notify[0].email.to');
    expect(r.stderr).toContain('{body.approver} is chosen by the agent, which could have the review link sent to itself');
    expect(r.stderr).toContain('approvals.ciba.login_hint');
    expect(r.stderr).toContain('{query.who} is chosen by the agent, which could have the approval request sent to itself');
  });

  it('names every agent-chosen part of a mixed template (path, args, agent)', async () => {
    const r = await run('validate', 'mixed.yaml', config('{path.account}+{args.x}@{claims.domain}', '{agent}-{user}'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('{path.account}, {args.x} are chosen by the agent');
    expect(r.stderr).toContain('{agent} is chosen by the agent');
    expect(r.stderr).not.toContain('{claims.domain} is chosen');
  });

  it('warden start refuses the same config before it serves', async () => {
    const r = await run('start', 'start.yaml', config('{body.approver}', '{user}'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('{body.approver} is chosen by the agent');
  });

  it('accepts recipients from the user: {user}, {claims.*}, a fixed address', async () => {
    for (const [to, hint] of [
      ['{claims.email}', '{user}'],
      ['{user}@example.test', '{claims.email}'],
      ['approvers@example.test', 'login:{claims.preferred_username}'],
    ]) {
      const r = await run('validate', 'ok.yaml', config(to, hint));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
  });
});
