/**
 * The console's activity and budgets pages in headless Chromium, with both
 * activity sources: the decision log's file read back, and (no readable
 * decision log) the per-user ring in the store. alice sees what her agents
 * did, filtered by agent, route and outcome and paged; bob, signed in, sees
 * none of it whatever query parameters he crafts.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, type Browser, type BrowserContext, type Page } from '../support/browser.js';
import { devPolicyYaml, upstreamRouteYaml } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const config = (decisionLog: boolean) => `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/login/fixtures')}
${decisionLog ? 'audit:\n  decisions: { sink: file, path: "${LOG_DIR}/decisions.jsonl" }' : ''}
routes:
${upstreamRouteYaml({ name: 'notes', object: 'api:notes' })}
    budget: { key: "{user}", amount: 1, max: 100, per: 1h }
${upstreamRouteYaml({ name: 'github', prefix: '/gh', object: 'api:github' })}
`;

describe.each([
  ['the decision log file', true],
  ['the store ring', false],
])('console activity and budgets (%s)', (_name, decisionLog) => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let browser: Browser;
  let logDir: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'warden-activity-'));
    [upstream, browser] = await Promise.all([startUpstream(), launchBrowser()]);
    warden = await startWarden({ config: config(decisionLog), env: { UPSTREAM_URL: upstream.url, LOG_DIR: logDir } });
    const call = async (agent: string, user: string, path: string) =>
      (await fetch(`${warden.url}${path}`, { headers: { authorization: `Bearer ${await warden.token(agent, user)}` } })).status;
    expect(await call('bot', 'alice', '/notes/alice-note-1')).toBe(200);
    expect(await call('bot', 'alice', '/gh/alice-repo')).toBe(200);
    expect(await call('intruder', 'alice', '/notes/alice-denied')).toBe(403);
    expect(await call('bot', 'bob', '/notes/bob-note-1')).toBe(200);
    // Enough for a second page (50 a page).
    for (let i = 0; i < 52; i++) expect(await call('bot', 'alice', `/notes/alice-many-${i}`)).toBe(200);
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await warden?.close();
    await upstream?.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  async function signedIn(user: string, path: string): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(`${warden.url}/.warden/console${path}`);
    await devSignInIfAsked(page, user);
    expect(await page.textContent('#who')).toBe(user);
    return page;
  }

  const requests = async (page: Page) => page.locator('#activity .request').allTextContents();

  it('alice sees her agents’ requests newest first, paged, and filters them by outcome, agent and route', async () => {
    const page = await signedIn('alice', '/activity');
    // The decision log is written a moment after each answer.
    await expect.poll(async () => (await page.reload(), (await requests(page)).length)).toBe(50);
    const first = await requests(page);
    expect(first[0]).toBe('GET /notes/alice-many-51');
    expect(first.join('\n')).not.toContain('bob');
    await Promise.all([page.waitForURL(/cursor=/), page.click('#older')]);
    const second = await requests(page);
    expect(second).toEqual(['GET /notes/alice-many-1', 'GET /notes/alice-many-0', 'GET /notes/alice-denied', 'GET /gh/alice-repo', 'GET /notes/alice-note-1']);
    expect(await page.locator('#older').count()).toBe(0);

    await page.goto(`${warden.url}/.warden/console/activity`);
    await page.selectOption('#f-outcome', 'deny');
    await Promise.all([page.waitForURL(/outcome=deny/), page.click('form.filters button[type=submit]')]);
    expect(await requests(page)).toEqual(['GET /notes/alice-denied']);
    expect(await page.locator('#activity .outcome').first().textContent()).toBe('Refused');
    expect(await page.locator('#activity .agent').first().textContent()).toContain('intruder');

    await page.goto(`${warden.url}/.warden/console/activity?route=github`);
    expect(await requests(page)).toEqual(['GET /gh/alice-repo']);
    await page.goto(`${warden.url}/.warden/console/activity?agent=intruder&route=notes`);
    expect(await requests(page)).toEqual(['GET /notes/alice-denied']);
    await page.goto(`${warden.url}/.warden/console/activity?agent=nobody`);
    expect(await page.locator('#activity-empty').textContent()).toBe('No activity matches these filters.');
  });

  it('bob sees only his own activity, whatever query he crafts', async () => {
    const alice = await signedIn('alice', '/activity');
    await expect.poll(async () => (await alice.reload(), (await requests(alice)).length)).toBe(50);
    const aliceCursor = new URL((await alice.locator('#older').getAttribute('href'))!, warden.url).searchParams.get('cursor')!;
    const bob = await signedIn('bob', '/activity');
    await expect.poll(async () => (await bob.reload(), await requests(bob))).toEqual(['GET /notes/bob-note-1']);
    for (const q of [
      'user=alice',
      'sub=alice&user=alice',
      'agent=intruder',
      'outcome=deny',
      'route=github',
      `cursor=${encodeURIComponent(aliceCursor)}`,
      'cursor=0',
      'cursor=1.1',
      'agent=bot&route=notes&outcome=allow&user=alice',
    ]) {
      await bob.goto(`${warden.url}/.warden/console/activity?${q}`);
      const html = await bob.content();
      expect(html, q).not.toContain('alice-');
      for (const r of await requests(bob)) expect(r).toBe('GET /notes/bob-note-1');
    }
  });

  it('budgets show what was spent and what remains for the signed-in person only', async () => {
    const alice = await signedIn('alice', '/budgets');
    expect(await alice.locator('#budgets .remaining').textContent()).toBe('47');
    expect(await alice.locator('#budgets .spent').textContent()).toContain('53 spent');
    const bob = await signedIn('bob', '/budgets');
    expect(await bob.locator('#budgets .remaining').textContent()).toBe('99');
  });
});
