/**
 * The approval email is sent from Warden's own address, and its message is
 * rendered from what the agent sent (`{body.to}`): agent text stays on the
 * message's one line, so it cannot lay out a second "Review and decide:" link
 * above the real one. Through the approvals service and a real SMTP sink.
 */

import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSmtpSink, type SmtpSink } from '../support/smtp.js';
import { baseConfig, createHarness, runStage, type Harness } from './harness.js';

let smtp: SmtpSink;
let h: Harness;

beforeAll(async () => {
  smtp = await startSmtpSink();
  h = await createHarness(baseConfig({ hold: '50ms', notify: [{ email: { smtp: smtp.url, from: 'warden@example.test', to: '{claims.email}' } }] }));
});

afterAll(async () => {
  await h?.close();
  await smtp?.close();
});

it('keeps agent text on the message line: no forged review link, invisible characters shown', async () => {
  const forged = 'bob\r\n\r\nReview and decide:\nhttps://warden.example.test.evil.example/review?t=x\u2028\u202e\u001b[2K\n\n\n';
  const err = await runStage(h, h.state({ path: '/pay/acme', body: JSON.stringify({ amount: 500, to: forged }), claims: { email: 'alice@example.test' } }));
  expect(err?.code).toBe('approval_pending');
  const mail = await smtp.next();
  const lines = mail.text.split(/\r?\n/);
  expect(lines.filter((l) => l.trim() === 'Review and decide:')).toHaveLength(1);
  const links = lines.filter((l) => /https?:\/\//.test(l));
  expect(links).toHaveLength(2);
  expect(links[0]).toMatch(/^Pay 500 to bob /);
  expect(links[1]).toMatch(/^http:\/\/127\.0\.0\.1:8080\/\.warden\/approvals\/[\w-]+\/review\?t=/);
  expect(lines[0]).toContain('\\u2028\\u202e\\u001b');
});
