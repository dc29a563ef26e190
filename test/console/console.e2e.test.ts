/**
 * The signed-in person's console, driven in headless Chromium: alice sees the
 * request her agent waits on and approves it (the agent's retry runs exactly
 * once), approves for a while and revokes the grant (held again); bob, signed
 * in, sees none of alice's items and cannot act on them with crafted
 * requests; a request arriving while the pointer rests on a card's button
 * does not slide under it (E.13); every answer has a strict CSP and every form
 * a CSRF token. Screenshots at phone and desktop width go to test/.screenshots/ (gitignored).
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, SCREENSHOTS, type Browser, type BrowserContext, type Page } from '../support/browser.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml, upstreamRouteYaml } from '../support/config.js';

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/login/fixtures')}
approvals:
  hold: 200ms
  review_auth: link+login
routes:
${upstreamRouteYaml({ name: 'notes', object: 'api:notes' })}
    approval: { when: 'request.method == "DELETE" || request.method == "POST"', message: "Change note {request.path}" }
`;

describe('console for a signed-in person (dev issuer)', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    [upstream, browser] = await Promise.all([startUpstream(), launchBrowser()]);
    warden = await startWarden({ config: CONFIG, env: { UPSTREAM_URL: upstream.url } });
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await warden?.close();
    await upstream?.close();
  });

  async function signedIn(user: string, width = 1280, height = 900): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width, height } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(`${warden.url}/.warden/console`);
    await devSignInIfAsked(page, user);
    expect(new URL(page.url()).pathname).toBe('/.warden/console');
    expect(await page.textContent('#who')).toBe(user);
    return page;
  }

  async function held(user: string, method: string, path: string, body?: string) {
    const token = await warden.token('bot', user);
    const call = () =>
      fetch(`${warden.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body } : {}),
      });
    const first = await call();
    expect(first.status).toBe(202);
    const { approval_id: id } = (await first.json()) as { approval_id: string };
    return { id, call };
  }

  it('alice approves a held request from the console; the retry runs exactly once', async () => {
    const h = await held('alice', 'POST', '/notes/n1', '{"title":"groceries","text":"milk"}');
    const page = await signedIn('alice');
    const card = page.locator(`#approval-${h.id}`);
    await expect.poll(() => card.count()).toBe(1);
    expect(await card.locator('h3').textContent()).toBe('Change note /notes/n1');
    expect(await card.locator('.request').textContent()).toBe('POST /notes/n1');
    expect(await card.locator('.agent').textContent()).toBe('bot');
    expect(await card.locator('pre').textContent()).toContain('"groceries"');
    await page.screenshot({ path: join(SCREENSHOTS, 'console-desktop.png'), fullPage: true });
    await Promise.all([page.waitForURL(/done=approved/), card.locator('button.approve').click()]);
    expect(await page.textContent('#notice')).toContain('Approved once');
    expect(await page.locator(`#approval-${h.id}`).count()).toBe(0);
    expect((await h.call()).status).toBe(200);
    const again = await h.call();
    expect(again.status).toBe(403); // used up: a replay of the approved request is refused
    expect(((await again.json()) as { code: string }).code).toBe('approval_mismatch');
    expect(upstream.requests.filter((r) => r.url === '/n1' && r.method === 'POST').length).toBe(1);
  });

  it('approve for a while creates a grant; revoking it from the console holds the next request again', async () => {
    const h = await held('alice', 'DELETE', '/notes/g1');
    const page = await signedIn('alice', 390, 844);
    const card = page.locator(`#approval-${h.id}`);
    await expect.poll(() => card.count()).toBe(1);
    await page.screenshot({ path: join(SCREENSHOTS, 'console-phone.png'), fullPage: true });
    await card.locator('select[name=grant_minutes]').selectOption('15');
    await Promise.all([page.waitForURL(/done=granted/), card.locator('button.approve-grant').click()]);
    expect((await h.call()).status).toBe(200);
    expect((await h.call()).status).toBe(200); // the grant lets it through without asking
    const token0 = await warden.token('bot', 'alice');
    expect((await fetch(`${warden.url}/notes/g1?before=revoke`, { method: 'DELETE', headers: { authorization: `Bearer ${token0}` } })).status).toBe(200);
    const grant = page.locator('li.grant');
    expect(await grant.count()).toBe(1);
    expect(await grant.textContent()).toContain('DELETE /notes/g1');
    await Promise.all([page.waitForURL(/done=grant_revoked/), grant.locator('button.revoke').click()]);
    expect(await page.locator('li.grant').count()).toBe(0);
    // The next such request (a new one: the revoked approval itself stays refused) is held again.
    const token = await warden.token('bot', 'alice');
    const next = await fetch(`${warden.url}/notes/g1?after=revoke`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(next.status).toBe(202);
    expect((await h.call()).status).toBe(403);
  });

  it('bob sees none of alice’s items and cannot act on them by crafting requests', async () => {
    const h = await held('alice', 'DELETE', '/notes/b1');
    // alice holds a grant too, so bob has a grant id to aim at.
    const alice = await signedIn('alice');
    const card = alice.locator(`#approval-${h.id}`);
    await expect.poll(() => card.count()).toBe(1);
    await card.locator('select[name=grant_minutes]').selectOption('15');
    await Promise.all([alice.waitForURL(/done=granted/), card.locator('button.approve-grant').click()]);
    const grantId = ((await alice.locator('li.grant').first().getAttribute('id')) ?? '').replace(/^grant-/, '');
    expect(grantId).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    const h2 = await held('alice', 'POST', '/notes/b2', '{"secret":"alice-only"}');

    const bob = await signedIn('bob');
    await expect.poll(async () => (await alice.reload(), alice.locator(`#approval-${h2.id}`).count())).toBe(1);
    const html = await bob.content();
    expect(html).not.toContain(h2.id);
    expect(html).not.toContain(grantId);
    expect(html).not.toContain('alice-only');
    expect(await bob.locator('article.approval').count()).toBe(0);
    expect(await bob.locator('li.grant').count()).toBe(0);

    // Crafted POSTs with bob's own valid session and CSRF token, from the console's origin.
    const token = (await bob.locator('meta[name=csrf-token]').getAttribute('content'))!;
    expect(token.length).toBeGreaterThan(20);
    const post = (path: string, form: Record<string, string>) =>
      bob.evaluate(
        async ([p, f]) => {
          const r = await fetch(p, { method: 'POST', body: new URLSearchParams(f), redirect: 'manual' });
          return r.status;
        },
        [path, form] as const,
      );
    expect(await post(`/.warden/console/approvals/${h2.id}`, { csrf: token, decision: 'approve' })).toBe(404);
    expect(await post(`/.warden/console/approvals/${h2.id}`, { csrf: token, decision: 'deny' })).toBe(404);
    expect(await post(`/.warden/console/grants/${grantId}/revoke`, { csrf: token })).toBe(404);
    // alice's approval is still pending and her grant still works.
    expect((await h2.call()).status).toBe(202);
    expect((await h.call()).status).toBe(200);
    const events = await bob.evaluate(
      async () =>
        await fetch('/.warden/console/events', { signal: AbortSignal.timeout(1500) })
          .then((r) => r.text())
          .catch(() => 'aborted'),
    );
    expect(events).not.toContain(h2.id);
  });

  it('E.13 a new request does not slide under the pointer: a click aimed at the card shown decides that card', async () => {
    // erin's agent has one request waiting; she reads it and points at its Approve button.
    const x = await held('erin', 'POST', '/notes/x1', '{"title":"aaaa"}');
    const page = await signedIn('erin');
    await expect.poll(() => page.locator(`#approval-${x.id}`).count()).toBe(1);
    // A second listener on the same stream tells the test when the page's own one has news too (a page script as a string: no DOM types here).
    await page.evaluate(`(() => {
      window.heard = 0;
      new EventSource('/.warden/console/events').addEventListener('pending', () => { window.heard += 1; });
    })()`);
    const heard = () => page.evaluate('window.heard') as Promise<number>;
    await expect.poll(heard).toBe(1);
    const button = page.locator(`#approval-${x.id} button.approve`);
    const box = (await button.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    // While the pointer rests there, the agent makes a request of the same shape (it would land on top: newest first).
    const y = await held('erin', 'POST', '/notes/y1', '{"title":"bbbb"}');
    await expect.poll(heard, { timeout: 10_000 }).toBe(2);
    // The page's own stream polls on its own 2 s beat; give it that and its fetch.
    await new Promise((r) => setTimeout(r, 3_000));
    await Promise.all([page.waitForURL(/done=approved/), page.mouse.click(box.x + box.width / 2, box.y + box.height / 2)]);
    expect((await x.call()).status).toBe(200); // the card under the pointer was x's, and x is what got approved
    expect((await y.call()).status).toBe(202); // y, never shown under the pointer, still waits
    // A change that waited for the pointer is shown once it leaves the list.
    await expect.poll(() => page.locator(`#approval-${y.id}`).count()).toBe(1);
    const yBox = (await page.locator(`#approval-${y.id} h3`).boundingBox())!;
    await page.mouse.move(yBox.x + 5, yBox.y + 5);
    const z = await held('erin', 'POST', '/notes/z1', '{"title":"cccc"}');
    await new Promise((r) => setTimeout(r, 3_500));
    expect(await page.locator(`#approval-${z.id}`).count()).toBe(0);
    await page.mouse.move(5, 5);
    await expect.poll(() => page.locator(`#approval-${z.id}`).count(), { timeout: 10_000 }).toBe(1);
  });

  it('strict headers on every answer; every form carries a CSRF token, and a missing or foreign one is refused', async () => {
    const page = await signedIn('carol');
    const res = await page.goto(`${warden.url}/.warden/console`);
    const csp = res!.headers()['content-security-policy'];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res!.headers()['x-frame-options']).toBe('DENY');
    expect(res!.headers()['cache-control']).toBe('no-store');
    expect(await page.locator('script:not([src])').count()).toBe(0);
    expect(await page.locator('[style]').count()).toBe(0);

    const h = await held('carol', 'DELETE', '/notes/c1');
    await page.reload();
    const forms = page.locator('form[method=post]');
    await expect.poll(() => forms.count()).toBeGreaterThan(0);
    for (let i = 0; i < (await forms.count()); i++) {
      expect(await forms.nth(i).locator('input[name=csrf]').count()).toBe(1);
    }
    const status = (form: Record<string, string>, headers: Record<string, string> = {}) =>
      page.evaluate(async ([p, f, hd]) => (await fetch(p, { method: 'POST', body: new URLSearchParams(f), headers: hd, redirect: 'manual' })).status, [
        `/.warden/console/approvals/${h.id}`,
        form,
        headers,
      ] as const);
    expect(await status({ decision: 'approve' })).toBe(403);
    expect(await status({ decision: 'approve', csrf: 'x'.repeat(43) })).toBe(403);
    // Another person's valid token is not carol's.
    const dave = await signedIn('dave');
    const daveToken = (await dave.locator('meta[name=csrf-token]').getAttribute('content'))!;
    expect(daveToken.length).toBeGreaterThan(20);
    expect(await status({ decision: 'approve', csrf: daveToken })).toBe(403);
    // Cross-site: Chromium's Sec-Fetch-Site is authoritative; a plain client posing as another origin is refused.
    const carolCookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = (await page.locator('input[name=csrf]').first().getAttribute('value'))!;
    const cross = await fetch(`${warden.url}/.warden/console/approvals/${h.id}`, {
      method: 'POST',
      headers: { cookie: carolCookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ decision: 'approve', csrf }),
      redirect: 'manual',
    });
    expect(cross.status).toBe(403);
    expect((await h.call()).status).toBe(202);
    // Not signed in: the console sends the browser to sign in and back.
    const anon = await fetch(`${warden.url}/.warden/console`, { redirect: 'manual' });
    expect(anon.status).toBe(303);
    expect(anon.headers.get('location')).toBe('/.warden/login?return_to=%2F.warden%2Fconsole');
  });
});
