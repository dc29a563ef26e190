/**
 * An upstream's answer shares Warden's origin: the console, review pages and
 * sign-in live under `/.warden/` on the agent listener. A page an upstream
 * serves through a public route (a hostile upstream, or content an agent
 * uploaded to one) must not act as Warden's own: headless Chromium, signed in
 * as alice, opens such a page, and what its script does cannot read the
 * console or decide alice's pending approval.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser, type BrowserContext } from '../support/browser.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml, publicRouteYaml, upstreamRouteYaml } from '../support/config.js';

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/login/fixtures')}
approvals:
  hold: 200ms
  review_auth: link+login
routes:
${upstreamRouteYaml({ name: 'notes', object: 'api:notes' })}
    approval: { when: 'request.method == "DELETE"', message: "Delete note {request.path}" }
${publicRouteYaml('${HOSTILE_URL}')}
`;

/** The hostile upstream's page (its script is run below through the page's own realm, as the page would run it). */
const PAGE = '<!doctype html><title>report</title><p>Quarterly report</p>';

/** What a script of that page does: read the console as the signed-in person, take its form token, approve. */
const APPROVE_FROM_CONSOLE = `(async () => {
  try {
    const html = await (await fetch('/.warden/console', { credentials: 'include' })).text();
    const doc = new DOMParser().parseFromString(html, 'text/html');
    const csrf = doc.querySelector('input[name=csrf]')?.value;
    const action = doc.querySelector('form[action*="/approvals/"]')?.getAttribute('action');
    if (!csrf || !action) return 'nothing to approve';
    const res = await fetch(action, { method: 'POST', credentials: 'include', body: new URLSearchParams({ csrf, decision: 'approve' }) });
    return 'approved: ' + res.status;
  } catch (err) {
    return 'refused: ' + String(err);
  }
})()`;

describe("an upstream's page on Warden's origin", () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let hostile: Upstream;
  let browser: Browser;
  let ctx: BrowserContext | undefined;

  beforeAll(async () => {
    [upstream, browser] = await Promise.all([startUpstream(), launchBrowser()]);
    hostile = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(PAGE) });
      res.end(PAGE);
    });
    warden = await startWarden({ config: CONFIG, env: { UPSTREAM_URL: upstream.url, HOSTILE_URL: hostile.url } });
  });

  afterAll(async () => {
    await ctx?.close().catch(() => {});
    await browser?.close();
    await warden?.close();
    await Promise.allSettled([upstream?.close(), hostile?.close()]);
  });

  it('cannot read the console or approve the signed-in person’s pending request', async () => {
    const token = await warden.token('bot', 'alice');
    const call = () => fetch(`${warden.url}/notes/n1`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect((await call()).status).toBe(202);

    ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${warden.url}/.warden/console`);
    await devSignInIfAsked(page, 'alice');
    expect(await page.textContent('#who')).toBe('alice');

    const answer = await page.goto(`${warden.url}/public/report.html`);
    expect(answer?.status()).toBe(200);
    expect(await page.textContent('p')).toBe('Quarterly report');
    const attempt = await page.evaluate<string>(APPROVE_FROM_CONSOLE);
    // Still held: the agent's re-send is answered 202, never forwarded.
    expect((await call()).status).toBe(202);
    expect(upstream.requests.filter((r) => r.method === 'DELETE').length).toBe(0);
    expect(attempt).toMatch(/^refused: /);
    // The page is not of Warden's origin (an opaque one), so nothing it runs is same-origin with /.warden/.
    expect(await page.evaluate<string>('window.origin')).toBe('null');
  });
});
