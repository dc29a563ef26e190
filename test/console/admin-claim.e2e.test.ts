/**
 * The console's admin role from a claim of the sign-in (console.admin.claim),
 * end to end with real components: oidc-provider signs people in and puts a
 * `roles` claim in the ID token, Warden keeps it in the session, and headless
 * Chromium drives the console. ops (roles: warden-admin) reviews the diff of
 * a changed MCP tool definition from the real example MCP SDK server and
 * accepts it, after which the agent's tools/call is forwarded again. bob
 * (roles: viewer), signed in the same way, is no admin: no Platform link, 403
 * on the admin pages and the admin event stream.
 */

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { launchBrowser, type Browser, type BrowserContext, type Page } from '../support/browser.js';
import { devPolicyYaml, mcpRouteYaml } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { mcpRefusal, poisonReadFile } from '../support/mcp-tools.js';
import { LOGIN_AS_COOKIE, startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { startBalancer, type Balancer } from '../vault/support.js';

const LOGIN_SECRET = 'admin-claim-login-secret-0123456789';
const SESSION_SECRET = 'admin-claim-session-secret-0123456789abcdef';

const CONFIG = `
server:
  public_url: \${PUBLIC_URL}
${devPolicyYaml('test/console/fixtures', {}, [
  '  login:',
  '    issuer: ${OP_URL}',
  '    client_id: warden-login',
  '    client_secret: ${LOGIN_SECRET}',
  '    scopes: [openid, email]',
  '    session: { secret: "${SESSION_SECRET}", ttl: 1h }',
])}
console:
  admin: { claim: roles, value: warden-admin }
routes:
${mcpRouteYaml({ name: 'files-mcp' })}
    mcp:
      tools:
        read_file:
          authorize: [{ user: "agent:{agent}", relation: can_call, object: "tool:{tool}" }]
`;

describe('console admin role from a sign-in claim (oidc-provider, Chromium, MCP SDK)', () => {
  let op: OidcTestProvider;
  let lb: Balancer;
  let warden: WardenHandle;
  let mcp: ExampleMcpServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const clients: Client[] = [];

  beforeAll(async () => {
    lb = await startBalancer();
    op = await startOidcProvider({
      audience: lb.url,
      idTokenClaims: ['roles'],
      accounts: { ops: { roles: ['viewer', 'warden-admin'] }, bob: { roles: ['viewer'] } },
      clients: [{ client_id: 'warden-login', client_secret: LOGIN_SECRET, redirect_uris: [`${lb.url}/.warden/login/callback`] }],
    });
    [mcp, browser] = await Promise.all([startExampleMcpServer(), launchBrowser()]);
    warden = await startWarden({
      config: CONFIG,
      env: { PUBLIC_URL: lb.url, OP_URL: op.issuer, LOGIN_SECRET, SESSION_SECRET, MCP_URL: mcp.url },
    });
    lb.setTargets([warden.url]);
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await warden?.close();
    await Promise.allSettled([mcp?.close(), op?.stop(), lb?.close()]);
  });

  /** A browser signed in at the provider as `who`, on the console (through Warden's sign-in). */
  async function signedIn(who: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    contexts.push(context);
    await context.addCookies([{ name: LOGIN_AS_COOKIE, value: who, url: op.issuer }]);
    const page = await context.newPage();
    await page.goto(`${lb.url}/.warden/console`);
    await page.waitForURL(`${lb.url}/.warden/console`);
    expect(await page.textContent('#who')).toBe(who);
    return page;
  }

  async function agent(): Promise<Client> {
    const token = await warden.mcpToken('/mcp/files', 'bot', 'carol');
    const client = new Client({ name: 'admin-claim-agent', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${lb.url}/mcp/files`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    clients.push(client);
    return client;
  }

  it('ops, admin by the roles claim of the ID token, reviews the diff of a changed tool and accepts it; the tool is callable again', async () => {
    const client = await agent();
    await poisonReadFile(mcp, client);
    expect(await mcpRefusal(client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } }))).toMatchObject({ reason: 'tool_definition_changed' });
    const executed = mcp.executions.filter((e) => e.tool === 'read_file').length;

    const ops = await signedIn('ops');
    await Promise.all([ops.waitForURL(/\/admin$/), ops.click('#admin-link')]);
    await Promise.all([ops.waitForURL(/\/admin\/tools$/), ops.click('.admin-nav a[href$="/admin/tools"]')]);
    const row = ops.locator('tr.pin-changed');
    expect(await row.count()).toBe(1);
    await Promise.all([ops.waitForURL(/\/admin\/tools\/files-mcp\/read_file$/), row.locator('a').click()]);
    expect(await ops.locator('#diff .d-removed').textContent()).toContain('"description": "Read a text file by path."');
    expect(await ops.locator('#diff .d-added').textContent()).toContain('id_rsa');

    await Promise.all([ops.waitForURL(/done=accepted/), ops.click('#accept')]);
    expect(await ops.textContent('#notice')).toContain('Accepted');
    const result = (await client.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } })) as { content: Array<{ text: string }> };
    expect(result.content[0].text).toContain('hello from the example MCP server');
    expect(mcp.executions.filter((e) => e.tool === 'read_file').length).toBe(executed + 1);
    expect(warden.logs()).toMatch(/"by":"ops"[^\n]*mcp tool definition accepted|mcp tool definition accepted[^\n]*"by":"ops"/);
  });

  it('bob, signed in the same way with roles [viewer], is no admin: no Platform link, 403 on every admin page and the admin stream', async () => {
    const bob = await signedIn('bob');
    expect(await bob.locator('#admin-link').count()).toBe(0);
    for (const path of ['', '/approvals', '/routes', '/tools', '/events']) {
      const res = await bob.goto(`${lb.url}/.warden/console/admin${path}`);
      expect(res!.status(), path).toBe(403);
      expect(await bob.textContent('#message')).toContain('not one');
    }
  });
});
