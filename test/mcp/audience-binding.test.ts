/**
 * RFC 8707 on MCP routes: a token is accepted only by the MCP resource it was
 * issued for. oidc-provider plays the user's authorization server (it mints
 * aud = the requested resource, as standard MCP clients ask), and one issuer's
 * `audience` lists both MCP routes; a token for /mcp/admin must not work on
 * /mcp/files.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { freePort } from '../support/net.js';
import { parseConfig } from '../../src/config/load.js';
import { audienceBindingWarnings } from '../../src/mcp/audience.js';

let op: OidcTestProvider;
let upstream: Upstream;
let warden: WardenHandle;
let base: string;

function config(binding: 'resource' | 'gateway', audience: string[]): string {
  return `
server: { listen: "127.0.0.1:0", public_url: "${base}" }
identity:
  dev_issuer: true
  issuers:
    - { issuer: "${op.issuer}", audience: ${JSON.stringify(audience)}, algorithms: [RS256], audience_binding: ${binding} }
authz: { engine: embedded, model: test/mcp/fixtures/model.fga, tuples: test/mcp/fixtures/tuples.yaml }
routes:
  - { name: admin-mcp, match: { path: /mcp/admin }, upstream: { url: "${upstream.url}/admin" }, authorize: [], mcp: { other_tools: allow, pin_tools: false } }
  - { name: files-mcp, match: { path: /mcp/files }, upstream: { url: "${upstream.url}/files" }, authorize: [], mcp: { other_tools: allow, pin_tools: false } }
  - { name: rest, match: { path: "/rest/**" }, upstream: { url: "${upstream.url}" }, authorize: [] }
`;
}

beforeAll(async () => {
  // The public URL names the resources; requests go to the bound address (startWarden picks the port).
  base = `http://127.0.0.1:${await freePort()}`;
  op = await startOidcProvider({ audience: base });
  upstream = await startUpstream();
  warden = await startWarden({ config: config('resource', [`${base}/mcp/admin`, `${base}/mcp/files`, base]) });
});

afterAll(async () => {
  await warden?.close();
  await upstream?.close();
  await op?.stop();
});

async function ping(path: string, token: string): Promise<{ status: number; challenge: string | null }> {
  const res = await fetch(`${warden.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await res.arrayBuffer();
  return { status: res.status, challenge: res.headers.get('www-authenticate') };
}

describe('MCP tokens are bound to their resource (RFC 8707)', () => {
  it('a token issued for /mcp/admin is refused on /mcp/files, though the issuer lists both', async () => {
    const forAdmin = await op.clientCredentialsToken(op.clients.machine.client_id, 'read', `${base}/mcp/admin`);
    const before = upstream.requests.length;
    const refused = await ping('/mcp/files', forAdmin);
    expect(refused.status).toBe(401);
    expect(refused.challenge).toContain('error="invalid_token"');
    expect(refused.challenge).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp/files"`);
    expect(upstream.requests.length).toBe(before);
    expect((await ping('/mcp/admin', forAdmin)).status).toBe(200);
  });

  it('a token for the gateway audience is refused on MCP routes but works on REST routes', async () => {
    const gatewayWide = await op.clientCredentialsToken(op.clients.machine.client_id, 'read', base);
    expect((await ping('/mcp/files', gatewayWide)).status).toBe(401);
    expect((await fetch(`${warden.url}/rest/x`, { headers: { authorization: `Bearer ${gatewayWide}` } })).status).toBe(200);
  });

  it('the dev issuer mints resource-aware tokens; its gateway-audience tokens do not open MCP routes', async () => {
    expect((await ping('/mcp/files', await warden.mcpToken('/mcp/files', 'assistant', 'alice'))).status).toBe(200);
    expect((await ping('/mcp/files', await warden.mcpToken('/mcp/admin', 'assistant', 'alice'))).status).toBe(401);
    expect((await ping('/mcp/files', await warden.token('assistant', 'alice'))).status).toBe(401);
  });

  it('the dev issuer is not advertised as an authorization server (it serves no RFC 8414 metadata)', async () => {
    const doc = (await (await fetch(`${warden.url}/.well-known/oauth-protected-resource/mcp/files`)).json()) as {
      resource: string;
      authorization_servers: string[];
    };
    expect(doc.resource).toBe(`${base}/mcp/files`);
    expect(doc.authorization_servers).toEqual([op.issuer]);
    expect((await fetch(`${warden.url}/.well-known/oauth-authorization-server/.warden/dev`)).status).toBe(404);
  });

  it('audience_binding: gateway opts an issuer into one gateway-wide audience', async () => {
    expect(await warden.reload(config('gateway', [base]))).toBe(true);
    try {
      const gatewayWide = await op.clientCredentialsToken(op.clients.machine.client_id, 'read', base);
      expect((await ping('/mcp/files', gatewayWide)).status).toBe(200);
      expect((await ping('/mcp/admin', gatewayWide)).status).toBe(200);
    } finally {
      expect(await warden.reload(config('resource', [`${base}/mcp/admin`, `${base}/mcp/files`, base]))).toBe(true);
    }
  });
});

describe('warden validate warns when no issuer can mint a token an MCP route accepts', () => {
  const yaml = (issuer: string, extra = '') => `
server: { public_url: "https://warden.example.com" }
identity:
  issuers: [{ issuer: "https://idp.example.com/", ${issuer} }]
authz: { engine: embedded, model: test/mcp/fixtures/model.fga, tuples: test/mcp/fixtures/tuples.yaml }
routes:
  - { name: files-mcp, match: { path: /mcp/files }, upstream: { url: "http://127.0.0.1:9" }, authorize: [], mcp: { other_tools: allow } }
${extra}`;
  const warnings = (text: string) => {
    const { config } = parseConfig(text, { file: 'gateway.yaml', env: {}, baseDir: process.cwd() });
    return audienceBindingWarnings(config, 'https://warden.example.com');
  };

  it('audience = public_url (the README example) locks standard MCP clients out: warned', () => {
    const w = warnings(yaml('audience: "https://warden.example.com"'));
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ path: 'routes[0]' });
    expect(w[0].message).toContain('https://warden.example.com/mcp/files');
  });

  it('no warning when an issuer lists the resource or opts into a gateway-wide audience', () => {
    expect(warnings(yaml('audience: ["https://warden.example.com/mcp/files"]'))).toEqual([]);
    expect(warnings(yaml('audience: "https://warden.example.com", audience_binding: gateway'))).toEqual([]);
  });
});
