/**
 * The approval state machine over the real memory store: hold, release once,
 * merge, rate limit, expiry, grants, revocation, review page and CSRF.
 * Notifications go to a real webhook receiver, which is how tests get the link.
 */

import { afterEach, beforeAll, afterAll, describe, expect, it, vi } from 'vitest';
import { baseConfig, createHarness, principal, runStage, type Harness } from './harness.js';
import { startWebhookSink, type WebhookSink } from './webhook-sink.js';
import { decide, openReview, submitDecision } from './review-client.js';
import { verifyWebhookSignature } from '../../src/approvals/notifiers.js';
import { until } from '../support/eventually.js';
import { checkApprovalRules, compileApprovalRules } from '../../src/approvals/rules.js';
import { configSchema } from '../../src/config/schema.js';
import { captureRequest, requestDigest } from '../../src/approvals/request-capture.js';

const SECRET = 'webhook-secret-0123456789';
let sink: WebhookSink;
let h: Harness | undefined;

beforeAll(async () => {
  sink = await startWebhookSink();
});
afterAll(async () => {
  await sink.close();
});
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function harness(approvals: Record<string, unknown> = {}, rule?: Record<string, unknown>) {
  h = await createHarness(baseConfig({ notify: [{ webhook: { url: sink.url, secret: SECRET } }], ...approvals }, rule));
  h.principals.set('agent-token', principal('bot', 'alice'));
  h.principals.set('other-agent-token', principal('other-bot', 'alice'));
  h.principals.set('bob-token', principal('bot', 'bob'));
  return h;
}

const fetchApp = (hh: Harness) => (url: string, init?: RequestInit) => Promise.resolve(hh.app.request(url, init));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (r: Response | Promise<Response>): Promise<any> => (await r).json();
const pay = (amount: number, to = 'mallory') => JSON.stringify({ amount, to });

describe('rules', () => {
  it('reports bad CEL and unknown template variables with their YAML path', () => {
    const cfg = configSchema.parse({
      routes: [
        { name: 'a', match: { path: '/a' }, upstream: { url: 'http://127.0.0.1:9' }, authorize: [], approval: { when: 'request.method ==' } },
        {
          name: 'b',
          match: { path: '/b' },
          upstream: { url: 'http://127.0.0.1:9' },
          authorize: [],
          approval: [{ when: 'true' }, { when: 'nosuchvar == 1', message: 'hi {secret.x}' }, { when: '1 + 1' }],
        },
      ],
    });
    const problems = checkApprovalRules(cfg.routes);
    expect(problems[0]).toMatch(/^routes\[0\]\.approval\[0\]\.when: /);
    expect(problems.some((p) => p.startsWith('routes[1].approval[1].when: ') && /nosuchvar/.test(p))).toBe(true);
    expect(problems).toContain('routes[1].approval[1].message: unknown template variable {secret.x}');
    expect(problems.some((p) => p.startsWith('routes[1].approval[2].when: must be a boolean'))).toBe(true);
    expect(() => compileApprovalRules(cfg.routes)).toThrowError(/routes\[0\]\.approval\[0\]\.when/);
  });

  it('lets a request through when no rule holds', async () => {
    const hh = await harness();
    const s = hh.state({ path: '/pay/1', body: pay(50) });
    expect(await runStage(hh, s)).toBeNull();
    expect(s.approvalId).toBeUndefined();
  });

  it('treats an expression that fails at run time as a match (fail closed)', async () => {
    const hh = await harness({ hold: '50ms' }, { when: 'request.query.dry_run != "true"' });
    const err = await runStage(hh, hh.state({ path: '/pay/1', body: pay(1) }));
    expect(err?.code).toBe('approval_pending');
  });
});

describe('hold and release', () => {
  it('releases the held request once when approved during the hold; the same request again is refused', async () => {
    const hh = await harness({ hold: '10s' });
    const s = hh.state({ path: '/pay/7', body: pay(500) });
    const held = runStage(hh, s);
    const d = await sink.next((x) => x.notice.url === '/pay/7');
    expect(d.notice.message).toBe('Pay 500 to mallory (7)');
    expect(d.notice.method).toBe('POST');
    expect(verifyWebhookSignature(SECRET, String(d.headers['x-warden-signature']), d.raw)).toBe(true);
    expect(verifyWebhookSignature(SECRET, String(d.headers['x-warden-signature']), d.raw.replace('500', '501'))).toBe(false);
    expect(verifyWebhookSignature('wrong-secret-0123456789', String(d.headers['x-warden-signature']), d.raw)).toBe(false);
    const r = await decide(fetchApp(hh), d.notice.review_url, 'approve');
    expect(r.status).toBe(200);
    expect(await held).toBeNull();
    expect(s.approvalId).toBe(d.notice.id);
    expect(hh.reauthorized).toBe(1);
    const again = await runStage(hh, hh.state({ path: '/pay/7', body: pay(500) }));
    expect(again?.code).toBe('approval_mismatch');
    expect(again?.reason).toBe('approval_used');
  });

  it('answers 202 when undecided; the agent polls, and the re-sent request runs exactly once', async () => {
    const hh = await harness({ hold: '100ms' });
    const err = await runStage(hh, hh.state({ path: '/pay/8', body: pay(900) }));
    expect(err?.code).toBe('approval_pending');
    expect(err?.status).toBe(202);
    const id = err?.extra.approval_id as string;
    expect(id).toMatch(/^[A-Za-z0-9_-]{24,}$/);
    expect(err?.headers.Location).toBe(`/.warden/approvals/${id}`);
    expect(Number(err?.headers['Retry-After'])).toBeGreaterThan(0);
    expect(err?.extra.poll_url).toBe(`http://127.0.0.1:8080/.warden/approvals/${id}`);

    const poll = await hh.app.request(`/.warden/approvals/${id}`, { headers: { authorization: 'Bearer agent-token' } });
    expect(poll.status).toBe(200);
    expect((await json(poll)).status).toBe('pending');
    for (const tok of ['other-agent-token', 'bob-token']) {
      const other = await hh.app.request(`/.warden/approvals/${id}`, { headers: { authorization: `Bearer ${tok}` } });
      expect(other.status).toBe(404);
    }
    expect((await hh.app.request(`/.warden/approvals/${id}`)).status).toBe(401);

    const d = await sink.next((x) => x.notice.id === id);
    expect((await decide(fetchApp(hh), d.notice.review_url, 'approve')).status).toBe(200);
    const pollAfter = await hh.app.request(`/.warden/approvals/${id}`, { headers: { authorization: 'Bearer agent-token' } });
    expect((await json(pollAfter)).status).toBe('approved');

    // A different body under the same approval id is refused and does not consume it.
    const changed = await runStage(hh, hh.state({ path: '/pay/8', body: pay(901), headers: { 'warden-approval': id } }));
    expect(changed?.code).toBe('approval_mismatch');
    expect(changed?.reason).toBe('approval_digest_mismatch');

    const s = hh.state({ path: '/pay/8', body: pay(900), headers: { 'warden-approval': id } });
    expect(await runStage(hh, s)).toBeNull();
    expect(s.approvalId).toBe(id);
    const twice = await runStage(hh, hh.state({ path: '/pay/8', body: pay(900), headers: { 'warden-approval': id } }));
    expect(twice?.code).toBe('approval_mismatch');
    const used = await hh.app.request(`/.warden/approvals/${id}`, { headers: { authorization: 'Bearer agent-token' } });
    expect((await json(used)).status).toBe('used');
  });

  it('answers approval_denied after a denial, also for the identical request without the id', async () => {
    const hh = await harness({ hold: '5s' });
    const held = runStage(hh, hh.state({ path: '/pay/9', body: pay(300) }));
    const d = await sink.next((x) => x.notice.url === '/pay/9');
    expect((await decide(fetchApp(hh), d.notice.review_url, 'deny')).status).toBe(200);
    expect((await held)?.code).toBe('approval_denied');
    expect((await runStage(hh, hh.state({ path: '/pay/9', body: pay(300) })))?.code).toBe('approval_denied');
  });

  it('re-checks authorization at release and keeps the approval unused when it now fails', async () => {
    const hh = await harness({ hold: '100ms' });
    const err = await runStage(hh, hh.state({ path: '/pay/10', body: pay(300) }));
    const id = err?.extra.approval_id as string;
    const d = await sink.next((x) => x.notice.id === id);
    await decide(fetchApp(hh), d.notice.review_url, 'approve');
    hh.allowed.add('deny-at-release');
    expect((await runStage(hh, hh.state({ path: '/pay/10', body: pay(300), headers: { 'warden-approval': id } })))?.code).toBe('forbidden');
    hh.allowed.delete('deny-at-release');
    expect(await runStage(hh, hh.state({ path: '/pay/10', body: pay(300), headers: { 'warden-approval': id } }))).toBeNull();
  });

  it('never executes an expired approval; an identical request afterwards asks again', async () => {
    const hh = await harness({ hold: '50ms', ttl: '600ms' });
    const err = await runStage(hh, hh.state({ path: '/pay/11', body: pay(300) }));
    const id = err?.extra.approval_id as string;
    const d = await sink.next((x) => x.notice.id === id);
    const form = await openReview(fetchApp(hh), d.notice.review_url);
    await until(() => Date.now() > Date.parse(err?.extra.expires_at as string) + 20, { what: 'the approval expiry' });
    const late = await submitDecision(fetchApp(hh), d.notice.review_url, form, 'approve');
    expect(late.status).toBe(409);
    expect((await runStage(hh, hh.state({ path: '/pay/11', body: pay(300), headers: { 'warden-approval': id } })))?.code).toBe('approval_expired');
    const fresh = await runStage(hh, hh.state({ path: '/pay/11', body: pay(300) }));
    expect(fresh?.code).toBe('approval_pending');
    expect(fresh?.extra.approval_id).not.toBe(id);
  });

  it('does not release a held request whose agent disconnected; the approval waits for the retry', async () => {
    const hh = await harness({ hold: '10s' });
    const s = hh.state({ path: '/pay/14', body: pay(300) });
    const gone = new AbortController();
    (s as typeof s & { signal?: AbortSignal }).signal = gone.signal;
    const held = runStage(hh, s);
    const d = await sink.next((x) => x.notice.url === '/pay/14');
    gone.abort();
    expect((await held)?.code).toBe('approval_pending');
    expect((await decide(fetchApp(hh), d.notice.review_url, 'approve')).status).toBe(200);
    const retry = hh.state({ path: '/pay/14', body: pay(300), headers: { 'warden-approval': d.notice.id } });
    expect(await runStage(hh, retry)).toBeNull();
    expect(retry.approvalId).toBe(d.notice.id);
  });

  it('refuses a request whose body was not buffered', async () => {
    const hh = await harness();
    const s = hh.state({ path: '/pay/12', body: pay(300) });
    s.body = undefined;
    expect((await runStage(hh, s))?.reason).toBe('approval_body_not_buffered');
  });

  it('refuses a machine token (no user to ask)', async () => {
    const hh = await harness();
    expect((await runStage(hh, hh.state({ path: '/pay/13', body: pay(300), user: null })))?.code).toBe('forbidden');
  });
});

describe('fatigue and abuse', () => {
  it('merges identical pending requests and rate limits distinct ones per user and agent', async () => {
    const hh = await harness({ hold: '200ms', max_pending_per_user: 5 });
    const before = sink.deliveries.length;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => runStage(hh, hh.state({ path: `/pay/burst`, body: pay(1000 + (i % 10)) }))));
    const codes = results.map((e) => e?.code);
    const pending = results.filter((e) => e?.code === 'approval_pending');
    const limited = results.filter((e) => e?.code === 'rate_limited');
    expect(codes.every((c) => c === 'approval_pending' || c === 'rate_limited')).toBe(true);
    const ids = new Set(pending.map((e) => e?.extra.approval_id));
    expect(ids.size).toBe(5); // 10 distinct bodies, 5 allowed pending
    expect(pending.length + limited.length).toBe(50);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]?.status).toBe(429);
    // Merged: one notification per approval, not per request.
    // Wait for the five notifications themselves (not a guessed time), then check none was doubled.
    await until(() => new Set(sink.deliveries.slice(before).map((x) => x.notice.id)).size >= 5, { what: 'five notifications' });
    expect(sink.deliveries.length - before).toBe(5);
    expect(new Set(sink.deliveries.slice(before).map((x) => x.notice.id))).toEqual(ids);
    // Another agent of the same user has its own budget.
    expect((await runStage(hh, hh.state({ path: '/pay/burst', body: pay(5000), agent: 'bot2' })))?.code).toBe('approval_pending');
  });

  it('limits polling to 20 per 10 s per approval: 429 rate_limited with Retry-After, other approvals unaffected, again after the window', async () => {
    const hh = await harness({ hold: '50ms' });
    const a = (await runStage(hh, hh.state({ path: '/pay/30', body: pay(700) })))?.extra.approval_id as string;
    const b = (await runStage(hh, hh.state({ path: '/pay/31', body: pay(800) })))?.extra.approval_id as string;
    expect(a).toBeTruthy();
    expect(b).toBeTruthy();
    expect(a).not.toBe(b);
    const poll = (id: string) => hh.app.request(`/.warden/approvals/${id}`, { headers: { authorization: 'Bearer agent-token' } });
    // Only Date is faked (timers stay real): the poll window is Date.now()'s 10 s slot. Start early in one.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Math.ceil(Date.now() / 10_000) * 10_000 + 1_000);
      for (let i = 1; i <= 20; i++) {
        const ok = await poll(a);
        expect(ok.status, `poll ${i}`).toBe(200);
        expect((await json(ok)).status).toBe('pending');
      }
      const limited = await poll(a);
      expect(limited.status).toBe(429);
      expect(limited.headers.get('retry-after')).toBe('5');
      expect(limited.headers.get('content-type')).toBe('application/problem+json');
      expect((await json(limited)).code).toBe('rate_limited');
      expect((await poll(a)).status).toBe(429); // still limited within the window

      // Another approval of the same agent and user has its own budget.
      const other = await poll(b);
      expect(other.status).toBe(200);
      expect((await json(other)).status).toBe('pending');

      // The next window polls again.
      vi.setSystemTime(Date.now() + 10_000);
      const again = await poll(a);
      expect(again.status).toBe(200);
      expect((await json(again)).status).toBe('pending');
    } finally {
      vi.useRealTimers();
    }
  });

  it('takes exactly one of concurrent approve/deny and of a double submit', async () => {
    const hh = await harness({ hold: '50ms' });
    const err = await runStage(hh, hh.state({ path: '/pay/20', body: pay(300) }));
    const d = await sink.next((x) => x.notice.id === err?.extra.approval_id);
    const f = fetchApp(hh);
    const [a, b] = await Promise.all([openReview(f, d.notice.review_url), openReview(f, d.notice.review_url)]);
    const results = await Promise.all([
      submitDecision(f, d.notice.review_url, a, 'approve'),
      submitDecision(f, d.notice.review_url, b, 'deny'),
      submitDecision(f, d.notice.review_url, a, 'approve'),
      submitDecision(f, d.notice.review_url, b, 'deny'),
    ]);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(3);
    expect(hh.logs().match(/"msg":"approval decided"/g)).toHaveLength(1);
  });
});

describe('review page', () => {
  it('shows the stored request escaped, with strict headers, and requires the CSRF token', async () => {
    const hh = await harness({ hold: '50ms' });
    const body = JSON.stringify({ amount: 5000, to: '<script>alert(1)</script>', note: 'pay\u202Eevil' });
    const err = await runStage(hh, hh.state({ path: '/pay/30', query: 'x=%3Cb%3E', body }));
    const d = await sink.next((x) => x.notice.id === err?.extra.approval_id);
    const f = fetchApp(hh);
    const form = await openReview(f, d.notice.review_url);
    expect(form.status).toBe(200);
    const csp = form.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(form.headers.get('x-frame-options')).toBe('DENY');
    expect(form.headers.get('cache-control')).toBe('no-store');
    expect(form.headers.get('referrer-policy')).toBe('no-referrer');
    expect(form.html).not.toContain('<script>');
    expect(form.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(form.html).toContain('\\u202e');
    expect(form.html).toContain(d.notice.confirmation_code);
    expect(form.html).toContain('/pay/30?x=%3Cb%3E');
    expect(form.html).toContain('bot');
    expect(form.html).toContain('alice');

    expect((await submitDecision(f, d.notice.review_url, form, 'approve', { omitCsrf: true })).status).toBe(403);
    expect((await submitDecision(f, d.notice.review_url, form, 'approve', { omitCookie: true })).status).toBe(403);
    expect((await submitDecision(f, d.notice.review_url, form, 'approve', { headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    const wrongT = d.notice.review_url.replace(/t=[^&]+/, 't=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    expect((await openReview(f, wrongT)).status).toBe(404);
    expect((await submitDecision(f, wrongT, form, 'approve')).status).toBe(404);
    const poll = await hh.app.request(`/.warden/approvals/${err?.extra.approval_id}`, { headers: { authorization: 'Bearer agent-token' } });
    expect((await json(poll)).status).toBe('pending');
    expect((await submitDecision(f, d.notice.review_url, form, 'approve')).status).toBe(200);
    // The review secret never reaches the logs.
    expect(hh.logs()).not.toContain(new URL(d.notice.review_url).searchParams.get('t'));
  });

  it('refuses to approve when `approvers:` names a relation the user lacks, and allows it when present', async () => {
    const hh = await harness({ hold: '50ms' }, { message: 'm', approvers: { relation: 'approver', object: 'account:{path.id}' } });
    const err = await runStage(hh, hh.state({ path: '/pay/40', body: pay(1) }));
    const d = await sink.next((x) => x.notice.id === err?.extra.approval_id);
    const f = fetchApp(hh);
    expect((await decide(f, d.notice.review_url, 'approve')).status).toBe(403);
    hh.allowed.add('user:alice approver account:40');
    expect((await decide(f, d.notice.review_url, 'approve')).status).toBe(200);
  });
});

describe('grants', () => {
  it('skips the prompt for matching requests during the grant, lists it, and honours revocation', async () => {
    const hh = await harness({ hold: '100ms', max_grant: '1h' });
    const err = await runStage(hh, hh.state({ path: '/pay/50', body: pay(300) }));
    const id = err?.extra.approval_id as string;
    const d = await sink.next((x) => x.notice.id === id);
    const page = await openReview(fetchApp(hh), d.notice.review_url);
    expect(page.html).toContain('<option value="30">30 minutes</option>');
    expect(page.html).not.toContain('value="240"');
    expect((await submitDecision(fetchApp(hh), d.notice.review_url, page, 'approve', { grantMinutes: 30 })).status).toBe(200);

    // Same agent, user, route, method and path, and the same values the rule read and showed
    // (amount, to): allowed without asking, even with other fields in the body.
    const other = hh.state({ path: '/pay/50', body: JSON.stringify({ amount: 300, to: 'mallory', memo: 'again' }) });
    expect(await runStage(hh, other)).toBeNull();
    // Another amount is not what the approver agreed to (#12 A.4): asked again.
    expect((await runStage(hh, hh.state({ path: '/pay/50', body: pay(301) })))?.code).toBe('approval_pending');
    // Another path or agent is not covered.
    expect((await runStage(hh, hh.state({ path: '/pay/51', body: pay(301) })))?.code).toBe('approval_pending');
    expect((await runStage(hh, hh.state({ path: '/pay/50', body: pay(302), agent: 'bot2' })))?.code).toBe('approval_pending');

    const list = await hh.app.request('/.warden/approvals/grants', { headers: { authorization: 'Bearer agent-token' } });
    const { grants } = await json(list);
    expect(grants).toHaveLength(1);
    expect(grants[0]).toMatchObject({ agent: 'bot', method: 'POST', path: '/pay/50', approval_id: id });
    const bobs = await hh.app.request('/.warden/approvals/grants', { headers: { authorization: 'Bearer bob-token' } });
    expect((await json(bobs)).grants).toHaveLength(0);
    expect(
      (await hh.app.request(`/.warden/approvals/grants/${grants[0].grant_id}`, { method: 'DELETE', headers: { authorization: 'Bearer bob-token' } })).status,
    ).toBe(404);

    // Revoked between approval and release: the approved request itself is refused too.
    expect(
      (await hh.app.request(`/.warden/approvals/grants/${grants[0].grant_id}`, { method: 'DELETE', headers: { authorization: 'Bearer agent-token' } })).status,
    ).toBe(204);
    expect((await runStage(hh, hh.state({ path: '/pay/50', body: pay(300), headers: { 'warden-approval': id } })))?.code).toBe('approval_denied');
    expect((await runStage(hh, hh.state({ path: '/pay/50', body: pay(303) })))?.code).toBe('approval_pending');
  });

  it('bounds the grant by approvals.max_grant', async () => {
    const hh = await harness({ hold: '100ms', max_grant: '10m' });
    const err = await runStage(hh, hh.state({ path: '/pay/60', body: pay(300) }));
    const d = await sink.next((x) => x.notice.id === err?.extra.approval_id);
    const page = await openReview(fetchApp(hh), d.notice.review_url);
    await submitDecision(fetchApp(hh), d.notice.review_url, page, 'approve', { grantMinutes: 100000 });
    const { grants } = await json(hh.app.request('/.warden/approvals/grants', { headers: { authorization: 'Bearer agent-token' } }));
    expect(Date.parse(grants[0].expires_at) - Date.now()).toBeLessThanOrEqual(600_000);
  });
});

describe('admin', () => {
  it('lists approvals without review secrets', async () => {
    const hh = await harness({ hold: '50ms' });
    const err = await runStage(hh, hh.state({ path: '/pay/70', body: pay(300) }));
    const d = await sink.next((x) => x.notice.id === err?.extra.approval_id);
    const res = await hh.admin.request('/approvals?status=pending');
    const text = await res.text();
    expect(JSON.parse(text).approvals.map((a: { approval_id: string }) => a.approval_id)).toContain(err?.extra.approval_id);
    expect(text).not.toContain(new URL(d.notice.review_url).searchParams.get('t'));
  });
});

describe('digest', () => {
  it('binds MCP tool calls by tool and canonical arguments, not the JSON-RPC id', async () => {
    const hh = await harness();
    const a = hh.state({
      path: '/pay/1',
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'delete_file', arguments: { path: 'x', force: true } } }),
    });
    const b = hh.state({
      path: '/pay/1',
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'delete_file', arguments: { force: true, path: 'x' } } }),
    });
    const c = hh.state({
      path: '/pay/1',
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'delete_file', arguments: { force: true, path: 'y' } } }),
    });
    a.mcp = { method: 'tools/call', id: 1, tool: 'delete_file', args: { path: 'x', force: true } };
    b.mcp = { method: 'tools/call', id: 2, tool: 'delete_file', args: { force: true, path: 'x' } };
    c.mcp = { method: 'tools/call', id: 3, tool: 'delete_file', args: { force: true, path: 'y' } };
    expect(requestDigest(captureRequest(a))).toBe(requestDigest(captureRequest(b)));
    expect(requestDigest(captureRequest(a))).not.toBe(requestDigest(captureRequest(c)));
    const d1 = hh.state({ path: '/pay/1', body: pay(1) });
    const d2 = hh.state({ path: '/pay/1', body: pay(1), contentType: 'text/plain' });
    expect(requestDigest(captureRequest(d1))).not.toBe(requestDigest(captureRequest(d2)));
  });
});
