/**
 * Rate limits and budgets through a real Warden (memory store): 429 with the
 * IETF RateLimit fields, 403 budget_exceeded, 400 for amounts that are not
 * numbers, release on upstream failure, escalation to a person through the
 * approvals service, GET /.warden/budgets and the metrics.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from '../approvals/webhook-sink.js';
import { decide } from '../approvals/review-client.js';
import { devPolicyYaml } from '../support/config.js';

const config = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures')}
approvals:
  ttl: 5m
  hold: 300ms
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "limits-test-webhook-secret" }
routes:
  - name: search
    match: { path: "/search/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /search }
    authorize: []
    rate_limit: { requests: 3, per: 1h }
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    budget: { key: "{user}", amount: "{body.amount}", max: 100, per: 24h, over: deny }
  - name: both
    match: { path: "/both/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /both }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    rate_limit: { requests: 1, per: 1h }
    budget: { key: "{user}", amount: "{body.amount}", max: 100, per: 24h }
  - name: pay-big
    match: { path: "/big/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /big }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    budget: { key: "{user}", amount: "{body.amount}", max: 500, per: 24h, over: approve }
  - name: pay-big-ruled
    match: { path: "/ruled/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /ruled }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    budget: { key: "{user}", amount: "{body.amount}", max: 500, per: 24h, over: approve }
    approval:
      - when: 'body.to != "acct-9"'
        message: "Pay {body.amount} to {body.to}"
  - name: per-agent
    match: { path: "/per-agent/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /per-agent }
    authorize: []
    budget: { key: "{agent}:{user}", amount: 1, max: 10, per: 1h }
  - name: per-account
    match: { path: "/per-account/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /per-account }
    authorize: []
    budget: { key: "{path.account}", amount: 1, max: 10, per: 1h }
`;

const json = (amount: unknown) => JSON.stringify({ amount, to: 'acct-9' });

describe('rate limits and budgets through the gateway', () => {
  let upstream: Upstream;
  let hook: WebhookSink;
  let w: WardenHandle;
  let alice: string;
  let bob: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    hook = await startWebhookSink();
    w = await startWarden({ config, env: { UPSTREAM_URL: upstream.url, HOOK_URL: hook.url } });
    alice = await w.token('bot', 'alice');
    bob = await w.token('bot', 'bob');
  });
  afterAll(async () => {
    await w?.close();
    await hook?.close();
    await upstream?.close();
  });
  beforeEach(() => {
    upstream.setHandler((req, res, body) => {
      const payload = JSON.stringify({ ok: true, url: req.url, body: body.toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end(payload);
    });
  });

  const post = (path: string, token: string, body: string) =>
    fetch(`${w.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
  const budgets = async (token: string) => {
    const res = await fetch(`${w.url}/.warden/budgets`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as { budgets: Array<Record<string, unknown>> };
  };

  it('answers 429 rate_limited with Retry-After and the IETF RateLimit-Policy / RateLimit fields; keys are per agent and user', async () => {
    // Every answer let through says where the agent stands: GCRA, 3 per hour (one every 20 minutes).
    for (let i = 0; i < 3; i++) {
      const ok = await fetch(`${w.url}/search/q`, { headers: { authorization: `Bearer ${alice}` } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('ratelimit-policy')).toBe('"search";q=3;w=3600');
      expect(ok.headers.get('ratelimit')).toBe(`"search";r=${2 - i};t=${1200 * (i + 1)}`);
    }
    const before = upstream.requests.length;
    const res = await fetch(`${w.url}/search/q`, { headers: { authorization: `Bearer ${alice}` } });
    expect(res.status).toBe(429);
    const problem = (await res.json()) as Record<string, unknown>;
    expect(problem.code).toBe('rate_limited');
    const retry = Number(res.headers.get('retry-after'));
    // One of 3 per hour frees up 20 minutes after the first.
    expect(retry).toBeGreaterThan(1100);
    expect(retry).toBeLessThanOrEqual(1200);
    expect(res.headers.get('ratelimit-policy')).toBe('"search";q=3;w=3600');
    expect(res.headers.get('ratelimit')).toBe(`"search";r=0;t=${retry}`);
    expect(problem).toMatchObject({ policy: 'search', retry_after: retry });
    expect(upstream.requests.length).toBe(before);
    // Bob has his own key.
    expect((await fetch(`${w.url}/search/q`, { headers: { authorization: `Bearer ${bob}` } })).status).toBe(200);
    const metrics = await (await fetch(`${w.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/warden_rate_limited_total\{route="search",tool=""\} 1/);
  });

  it("adds Warden's RateLimit fields after the upstream's own of the same name, never replacing them", async () => {
    const carol = await w.token('bot', 'carol');
    upstream.setHandler((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'RateLimit-Policy': '"upstream";q=10;w=1', RateLimit: '"upstream";r=9;t=1' }).end('{}');
    });
    const res = await fetch(`${w.url}/search/q`, { headers: { authorization: `Bearer ${carol}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('ratelimit-policy')).toBe('"upstream";q=10;w=1, "search";q=3;w=3600');
    expect(res.headers.get('ratelimit')).toBe('"upstream";r=9;t=1, "search";r=2;t=1200');
  });

  it('reserves, commits and refuses past max with 403 budget_exceeded (exact fit allowed)', async () => {
    expect((await post('/pay/acme/charges', alice, json(60))).status).toBe(200);
    const over = await post('/pay/acme/charges', alice, json(50));
    expect(over.status).toBe(403);
    expect(await over.json()).toMatchObject({ code: 'budget_exceeded', budget: 'pay', amount: 50, max: 100, spent: 60, remaining: 40 });
    expect((await post('/pay/acme/charges', alice, json(40))).status).toBe(200);
    expect((await post('/pay/acme/charges', alice, json(0.01))).status).toBe(403);
    const mine = (await budgets(alice)).budgets.find((b) => b.route === 'pay');
    expect(mine).toMatchObject({ key: 'alice', max: 100, spent: 100, held: 0, remaining: 0, window_seconds: 86400, over: 'deny' });
    const metrics = await (await fetch(`${w.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/warden_budget_over_total\{action="deny",route="pay",tool=""\} 2/);
    expect(metrics).toMatch(/warden_budget_spent_total\{route="pay",tool=""\} 100/);
  });

  it('refuses amounts that are not finite non-negative JSON numbers with 400, reserving nothing', async () => {
    const start = (await budgets(bob)).budgets.find((b) => b.route === 'pay');
    for (const body of [
      json('20'),
      json(-1),
      json(null),
      JSON.stringify({ to: 'x' }),
      '{"amount": 1e400}',
      json({ value: 1 }),
      json([1]),
      '{"amount": 1000, "amount": 1}',
    ]) {
      const res = await post('/pay/bobco/charges', bob, body);
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('bad_request');
    }
    expect((await budgets(bob)).budgets.find((b) => b.route === 'pay')).toEqual(start);
  });

  it('releases the reservation when the upstream answers 5xx or cannot be reached; commits a 4xx', async () => {
    upstream.setHandler((_req, res) => void res.writeHead(503).end('down'));
    expect((await post('/pay/bobco/charges', bob, json(30))).status).toBe(503);
    upstream.setHandler((req, res) => void req.socket.destroy());
    expect((await post('/pay/bobco/charges', bob, json(30))).status).toBe(502);
    await expect.poll(async () => (await budgets(bob)).budgets.find((b) => b.route === 'pay')).toMatchObject({ spent: 0, held: 0 });
    upstream.setHandler((_req, res) => void res.writeHead(422).end('no'));
    expect((await post('/pay/bobco/charges', bob, json(30))).status).toBe(422);
    await expect.poll(async () => (await budgets(bob)).budgets.find((b) => b.route === 'pay')).toMatchObject({ spent: 30, held: 0, remaining: 70 });
  });

  it('holds an over-budget request for the user with the figures in the notification and on the review page; once approved it runs and counts', async () => {
    expect((await post('/big/acme/transfers', alice, json(450))).status).toBe(200);
    const held = await post('/big/acme/transfers', alice, json(80));
    expect(held.status).toBe(202);
    const pending = (await held.json()) as { code: string; approval_id: string };
    expect(pending.code).toBe('approval_pending');
    const delivery = await hook.next((d) => d.notice.id === pending.approval_id);
    expect(delivery.notice.message).toContain('spends 80');
    expect(delivery.notice.message).toContain('Spent 450 of 500');
    expect(delivery.notice.message).toContain('remaining 50');
    const page = await (await fetch(delivery.notice.review_url)).text();
    expect(page).toContain('Spent 450 of 500');
    expect(page).toContain('remaining 50');
    // Nothing was forwarded or counted while held.
    expect((await budgets(alice)).budgets.find((b) => b.route === 'pay-big')).toMatchObject({ spent: 450, held: 0 });
    expect((await decide(fetch, delivery.notice.review_url, 'approve')).status).toBe(200);
    const forwardedBefore = upstream.requests.length;
    const again = await post('/big/acme/transfers', alice, json(80));
    expect(again.status).toBe(200);
    expect(upstream.requests.length).toBe(forwardedBefore + 1);
    await expect.poll(async () => (await budgets(alice)).budgets.find((b) => b.route === 'pay-big')).toMatchObject({ spent: 530, held: 0, remaining: 0 });
    // The approval was for that exact request: a different amount is held afresh.
    expect((await post('/big/acme/transfers', alice, json(81))).status).toBe(202);
  });

  it('a time-boxed grant given on an over-budget hold lets the amount the approver saw through again, not another', async () => {
    const send = (amount: number) => post('/big/bobco/transfers', bob, json(amount));
    expect((await send(490)).status).toBe(200);
    const held = await send(80);
    expect(held.status).toBe(202);
    const { approval_id: id } = (await held.json()) as { approval_id: string };
    const delivery = await hook.next((d) => d.notice.id === id);
    expect((await decide(fetch, delivery.notice.review_url, 'approve', 10)).status).toBe(200);
    expect((await send(80)).status).toBe(200); // the approved request itself
    expect((await send(80)).status).toBe(200); // the grant: the same amount again
    const forwarded = upstream.requests.length;
    // The approver agreed to 80 over the budget, not to 5000: that is asked afresh, and nothing goes upstream.
    expect((await send(5000)).status).toBe(202);
    expect(upstream.requests.length).toBe(forwarded);
    await expect.poll(async () => (await budgets(bob)).budgets.find((b) => b.route === 'pay-big')).toMatchObject({ spent: 650, held: 0 });
  });

  it("a grant on an over-budget hold also binds what the route's own rule would have asked about", async () => {
    const send = (amount: number, to: string) => post('/ruled/bobco/transfers', bob, JSON.stringify({ amount, to }));
    expect((await send(490, 'acct-9')).status).toBe(200);
    const held = await send(80, 'acct-1');
    expect(held.status).toBe(202);
    const { approval_id: id } = (await held.json()) as { approval_id: string };
    const delivery = await hook.next((d) => d.notice.id === id);
    expect(delivery.notice.message).toContain('spends 80');
    // The review page says what a grant would cover: the amount over the budget and what the route's rule reads and shows.
    const page = await (await fetch(delivery.notice.review_url)).text();
    expect(page).toContain('Only for requests with the same <code>body.amount</code>, <code>body.to</code>, <code>budget amount</code> as this one');
    expect((await decide(fetch, delivery.notice.review_url, 'approve', 10)).status).toBe(200);
    expect((await send(80, 'acct-1')).status).toBe(200); // the approved request itself
    expect((await send(80, 'acct-1')).status).toBe(200); // the grant
    // Same amount, another payee: the route's rule would have asked about it; so does the grant.
    expect((await send(80, 'acct-666')).status).toBe(202);
  });

  it('a request a rate limit refuses spends nothing of its budget (the reservation made alongside is released)', async () => {
    expect((await post('/both/acme/x', alice, json(10))).status).toBe(200);
    const limited = await post('/both/acme/x', alice, json(10));
    expect(limited.status).toBe(429);
    await expect.poll(async () => (await budgets(alice)).budgets.find((b) => b.route === 'both')).toMatchObject({ spent: 10, held: 0, remaining: 90 });
    // A bad amount is refused before anything is counted: no quota used, nothing reserved.
    expect((await post('/both/bobco/x', bob, json('10'))).status).toBe(400);
    expect((await post('/both/bobco/x', bob, json(10))).status).toBe(200);
  });

  it('GET /.warden/budgets needs a valid bearer token or a signed-in person', async () => {
    expect((await fetch(`${w.url}/.warden/budgets`)).status).toBe(401);
    expect((await fetch(`${w.url}/.warden/budgets`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const cookie = await devSignIn('alice');
    const res = await fetch(`${w.url}/.warden/budgets`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { user: string; budgets: Array<Record<string, unknown>> };
    expect(body.user).toBe('alice');
    expect(body.budgets.find((b) => b.route === 'pay')).toMatchObject({ key: 'alice', spent: 100, remaining: 0 });
    // A person has one figure per agent for a key naming {agent}; a key made of the request has none to show.
    expect(body.budgets.find((b) => b.route === 'per-agent')).toMatchObject({ key: null, per_agent: true });
    expect(body.budgets.find((b) => b.route === 'per-account')).toMatchObject({ key: null, per_request: true });
    expect((await fetch(`${w.url}/per-agent/x`, { headers: { authorization: `Bearer ${alice}` } })).status).toBe(200);
    await expect
      .poll(async () => (await budgets(alice)).budgets.find((b) => b.route === 'per-agent'))
      .toMatchObject({ key: 'bot:alice', spent: 1, remaining: 9 });
    // A bearer header is judged alone: a session cookie riding along does not rescue a bad token.
    expect((await fetch(`${w.url}/.warden/budgets`, { headers: { cookie, authorization: 'Bearer nope' } })).status).toBe(401);
  });

  /** Sign in on the development login page like a browser without JavaScript; the session cookie. */
  async function devSignIn(user: string): Promise<string> {
    const page = await fetch(`${w.url}/.warden/login`);
    const tx = (page.headers.get('set-cookie') ?? '').split(';')[0];
    const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
    const done = await fetch(`${w.url}/.warden/login/dev`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: tx, origin: w.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, user }).toString(),
    });
    const session = done.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .find((c) => !c.endsWith('='));
    if (!session) throw new Error(`dev sign-in answered ${done.status} without a session cookie`);
    return session;
  }
});
