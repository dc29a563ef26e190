/**
 * An approval binds what the approver saw (#12 A.2, A.4), end to end through a
 * real Warden, a recording upstream and a real webhook receiver for the links:
 * one body has one meaning; the review page shows the bytes that are
 * forwarded; a release carries only shown headers; the approved-to-used window
 * is the rule's own ttl; a grant covers only the values the approver agreed to.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from './webhook-sink.js';
import { decide, openReview, submitDecision } from './review-client.js';
import { devPolicyYaml } from '../support/config.js';

const yaml = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures', { cache_ttl: 0 })}
approvals:
  ttl: 10m
  hold: 200ms
  max_pending_per_user: 20
  max_grant: 1h
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "binding-test-secret-0123456789" }
routes:
  - name: payments
    match: { path: "/pay/:account/**", methods: [POST, DELETE] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize:
      - { user: "user:{user}", relation: can_pay, object: "account:{path.account}" }
    approval:
      when: 'request.method == "DELETE" || body.amount > 50'
      message: "Pay {body.amount} to {body.to} from {path.account}"
  - name: quick
    match: { path: "/quick/:account/**", methods: [POST] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /quick }
    authorize:
      - { user: "user:{user}", relation: can_pay, object: "account:{path.account}" }
    approval:
      ttl: 1500ms
      message: "Quick {body.amount}"
`;

let hook: WebhookSink;
let upstream: Upstream;
let warden: WardenHandle;
let headers: Record<string, string>;

beforeAll(async () => {
  [hook, upstream] = await Promise.all([startWebhookSink(), startUpstream()]);
  warden = await startWarden({ config: yaml, env: { HOOK_URL: hook.url, UPSTREAM_URL: upstream.url } });
  const token = await warden.token('bot', 'alice');
  headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
});

afterAll(async () => {
  await warden?.close();
  await Promise.allSettled([hook?.close(), upstream?.close()]);
});

beforeEach(() => {
  upstream.requests.length = 0;
});

type Pending = { code: string; approval_id: string; poll_url: string; expires_at: string };

async function hold(path: string, body: string | Buffer, extra: Record<string, string> = {}, method = 'POST'): Promise<Pending> {
  const res = await fetch(`${warden.url}${path}`, { method, headers: { ...headers, ...extra }, body });
  expect(res.status).toBe(202);
  return (await res.json()) as Pending;
}

async function reviewUrlOf(id: string): Promise<string> {
  return (await hook.next((x) => x.notice.id === id)).notice.review_url as string;
}

/** Poll until `predicate` holds (no fixed sleeps: a loaded machine only makes this slower). */
async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('A.2 one body, one meaning', () => {
  it.each([
    ['a duplicate key', '{"amount":5000,"to":"mallory","amount":60}'],
    ['a nested duplicate key', '{"amount":60,"to":"carol","meta":{"to":"carol","to":"mallory"}}'],
    ['a lone surrogate', '{"amount":60,"to":"carol\\ud800"}'],
  ])('refuses %s with 400 bad_request before any rule reads it', async (_label, body) => {
    const res = await fetch(`${warden.url}/pay/acme/transfers`, { method: 'POST', headers, body });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('bad_request');
    expect(upstream.requests).toHaveLength(0);
  });

  it('refuses invalid UTF-8', async () => {
    const body = Buffer.concat([Buffer.from('{"amount":60,"to":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
    const res = await fetch(`${warden.url}/pay/acme/transfers`, { method: 'POST', headers, body });
    expect(res.status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it('refuses a duplicate key even when Content-Type does not say JSON', async () => {
    const res = await fetch(`${warden.url}/pay/acme/transfers`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'text/plain' },
      body: '{"amount":5000,"amount":60}',
    });
    expect(res.status).toBe(400);
  });

  it('shows the approver the exact bytes that will be forwarded, indented but not re-serialized', async () => {
    const body = '{"amount":250.50,"to":"\\u0063arol","note":"a\\/b"}';
    const p = await hold('/pay/acme/exact', body);
    const page = await openReview(fetch, await reviewUrlOf(p.approval_id));
    expect(page.status).toBe(200);
    expect(page.html).toContain('&quot;amount&quot;: 250.50');
    expect(page.html).toContain('\\u0063arol');
    expect(page.html).toContain('a\\/b');
  });
});

describe('A.4 approvals bind what the approver saw', () => {
  it('a released request carries only the headers that were shown and digested', async () => {
    const body = JSON.stringify({ amount: 70, to: 'carol' });
    const p = await hold('/pay/acme/items', body, { accept: 'application/json' });
    const url = await reviewUrlOf(p.approval_id);
    const page = await openReview(fetch, url);
    expect(page.html).toContain('accept: application/json');
    expect((await submitDecision(fetch, url, page, 'approve')).status).toBe(200);

    // A changed shown header is another request.
    const changed = await fetch(`${warden.url}/pay/acme/items`, {
      method: 'POST',
      headers: { ...headers, accept: 'text/html', 'warden-approval': p.approval_id },
      body,
    });
    expect(changed.status).toBe(403);
    // A header that was never shown does not reach the upstream.
    const released = await fetch(`${warden.url}/pay/acme/items`, {
      method: 'POST',
      headers: {
        ...headers,
        accept: 'application/json',
        'warden-approval': p.approval_id,
        'x-delete-mode': 'purge-everything',
        'x-http-override-user': 'root',
      },
      body,
    });
    expect(released.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    const seen = upstream.requests[0].headers;
    expect(seen['x-delete-mode']).toBeUndefined();
    expect(seen['x-http-override-user']).toBeUndefined();
    expect(seen['content-type']).toBe('application/json');
    expect(seen.accept).toBe('application/json');
    expect(upstream.requests[0].body.toString()).toBe(body);
  });

  it('the approved-to-used window is the rule’s own ttl, not approvals.ttl', async () => {
    const body = JSON.stringify({ amount: 1 });
    const p = await hold('/quick/acme/x', body);
    expect((await decide(fetch, await reviewUrlOf(p.approval_id), 'approve')).status).toBe(200);
    const polled = (await (await fetch(p.poll_url, { headers: { authorization: headers.authorization } })).json()) as { status: string; expires_at: string };
    expect(polled.status).toBe('approved');
    // approvals.ttl is 10m; the rule says 1500ms.
    expect(Date.parse(polled.expires_at) - Date.now()).toBeLessThanOrEqual(1500);
    await until(() => Date.now() > Date.parse(polled.expires_at) + 50);
    const late = await fetch(`${warden.url}/quick/acme/x`, { method: 'POST', headers: { ...headers, 'warden-approval': p.approval_id }, body });
    expect(late.status).toBe(403);
    expect(((await late.json()) as { code: string }).code).toBe('approval_expired');
    expect(upstream.requests).toHaveLength(0);
  });

  it('a time-boxed grant for "pay 60 to carol" does not let {"amount":999999,"to":"mallory"} through', async () => {
    const p = await hold('/pay/acme/grant', JSON.stringify({ amount: 60, to: 'carol' }));
    const url = await reviewUrlOf(p.approval_id);
    const page = await openReview(fetch, url);
    // The approver is told what the grant covers.
    expect(page.html).toContain(
      'Only for requests with the same <code>body.amount</code>, <code>body.to</code>, <code>path.account</code>, <code>request.method</code>',
    );
    expect((await submitDecision(fetch, url, page, 'approve', { grantMinutes: 30 })).status).toBe(200);

    const evil = await fetch(`${warden.url}/pay/acme/grant`, { method: 'POST', headers, body: JSON.stringify({ amount: 999999, to: 'mallory' }) });
    expect(evil.status).toBe(202);
    const toMallory = await fetch(`${warden.url}/pay/acme/grant`, { method: 'POST', headers, body: JSON.stringify({ amount: 60, to: 'mallory' }) });
    expect(toMallory.status).toBe(202);
    expect(upstream.requests).toHaveLength(0);

    // What the approver agreed to runs without asking again, more than once (that is what a grant is for).
    for (let i = 0; i < 2; i++) {
      const again = await fetch(`${warden.url}/pay/acme/grant`, { method: 'POST', headers, body: JSON.stringify({ amount: 60, to: 'carol', ref: i }) });
      expect(again.status).toBe(200);
    }
    expect(upstream.requests).toHaveLength(2);
  });

  it('JSON sent as text/plain binds like JSON: a grant for 150 to carol does not let 999999 to mallory through', async () => {
    const plain = { ...headers, 'content-type': 'text/plain' };
    const p = await hold('/pay/acme/plain', JSON.stringify({ amount: 150, to: 'carol' }), { 'content-type': 'text/plain' });
    const url = await reviewUrlOf(p.approval_id);
    const page = await openReview(fetch, url);
    // The rule read the body: the grant is bound to its values, as for application/json.
    expect(page.html).toContain('<code>body.amount</code>, <code>body.to</code>');
    expect(page.html).toContain('Pay 150 to carol from acme');
    expect((await submitDecision(fetch, url, page, 'approve', { grantMinutes: 30 })).status).toBe(200);

    for (const type of [plain, headers]) {
      const evil = await fetch(`${warden.url}/pay/acme/plain`, { method: 'POST', headers: type, body: JSON.stringify({ amount: 999999, to: 'mallory' }) });
      expect(evil.status).toBe(202);
    }
    expect(upstream.requests).toHaveLength(0);
    const same = await fetch(`${warden.url}/pay/acme/plain`, { method: 'POST', headers: plain, body: JSON.stringify({ amount: 150, to: 'carol' }) });
    expect(same.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  });

  it('revoking an approved approval ends its grant: nothing it covered runs without a new decision', async () => {
    const body = JSON.stringify({ amount: 70, to: 'dave' });
    const p = await hold('/pay/acme/revoked', body);
    const url = await reviewUrlOf(p.approval_id);
    const page = await openReview(fetch, url);
    expect((await submitDecision(fetch, url, page, 'approve', { grantMinutes: 30 })).status).toBe(200);
    const grants = async () =>
      ((await (await fetch(`${warden.url}/.warden/approvals/grants`, { headers })).json()) as { grants: Array<{ approval_id: string }> }).grants;
    expect((await grants()).map((g) => g.approval_id)).toContain(p.approval_id);

    const revoked = await fetch(`${warden.url}/.warden/approvals/${p.approval_id}`, { method: 'DELETE', headers });
    expect(revoked.status).toBe(200);
    expect((await grants()).map((g) => g.approval_id)).not.toContain(p.approval_id);
    // The same request now meets the revoked approval (by its digest), not the grant.
    const again = await fetch(`${warden.url}/pay/acme/revoked`, { method: 'POST', headers, body });
    expect(again.status).toBe(403);
    expect(((await again.json()) as { code: string }).code).toBe('approval_denied');
    // Another request the grant would have covered (same bound values, other bytes) is held for a new decision.
    const other = await fetch(`${warden.url}/pay/acme/revoked`, { method: 'POST', headers, body: JSON.stringify({ amount: 70, to: 'dave', ref: 1 }) });
    expect(other.status).toBe(202);
    expect(upstream.requests).toHaveLength(0);
  });

  it('a grant re-evaluates `when`: a request the rule does not hold passes as it would without the grant', async () => {
    const small = await fetch(`${warden.url}/pay/acme/grant`, { method: 'POST', headers, body: JSON.stringify({ amount: 5, to: 'mallory' }) });
    expect(small.status).toBe(200);
  });
});
