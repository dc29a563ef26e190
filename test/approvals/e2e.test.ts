/**
 * Approvals end to end through a real Warden: dev-issuer tokens, the embedded
 * OpenFGA engine, a recording upstream, a real SMTP sink whose mail headless
 * Chromium opens to approve, and a real webhook receiver.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '../../src/approvals/notifiers.js';
import { launchBrowser, type Browser } from '../support/browser.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from './webhook-sink.js';
import { decide, openReview, submitDecision } from './review-client.js';
import { until } from '../support/eventually.js';
import { devPolicyYaml } from '../support/config.js';

const HOOK_SECRET = 'e2e-webhook-secret-0123456789';

function gatewayYaml(hold: string, maxPending = 5): string {
  return `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures', { cache_ttl: 0 })}
approvals:
  ttl: 2m
  hold: ${hold}
  max_pending_per_user: ${maxPending}
  max_grant: 1h
  notify:
    - email: { smtp: "\${SMTP_URL}", from: warden@example.test, to: "{claims.email}" }
    - webhook: { url: "\${HOOK_URL}", secret: "\${HOOK_SECRET}" }
routes:
  - name: payments
    match: { path: "/pay/:account/**", methods: [GET, POST, DELETE] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize:
      - { user: "agent:{agent}", relation: can_call, object: "api:payments" }
      - { user: "user:{user}", relation: can_pay, object: "account:{path.account}" }
    approval:
      when: 'request.method == "DELETE" || (has(body.amount) && body.amount > 100)'
      message: "Pay {body.amount} {body.currency} to {body.to} from {path.account}"
`;
}

describe('approvals end to end (SMTP, Chromium, webhook)', () => {
  let smtp: SmtpSink;
  let hook: WebhookSink;
  let upstream: Upstream;
  let browser: Browser;
  let slow: WardenHandle; // holds requests long enough for a human
  let quick: WardenHandle; // answers 202 almost at once
  let env: Record<string, string>;

  beforeAll(async () => {
    [smtp, hook, upstream, browser] = await Promise.all([startSmtpSink(), startWebhookSink(), startUpstream(), launchBrowser()]);
    env = { SMTP_URL: smtp.url, HOOK_URL: hook.url, HOOK_SECRET, UPSTREAM_URL: upstream.url };
    slow = await startWarden({ config: gatewayYaml('20s'), env });
    quick = await startWarden({ config: gatewayYaml('300ms'), env });
  });

  afterAll(async () => {
    await Promise.allSettled([slow?.close(), quick?.close()]);
    await Promise.allSettled([browser?.close(), smtp?.close(), hook?.close(), upstream?.close()]);
  });

  const forwarded = (path: string) => upstream.requests.filter((r) => r.url.startsWith(path)).length;

  it('holds the request, mails the user, Chromium approves from the mail, and the held request completes once', async () => {
    const token = await slow.token('bot', 'alice', [], { email: 'alice@example.test' });
    const body = JSON.stringify({ amount: 250, currency: 'EUR', to: 'bob' });
    const held = fetch(`${slow.url}/pay/acme/transfers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });

    const mail = await smtp.next((m) => m.to.includes('alice@example.test') && m.text.includes('Pay 250 EUR to bob'));
    expect(mail.subject).toContain('bot');
    const link = /https?:\/\/\S+\/review\?t=\S+/.exec(mail.text)?.[0];
    expect(link).toBeTruthy();
    expect(forwarded('/acme/transfers')).toBe(0);

    const page = await browser.newPage();
    try {
      const res = await page.goto(link!);
      expect(res?.status()).toBe(200);
      const text = await page.textContent('body');
      expect(text).toContain('Pay 250 EUR to bob from acme');
      expect(text).toContain('/pay/acme/transfers');
      expect(text).toContain('"amount": 250');
      await page.click('button.approve');
      await page.waitForSelector('h1:has-text("Approved")');
    } finally {
      await page.close();
    }

    const answer = await held;
    expect(answer.status).toBe(200);
    const echoed = (await answer.json()) as { method: string; url: string; body: string };
    expect(echoed).toMatchObject({ method: 'POST', url: '/acme/transfers', body });
    expect(forwarded('/acme/transfers')).toBe(1);
    const audit = slow.audits().find((a) => a.path === '/pay/acme/transfers' && a.status === 200);
    expect(audit?.approval_id).toBeTruthy();
    expect(slow.logs()).not.toContain(new URL(link!).searchParams.get('t'));
  });

  it('answers 202 with Location and Retry-After; after approval the re-sent request runs once, changes are refused', async () => {
    const token = await quick.token('bot', 'alice', [], { email: 'alice@example.test' });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ amount: 999, currency: 'EUR', to: 'carol' });
    const first = await fetch(`${quick.url}/pay/acme/wire`, { method: 'POST', headers, body });
    expect(first.status).toBe(202);
    expect(first.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await first.json()) as { code: string; approval_id: string; poll_url: string; expires_at: string };
    expect(problem.code).toBe('approval_pending');
    expect(first.headers.get('location')).toBe(`/.warden/approvals/${problem.approval_id}`);
    expect(Number(first.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Date.parse(problem.expires_at)).toBeGreaterThan(Date.now());

    // Identical request while pending: merged into the same approval.
    const again = await fetch(`${quick.url}/pay/acme/wire`, { method: 'POST', headers, body });
    expect(again.status).toBe(202);
    expect(((await again.json()) as { approval_id: string }).approval_id).toBe(problem.approval_id);

    const poll = await fetch(problem.poll_url, { headers: { authorization: `Bearer ${token}` } });
    expect(poll.status).toBe(200);
    expect(((await poll.json()) as { status: string }).status).toBe('pending');

    const d = await hook.next((x) => x.notice.id === problem.approval_id);
    expect(verifyWebhookSignature(HOOK_SECRET, String(d.headers['x-warden-signature']), d.raw)).toBe(true);
    expect(d.notice.message).toBe('Pay 999 EUR to carol from acme');
    const r = await decide(fetch, d.notice.review_url, 'approve');
    expect(r.status).toBe(200);
    const polled = await fetch(problem.poll_url, { headers: { authorization: `Bearer ${token}` } });
    expect(((await polled.json()) as { status: string }).status).toBe('approved');

    const changed = await fetch(`${quick.url}/pay/acme/wire`, {
      method: 'POST',
      headers: { ...headers, 'warden-approval': problem.approval_id },
      body: body.replace('999', '9999'),
    });
    expect(changed.status).toBe(403);
    expect(((await changed.json()) as { code: string }).code).toBe('approval_mismatch');

    const released = await fetch(`${quick.url}/pay/acme/wire`, { method: 'POST', headers: { ...headers, 'warden-approval': problem.approval_id }, body });
    expect(released.status).toBe(200);
    expect(((await released.json()) as { body: string }).body).toBe(body);
    const replay = await fetch(`${quick.url}/pay/acme/wire`, { method: 'POST', headers, body });
    expect(replay.status).toBe(403);
    expect(((await replay.json()) as { code: string }).code).toBe('approval_mismatch');
    expect(forwarded('/acme/wire')).toBe(1);
  });

  it('denies: 403 approval_denied and nothing forwarded', async () => {
    const token = await slow.token('bot', 'alice', [], { email: 'alice@example.test' });
    const held = fetch(`${slow.url}/pay/acme/items/1`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const d = await hook.next((x) => x.notice.url === '/pay/acme/items/1');
    expect((await decide(fetch, d.notice.review_url, 'deny')).status).toBe(200);
    const res = await held;
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('approval_denied');
    expect(forwarded('/acme/items/1')).toBe(0);
  });

  it('serves the review page unframeable and refuses a POST without the CSRF token', async () => {
    const token = await quick.token('bot', 'alice', [], { email: 'alice@example.test' });
    const res = await fetch(`${quick.url}/pay/acme/items/2`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const { approval_id } = (await res.json()) as { approval_id: string };
    const d = await hook.next((x) => x.notice.id === approval_id);
    const form = await openReview(fetch, d.notice.review_url);
    expect(form.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(form.headers.get('x-frame-options')).toBe('DENY');
    expect((await submitDecision(fetch, d.notice.review_url, form, 'approve', { omitCsrf: true })).status).toBe(403);
    expect((await submitDecision(fetch, d.notice.review_url, form, 'approve', { omitCookie: true })).status).toBe(403);

    // A page on another origin cannot frame it: Chromium refuses to render it in an iframe.
    const page = await browser.newPage();
    try {
      // `load` of the outer page waits for the iframe, so whatever it will show is there now.
      await page.setContent(`<iframe id="f" src="${d.notice.review_url}"></iframe>`, { waitUntil: 'load' });
      expect(page.frames()).toHaveLength(2);
      const framed = await page
        .frames()[1]
        .textContent('body')
        .catch(() => '');
      expect(framed ?? '').not.toContain('Approve');
    } finally {
      await page.close();
    }
    const poll = await fetch(`${quick.url}/.warden/approvals/${approval_id}`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await poll.json()) as { status: string }).status).toBe('pending');
  });

  it('merges and rate limits a burst of 50 risky requests; nothing reaches the upstream', async () => {
    const token = await quick.token('bot2', 'alice', [], { email: 'alice@example.test' });
    const before = upstream.requests.length;
    const hooksBefore = hook.deliveries.length;
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        fetch(`${quick.url}/pay/acme/burst`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ amount: 500 + (i % 8), to: 'x' }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { code: string; approval_id?: string } })),
      ),
    );
    const pending = answers.filter((a) => a.status === 202);
    const limited = answers.filter((a) => a.status === 429);
    expect(pending.length + limited.length).toBe(50);
    expect(limited.every((a) => a.body.code === 'rate_limited')).toBe(true);
    expect(new Set(pending.map((a) => a.body.approval_id)).size).toBe(5);
    expect(limited.length).toBeGreaterThan(0);
    expect(upstream.requests.length).toBe(before);
    // Wait for the five notifications themselves (not a guessed time), then check none was doubled.
    const ids = new Set(pending.map((a) => a.body.approval_id));
    await until(() => new Set(hook.deliveries.slice(hooksBefore).map((x) => x.notice.id)).size >= 5, { what: 'five notifications' });
    expect(hook.deliveries.length - hooksBefore).toBe(5);
    expect(new Set(hook.deliveries.slice(hooksBefore).map((x) => x.notice.id))).toEqual(ids);
  });

  it('lists the approval on the admin listener', async () => {
    const res = await fetch(`${quick.adminUrl}/approvals?status=pending`);
    expect(res.status).toBe(200);
    const { approvals } = (await res.json()) as { approvals: Array<{ status: string }> };
    expect(approvals.length).toBeGreaterThan(0);
    expect(approvals.every((a) => a.status === 'pending')).toBe(true);
  });
});
