/**
 * The development sign-in (dev issuer as login provider, no identity.login):
 * what `npm start` shows. Headless Chromium types a user id on Warden's page,
 * then decides on a review link that needs link+login.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser } from '../support/browser.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from '../approvals/webhook-sink.js';
import { devPolicyYaml } from '../support/config.js';

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/login/fixtures')}
approvals:
  hold: 200ms
  review_auth: link+login
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "dev-login-webhook-secret-0123" }
routes:
  - name: notes
    match: { path: "/notes/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /notes }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:notes" }]
    approval: { when: 'request.method == "DELETE"', message: "Delete note {request.path}" }
`;

describe('development sign-in (dev issuer) with review_auth link+login', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let hook: WebhookSink;
  let browser: Browser;

  beforeAll(async () => {
    [upstream, hook, browser] = await Promise.all([startUpstream(), startWebhookSink(), launchBrowser()]);
    warden = await startWarden({ config: CONFIG, env: { HOOK_URL: hook.url, UPSTREAM_URL: upstream.url } });
  });

  afterAll(async () => {
    await browser?.close();
    await warden?.close();
    await Promise.allSettled([upstream?.close(), hook?.close()]);
  });

  async function held(path: string) {
    const token = await warden.token('bot', 'alice');
    const call = () => fetch(`${warden.url}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const first = await call();
    expect(first.status).toBe(202);
    const { approval_id: id } = (await first.json()) as { approval_id: string };
    return { reviewUrl: (await hook.next((d) => d.notice.id === id)).notice.review_url, call };
  }

  it('the review link asks for sign-in; bob is refused, alice approves and the request runs once', async () => {
    const h = await held('/notes/d1');
    const bob = await browser.newContext();
    const bobPage = await bob.newPage();
    await bobPage.goto(h.reviewUrl);
    expect(await bobPage.locator('#title').textContent()).toBe('Sign in (development)');
    await devSignInIfAsked(bobPage, 'bob');
    expect(await bobPage.textContent('body')).toContain('You are signed in as bob. This request must be decided by alice.');
    await bob.close();

    const alice = await browser.newContext();
    const page = await alice.newPage();
    await page.goto(h.reviewUrl);
    await devSignInIfAsked(page, 'alice');
    await page.click('button.approve');
    await page.waitForSelector('h1:has-text("Approved")');
    await alice.close();
    expect((await h.call()).status).toBe(200);
    expect(upstream.requests.filter((r) => r.url === '/d1').length).toBe(1);
  });

  it('the link alone decides nothing: a POST without a session is refused', async () => {
    const h = await held('/notes/d2');
    // Fetch the review page as a client with no session: it is sent to sign in.
    const res = await fetch(h.reviewUrl, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^\/\.warden\/login\?return_to=%2F\.warden%2Fapprovals%2F/);
    const form = new URLSearchParams({ t: new URL(h.reviewUrl).searchParams.get('t')!, csrf: 'c'.repeat(32), decision: 'approve' });
    const post = await fetch(h.reviewUrl.split('?')[0], {
      method: 'POST',
      headers: { cookie: `warden_review_csrf=${'c'.repeat(32)}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    expect(post.status).toBe(403);
    expect((await h.call()).status).toBe(202);
  });

  it('the dev sign-in form needs its own browser’s form token', async () => {
    const noTx = await fetch(`${warden.url}/.warden/login/dev`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'user=mallory&csrf=x',
    });
    expect(noTx.status).toBe(403);
    expect(noTx.headers.get('set-cookie') ?? '').not.toContain('warden_session');
    const crossSite = await fetch(`${warden.url}/.warden/login/dev`, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'user=mallory',
    });
    expect(crossSite.status).toBe(403);
  });
});
