/**
 * Every console page, with content on it (a waiting approval, a grant,
 * activity, a budget, a connected account), checked by axe-core in headless
 * Chromium at phone and desktop width: no serious or critical violation.
 * axe.min.js (the axe-core package) is injected into the page; the browser
 * context bypasses the page's CSP only to let that script in. Screenshots of
 * each page at both widths go to test/.screenshots/.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoOAuthProvider, type DemoClient, type DemoOAuthProvider } from '../../examples/oauth-provider.js';
import { generateVaultKey } from '../../src/vault/crypto.js';
import { launchBrowser, SCREENSHOTS, type Browser, type Page } from '../support/browser.js';
import { devPolicyYaml, NOTES_CLOUD_VAULT_YAML, upstreamRouteYaml } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/login/fixtures')}
approvals:
  hold: 100ms
  review_auth: link+login
${NOTES_CLOUD_VAULT_YAML}
routes:
${upstreamRouteYaml({ name: 'notes', object: 'api:notes' })}
    approval: { when: 'request.method == "DELETE" || request.method == "POST"', message: "Change note {request.path}" }
    budget: { key: "{user}", amount: 1, max: 20, per: 1h }
${upstreamRouteYaml({ name: 'docs', object: 'api:notes' })}
    credentials: { vault: notes-cloud }
`;

const PAGES = [
  ['approvals', ''],
  ['activity', '/activity'],
  ['budgets', '/budgets'],
  ['accounts', '/accounts'],
  // A refusal page: a revoke of a grant that does not exist (posted by a form, as a person would).
  ['not-found', null],
] as const;
const WIDTHS = [
  ['phone', 390, 844],
  ['desktop', 1280, 900],
] as const;

interface AxeResult {
  violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: string[]; failureSummary?: string }> }>;
}

describe('console accessibility (axe-core) and screenshots', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let provider: DemoOAuthProvider;
  let browser: Browser;
  const client: DemoClient = { clientId: 'warden-test', clientSecret: 'test-only-client-secret', redirectUris: [] };

  beforeAll(async () => {
    [upstream, browser, provider] = await Promise.all([startUpstream(), launchBrowser(), startDemoOAuthProvider({ clients: [client], accounts: ['alice'] })]);
    warden = await startWarden({ config: CONFIG, env: { UPSTREAM_URL: upstream.url, OP_URL: provider.url, VAULT_KEY: generateVaultKey() } });
    client.redirectUris.push(`${warden.url}/.warden/callback/notes-cloud`);
    const token = await warden.token('bot', 'alice', [], { act: { sub: 'planner' } });
    const call = (method: string, path: string, body?: string) =>
      fetch(`${warden.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body ? { body } : {}) });
    for (let i = 0; i < 3; i++) expect((await call('GET', `/notes/n${i}?page=${i}`)).status).toBe(200);
    expect((await call('POST', '/notes/shopping', '{"title":"groceries","items":["milk","bread"]}')).status).toBe(202);
    expect((await call('DELETE', '/notes/old')).status).toBe(202);
    const intruder = await warden.token('intruder', 'alice');
    expect((await fetch(`${warden.url}/notes/x`, { headers: { authorization: `Bearer ${intruder}` } })).status).toBe(403);
  });

  afterAll(async () => {
    await browser?.close();
    await warden?.close();
    await provider?.close();
    await upstream?.close();
  });

  async function signedIn(width: number, height: number): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width, height }, bypassCSP: true });
    const page = await ctx.newPage();
    await page.goto(`${warden.url}/.warden/console`);
    await devSignInIfAsked(page, 'alice');
    return page;
  }

  it('alice has a grant and a connected account to show', async () => {
    const page = await signedIn(1280, 900);
    const card = page.locator('article.approval').filter({ hasText: 'DELETE /notes/old' });
    await card.locator('select[name=grant_minutes]').selectOption('15');
    await Promise.all([page.waitForURL(/done=granted/), card.locator('button.approve-grant').click()]);
    await page.goto(`${warden.url}/.warden/console/accounts`);
    await Promise.all([page.waitForURL((u) => u.origin === new URL(provider.url).origin), page.click('#connection-notes-cloud button.link')]);
    await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/.warden/callback/')), page.click('button[name=account][value=alice]')]);
    const res = await fetch(`${warden.url}/docs/d1`, { headers: { authorization: `Bearer ${await warden.token('bot', 'alice')}` } });
    expect(res.status).toBe(200);
    await page.context().close();
  });

  for (const [wname, width, height] of WIDTHS) {
    it(`no serious or critical axe violation on any page at ${wname} width (${width}px)`, async () => {
      const page = await signedIn(width, height);
      const problems: string[] = [];
      for (const [name, path] of PAGES) {
        if (path !== null) await page.goto(`${warden.url}/.warden/console${path}`);
        else {
          await page.goto(`${warden.url}/.warden/console`);
          await Promise.all([
            page.waitForLoadState('load'),
            // A string: the test project has no DOM types; this runs in the page.
            page.evaluate(`(() => {
              const f = document.createElement('form');
              f.method = 'post';
              f.action = '/.warden/console/grants/AAAAAAAAAAAAAAAAAAAAAA/revoke';
              const i = document.createElement('input');
              i.name = 'csrf';
              i.value = document.querySelector('meta[name=csrf-token]').getAttribute('content');
              f.append(i);
              document.body.append(f);
              f.submit();
            })()`),
          ]);
          await page.waitForURL(/grants/);
          expect(await page.textContent('#message')).toBe('No such grant.');
        }
        await page.evaluate(AXE);
        const result = (await page.evaluate(
          `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })`,
        )) as AxeResult;
        for (const v of result.violations) {
          if (v.impact !== 'serious' && v.impact !== 'critical') continue;
          problems.push(`${name}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
        }
        await page.screenshot({ path: join(SCREENSHOTS, `${name}-${wname}.png`), fullPage: true });
      }
      expect(problems).toEqual([]);
      await page.context().close();
    });
  }
});
