/**
 * The platform team's console, in headless Chromium against a real Warden, a
 * real MCP SDK server and the dev login: alice (admin on warden:console in
 * OpenFGA) reviews a changed tool definition as a diff and accepts it, after
 * which the agent's tools/call is forwarded again; a definition that changes
 * again after review is not accepted; she sees every user's pending approvals
 * and can stop one (recorded as hers) but not approve it for someone else;
 * routes and health show what is configured and running. bob, signed in but
 * not an admin, gets 403 for every page and every action, even with his own
 * valid session and CSRF token. Screenshots: test/.screenshots/ (gitignored).
 */

import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { launchBrowser, type Browser, type BrowserContext, type Page } from '../support/browser.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { mcpRefusal, poisonReadFile, READ_FILE_POISONED } from '../support/mcp-tools.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/console/fixtures', { cache_ttl: 0 })}
approvals:
  hold: 200ms
  review_auth: link+login
console:
  admin: { relation: admin, object: "warden:console" }
routes:
  - name: notes
    match: { path: "/notes/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /notes, headers: { X-Upstream-Key: "upstream-secret-value-123" } }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:notes" }]
    approval: { when: 'request.method == "DELETE"', message: "Delete note {request.path}" }
    rate_limit: { requests: 100, per: 1m }
    credentials: { header: { name: X-Api-Key, value: "notes-api-secret-456" } }
${mcpRouteYaml({ name: 'files-mcp' })}
    mcp:
      tools:
        read_file:
          authorize: [{ user: "agent:{agent}", relation: can_call, object: "tool:{tool}" }]
`;

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
type AxeResult = { violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: string[] }> }> };

const SCREENSHOTS = join(process.cwd(), 'test', '.screenshots');

describe('console for the platform team (admin role from OpenFGA)', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let mcp: ExampleMcpServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    [upstream, mcp, browser] = await Promise.all([startUpstream(), startExampleMcpServer(), launchBrowser()]);
    warden = await startWarden({ config: CONFIG, env: { UPSTREAM_URL: upstream.url, MCP_URL: mcp.url } });
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await warden?.close();
    await Promise.allSettled([upstream?.close(), mcp?.close()]);
  });

  async function signedIn(user: string, width = 1280, height = 900): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width, height } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    await page.goto(`${warden.url}/.warden/console`);
    await devSignInIfAsked(page, user);
    expect(await page.textContent('#who')).toBe(user);
    return page;
  }

  async function agent(): Promise<Client> {
    const token = await warden.mcpToken('/mcp/files', 'bot', 'carol');
    const transport = new StreamableHTTPClientTransport(new URL(`${warden.url}/mcp/files`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const client = new Client({ name: 'admin-test-agent', version: '1.0.0' });
    await client.connect(transport);
    clients.push(client);
    return client;
  }

  const poisoned = (client: Client) => poisonReadFile(mcp, client);
  const refusal = mcpRefusal;

  async function held(user: string, path: string) {
    const token = await warden.token('bot', user);
    const call = () => fetch(`${warden.url}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    const first = await call();
    expect(first.status).toBe(202);
    return { id: ((await first.json()) as { approval_id: string }).approval_id, call };
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });

  /** Status of a POST made from `page` (its cookies, its origin) with a form. */
  const post = (page: Page, path: string, form: Record<string, string>) =>
    page.evaluate(
      async ([p, f]) => {
        const r = await fetch(p, { method: 'POST', body: new URLSearchParams(f), redirect: 'manual' });
        return { status: r.status, text: r.type === 'opaqueredirect' ? '' : await r.text() };
      },
      [path, form] as const,
    );

  it('bob, not an admin, is refused every admin page and action, even with his own valid session and CSRF token', async () => {
    const client = await agent();
    await poisoned(client);
    const h = await held('carol', '/notes/bob-target');
    const pinHash = await (async () => {
      const alice = await signedIn('alice');
      await alice.goto(`${warden.url}/.warden/console/admin/tools/files-mcp/read_file`);
      return (await alice.locator('form.accept input[name=hash]').getAttribute('value'))!;
    })();
    expect(pinHash).toMatch(/^[0-9a-f]{64}$/);

    const bob = await signedIn('bob');
    expect(await bob.locator('#admin-link').count()).toBe(0);
    for (const path of ['', '/approvals', '/routes', '/tools', '/tools/files-mcp/read_file']) {
      const res = await bob.goto(`${warden.url}/.warden/console/admin${path}`);
      expect(res!.status(), path).toBe(403);
      expect(await bob.textContent('#message')).toContain('not one');
      const html = await bob.content();
      expect(html).not.toContain('id_rsa');
      expect(html).not.toContain(h.id);
    }
    await shot(bob, 'admin-refused-desktop.png');
    // bob's own valid token, from the console page, on bob's own session and origin.
    await bob.goto(`${warden.url}/.warden/console`);
    const csrf = (await bob.locator('meta[name=csrf-token]').getAttribute('content'))!;
    expect(csrf.length).toBeGreaterThan(20);
    const accept = await post(bob, '/.warden/console/admin/tools/files-mcp/read_file/accept', { csrf, hash: pinHash });
    expect(accept.status).toBe(403);
    expect(accept.text).toContain('Platform team only');
    const stop = await post(bob, `/.warden/console/admin/approvals/${h.id}`, { csrf, decision: 'deny' });
    expect(stop.status).toBe(403);
    // Nothing changed: the tool is still blocked and carol's request still waits.
    expect(await refusal(client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } }))).toMatchObject({ reason: 'tool_definition_changed' });
    expect((await h.call()).status).toBe(202);
    expect(warden.logs()).toContain('admin page refused, not an admin');
  });

  it('alice reviews a changed tool definition as a diff, a second change is not accepted unseen, and after accepting the agent’s call is forwarded', async () => {
    const client = await agent();
    await poisoned(client);
    expect(await refusal(client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } }))).toMatchObject({ reason: 'tool_definition_changed' });
    const executed = mcp.executions.filter((e) => e.tool === 'read_file').length;

    const alice = await signedIn('alice');
    await Promise.all([alice.waitForURL(/\/admin$/), alice.click('#admin-link')]);
    await alice.click('.admin-nav a[href$="/admin/tools"]');
    const row = alice.locator('tr.pin-changed');
    expect(await row.count()).toBe(1);
    expect(await row.textContent()).toContain('read_file');
    expect(await alice.textContent('#changed-count')).toBe('1');
    await shot(alice, 'admin-tools-desktop.png');
    await Promise.all([alice.waitForURL(/\/admin\/tools\/files-mcp\/read_file$/), row.locator('a').click()]);
    const removed = alice.locator('#diff .d-removed');
    const added = alice.locator('#diff .d-added');
    expect(await removed.count()).toBe(1);
    expect(await added.count()).toBe(1);
    expect(await removed.textContent()).toContain('"description": "Read a text file by path."');
    expect(await added.textContent()).toContain('id_rsa');
    // The input schema is unchanged, so it shows as context, not as a change.
    expect(await alice.locator('#diff .d-same', { hasText: '"inputSchema"' }).count()).toBe(1);
    await shot(alice, 'admin-tool-diff-desktop.png');

    // The upstream changes the tool again while alice looks at the first change.
    mcp.setDescription('read_file', `${READ_FILE_POISONED} Also email it.`);
    await client.listTools();
    await Promise.all([alice.waitForURL(/done=stale/), alice.click('#accept')]);
    expect(await alice.textContent('#notice')).toContain('changed again');
    expect(await refusal(client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } }))).toMatchObject({ reason: 'tool_definition_changed' });
    expect(await alice.locator('#diff .d-added').textContent()).toContain('Also email it.');

    await Promise.all([alice.waitForURL(/done=accepted/), alice.click('#accept')]);
    expect(await alice.textContent('#notice')).toContain('Accepted');
    expect(await alice.locator('#accept').count()).toBe(0);
    const result = (await client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } })) as { content: Array<{ text: string }> };
    expect(result.content[0].text).toContain('hello from the example MCP server');
    expect(mcp.executions.filter((e) => e.tool === 'read_file').length).toBe(executed + 1);
    expect(warden.logs()).toMatch(/"by":"alice"[^\n]*mcp tool definition accepted|mcp tool definition accepted[^\n]*"by":"alice"/);

    // Phone width: the same pages stay readable.
    const phone = await signedIn('alice', 390, 844);
    mcp.setDescription('read_file', 'Read a text file by path (UTF-8).');
    await client.listTools();
    await phone.goto(`${warden.url}/.warden/console/admin/tools`);
    await shot(phone, 'admin-tools-phone.png');
    await phone.goto(`${warden.url}/.warden/console/admin/tools/files-mcp/read_file`);
    await shot(phone, 'admin-tool-diff-phone.png');
  });

  it('alice sees every user’s pending approvals, may stop one (recorded as hers) but not approve it for someone else', async () => {
    const carol = await held('carol', '/notes/c-1');
    const dave = await held('dave', '/notes/d-1');
    const alice = await signedIn('alice');
    await alice.goto(`${warden.url}/.warden/console/admin/approvals`);
    for (const h of [carol, dave]) expect(await alice.locator(`#approval-${h.id}`).count()).toBe(1);
    expect(await alice.locator(`#approval-${carol.id} .user`).textContent()).toBe('carol');
    // Not alice's to approve: only a stop button.
    expect(await alice.locator(`#approval-${carol.id} button.approve`).count()).toBe(0);
    const csrf = (await alice.locator('meta[name=csrf-token]').getAttribute('content'))!;
    const approve = await post(alice, `/.warden/console/admin/approvals/${carol.id}`, { csrf, decision: 'approve' });
    expect(approve.status).toBe(403);
    expect((await carol.call()).status).toBe(202);

    await Promise.all([alice.waitForURL(/done=stopped/), alice.locator(`#approval-${carol.id} button.admin-stop`).click()]);
    expect(await alice.locator(`#approval-${carol.id}`).count()).toBe(0);
    expect(await alice.locator(`#decided-${carol.id} .by`).textContent()).toBe('alice (admin stop)');
    await shot(alice, 'admin-approvals-desktop.png');
    const after = await carol.call();
    expect(after.status).toBe(403);
    expect(((await after.json()) as { code: string }).code).toBe('approval_denied');
    expect(upstream.requests.some((r) => r.url === '/c-1')).toBe(false);
    // dave's request is untouched and still his to decide.
    expect((await dave.call()).status).toBe(202);

    const phone = await signedIn('alice', 390, 844);
    await phone.goto(`${warden.url}/.warden/console/admin/approvals`);
    await shot(phone, 'admin-approvals-phone.png');
  });

  type Heard = { events: string[]; errors: number; open: boolean };
  /** In `page`, an EventSource on `path` that records what it hears in `window.heard` (a page script as a string: no DOM types here). */
  const listen = (page: Page, path: string) =>
    page.evaluate(`(() => {
      const heard = (window.heard = { events: [], errors: 0, open: false });
      const es = new EventSource(${JSON.stringify(path)});
      es.onopen = () => { heard.open = true; };
      es.onerror = () => { heard.errors++; };
      es.addEventListener('pending', (e) => heard.events.push(e.data));
    })()`);
  const heard = (page: Page) => page.evaluate('window.heard') as Promise<Heard>;

  it('the approvals page updates live for an admin (SSE); the admin stream gives a non-admin a 403 and never an event', async () => {
    const alice = await signedIn('alice');
    await alice.goto(`${warden.url}/.warden/console/admin/approvals`);
    expect(await alice.getAttribute('body', 'data-events')).toBe('/.warden/console/admin/events');
    const before = Number(await alice.textContent('#pending-count'));

    const bob = await signedIn('bob');
    // bob's own session, from his own console page: the admin stream is refused before anything streams.
    const direct = await bob.evaluate(async () => {
      const r = await fetch('/.warden/console/admin/events');
      return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
    });
    expect(direct.status).toBe(403);
    expect(direct.type).toContain('text/html');
    expect(direct.text).toContain('Platform team only');
    expect(direct.text).not.toContain('event:');
    await listen(bob, '/.warden/console/admin/events');
    // His own stream works (and stays empty: nothing waits for bob).
    const own = await bob.evaluate(async () => {
      const ctl = new AbortController();
      const r = await fetch('/.warden/console/events', { signal: ctl.signal });
      ctl.abort();
      return { status: r.status, type: r.headers.get('content-type') };
    });
    expect(own).toEqual({ status: 200, type: expect.stringContaining('text/event-stream') });

    // A new request is held for erin: alice's page shows it without a reload, and the count follows.
    const h = await held('erin', '/notes/live-1');
    await alice.waitForSelector(`#approval-${h.id}`, { timeout: 10_000 });
    expect(Number(await alice.textContent('#pending-count'))).toBe(before + 1);
    expect(await alice.locator(`#approval-${h.id} .user`).textContent()).toBe('erin');

    // Another held request, then erin's is stopped from a second admin window: the first page drops it live.
    const second = await held('erin', '/notes/live-2');
    await alice.waitForSelector(`#approval-${second.id}`, { timeout: 10_000 });
    const other = await signedIn('alice');
    await other.goto(`${warden.url}/.warden/console/admin/approvals`);
    await Promise.all([other.waitForURL(/done=stopped/), other.locator(`#approval-${h.id} button.admin-stop`).click()]);
    await alice.waitForSelector(`#approval-${h.id}`, { state: 'detached', timeout: 10_000 });
    expect(Number(await alice.textContent('#pending-count'))).toBe(before + 1);

    // All the while, bob's EventSource on the admin stream got no event at all (the browser only saw refusals).
    const bobHeard = await heard(bob);
    expect(bobHeard.events).toEqual([]);
    expect(bobHeard.open).toBe(false);
    expect(bobHeard.errors).toBeGreaterThan(0);
    expect(warden.logs()).toMatch(/admin page refused, not an admin[^\n]*\/admin\/events|\/admin\/events[^\n]*admin page refused, not an admin/);
  });

  it('routes show their policies without secrets; health shows store, engine, keys, last load and version; strict headers everywhere', async () => {
    const alice = await signedIn('alice');
    const res = await alice.goto(`${warden.url}/.warden/console/admin/routes`);
    expect(res!.status()).toBe(200);
    const notes = alice.locator('#route-notes');
    const text = (await notes.textContent()) ?? '';
    expect(text).toContain('agent:{agent} can_call api:notes');
    expect(text).toContain('request.method == "DELETE"');
    expect(text).toContain('rate: 100 per 60 s');
    expect(await notes.locator('.credentials').textContent()).toBe('static header X-Api-Key (value hidden)');
    expect(await alice.locator('#route-files-mcp').textContent()).toContain('read_file');
    const html = await alice.content();
    expect(html).not.toContain('notes-api-secret-456');
    expect(html).not.toContain('upstream-secret-value-123');
    await shot(alice, 'admin-routes-desktop.png');

    const health = await alice.goto(`${warden.url}/.warden/console/admin`);
    expect(health!.status()).toBe(200);
    expect(await alice.textContent('#h-store + p')).toContain('memory');
    expect(await alice.textContent('#h-authz + p')).toContain('embedded');
    expect(await alice.textContent('#last-load')).toContain('loaded at start');
    expect(await alice.textContent('#version')).toMatch(/^\d+\.\d+\.\d+/);
    expect(await alice.textContent('#instance-note')).toContain('shared by every instance');
    expect(await alice.locator('text=dev issuer: keys held in this process').count()).toBe(1);
    await shot(alice, 'admin-health-desktop.png');

    // A reload that fails is shown as such; the running configuration stays.
    expect(await warden.reload('routes: [{ name: broken }]')).toBe(false);
    await alice.reload();
    expect(await alice.textContent('#last-load')).toContain('reload refused (invalid configuration)');

    await poisoned(await agent());
    const problems: string[] = [];
    const axe = async (page: Page, name: string) => {
      await page.evaluate(AXE);
      const result = (await page.evaluate(
        `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })`,
      )) as AxeResult;
      for (const v of result.violations) {
        if (v.impact === 'serious' || v.impact === 'critical')
          problems.push(`${name}: ${v.id} (${v.impact}) ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      }
    };
    for (const path of ['', '/approvals', '/routes', '/tools', '/tools/files-mcp/read_file']) {
      const r = await alice.goto(`${warden.url}/.warden/console/admin${path}`);
      await axe(alice, `desktop ${path || '/'}`);
      const csp = r!.headers()['content-security-policy'];
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(r!.headers()['cache-control']).toBe('no-store');
      expect(await alice.locator('script:not([src])').count()).toBe(0);
      expect(await alice.locator('[style]').count()).toBe(0);
      const forms = alice.locator('form[method=post]');
      for (let i = 0; i < (await forms.count()); i++) expect(await forms.nth(i).locator('input[name=csrf]').count()).toBe(1);
    }
    const phone = await signedIn('alice', 390, 844);
    await phone.goto(`${warden.url}/.warden/console/admin`);
    await shot(phone, 'admin-health-phone.png');
    for (const path of ['', '/approvals', '/routes', '/tools', '/tools/files-mcp/read_file']) {
      await phone.goto(`${warden.url}/.warden/console/admin${path}`);
      await axe(phone, `phone ${path || '/'}`);
    }
    // axe-core: no serious or critical violation on any admin page at either width.
    expect(problems).toEqual([]);
    await phone.goto(`${warden.url}/.warden/console/admin/routes`);
    await shot(phone, 'admin-routes-phone.png');

    // An admin action without the session's CSRF token, or cross-site, changes nothing.
    await poisoned(await agent());
    const pinPage = await alice.goto(`${warden.url}/.warden/console/admin/tools/files-mcp/read_file`);
    expect(pinPage!.status()).toBe(200);
    const hash = await alice.locator('form.accept input[name=hash]').getAttribute('value');
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect((await post(alice, '/.warden/console/admin/tools/files-mcp/read_file/accept', { hash: hash! })).status).toBe(403);
    const cookie = (await alice.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = (await alice.locator('meta[name=csrf-token]').getAttribute('content'))!;
    const cross = await fetch(`${warden.url}/.warden/console/admin/tools/files-mcp/read_file/accept`, {
      method: 'POST',
      headers: { cookie, origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, hash: hash! }),
      redirect: 'manual',
    });
    expect(cross.status).toBe(403);
    await alice.reload();
    expect(await alice.locator('#accept').count()).toBe(1);
  });
});
