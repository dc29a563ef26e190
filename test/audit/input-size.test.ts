/**
 * The values a decision record's `input` carries come from the agent: a field
 * a rule reads (here the approval message's `{body.to}`) can be as long as the
 * body limit allows. A record must stay small whatever the agent sends, or one
 * request makes its own record too long to be read back (the console skips
 * lines past 1 MiB, so the request disappears from the person's activity),
 * rotates the file sink's history away a few records at a time, and fills the
 * HTTP sink's buffer, which counts records, not bytes.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionLogReader } from '../../src/audit/read-back.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { requireBuiltCli } from '../support/cli.js';
import { devPolicyYaml } from '../support/config.js';

const config = (file: string) => `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures')}
audit:
  decisions: { sink: file, path: "${file}" }
routes:
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    approval: { when: 'body.amount > 100', message: "Pay {body.amount} to {body.to}" }
`;

describe('decision record inputs of agent-chosen size', () => {
  let upstream: Upstream;
  let dir: string;
  let file: string;
  let w: WardenHandle | undefined;
  const padded = 'mallory' + ' '.repeat(1_200_000);

  beforeAll(async () => {
    requireBuiltCli();
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-input-size-'));
    file = join(dir, 'decisions.jsonl');
    w = await startWarden({ config: config(file), env: { UPSTREAM_URL: upstream.url }, logLevel: 'warn' });
    const alice = await w.token('bot', 'alice');
    const pay = (to: string, id: string) =>
      fetch(`${w!.url}/pay/acme/transfer`, {
        method: 'POST',
        body: JSON.stringify({ amount: 60, to }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${alice}`, 'x-request-id': id },
      });
    expect((await pay('carol', 'pay-carol')).status).toBe(200);
    // Allowed and forwarded, like the one before: its `to` is what the approval message would show.
    expect((await pay(padded, 'pay-padded')).status).toBe(200);
    await w.close();
    w = undefined;
  }, 60_000);

  afterAll(async () => {
    await w?.close();
    await upstream?.close();
    if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('a forwarded request stays in the person’s activity read back from the log, whatever the size of a field its rules read', async () => {
    const page = await decisionLogReader(file, 10).page('alice', {}, { limit: 10 });
    expect(page.items.map((i) => i.id)).toEqual(['pay-padded', 'pay-carol']);
  });

  it('records a long value as missing (like a long object), never the value, and keeps each record small', () => {
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    for (const line of lines) expect(line.length).toBeLessThan(16 * 1024);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, any>).filter((r) => r.t === 'decision');
    const byId = Object.fromEntries(recs.map((r) => [r.id, r]));
    expect(byId['pay-carol']).toMatchObject({ input: { 'body.amount': 60, 'body.to': 'carol' } });
    expect(byId['pay-padded']).toMatchObject({ decision: 'allow', input: { 'body.amount': 60 }, input_missing: ['body.to'] });
  });
});
