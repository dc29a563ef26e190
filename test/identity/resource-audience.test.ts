/**
 * RFC 8707 the other way round: a token the authorization server bound to one
 * MCP resource (aud = `<public_url>/mcp/files`, as standard MCP clients ask)
 * is good on that MCP route only. It must not open REST routes, nor pull the
 * user's upstream token at the token exchange endpoint, although its issuer's
 * `audience` lists the resource beside the gateway's own audience.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { freePort } from '../support/net.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createConnectionRepository } from '../../src/vault/records.js';

const K1 = generateVaultKey();
const MAIL_SECRET = 'mail-bot-exchange-secret-0123456789abcdef';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const UPSTREAM_TOKEN = 'gho_bobs-upstream-token-for-the-gateway-only';

let op: OidcTestProvider;
let upstream: Upstream;
let warden: WardenHandle;
let base: string;

function config(binding: 'resource' | 'gateway'): string {
  return `
server: { listen: "127.0.0.1:0", public_url: "${base}" }
identity:
  dev_issuer: true
  issuers:
    - { issuer: "${op.issuer}", audience: ["${base}/mcp/files", "${base}"], algorithms: [RS256], audience_binding: ${binding}, user_prefix: "" }
authz: { engine: embedded, model: test/vault/fixtures/model.fga, tuples: test/vault/fixtures/exchange-tuples.yaml, cache_ttl: 0 }
vault:
  keys: [{ id: k1, key: "\${K1}" }]
  providers:
    github:
      authorization_url: http://127.0.0.1:9/auth
      token_url: http://127.0.0.1:9/token
      client_id: warden-vault
      client_secret: vault-client-secret
      scopes: [repo]
  exchange_clients:
    - { client_id: mail-bot, client_secret: "\${MAIL_SECRET}" }
routes:
  - { name: files-mcp, match: { path: /mcp/files }, upstream: { url: "${upstream.url}/files" }, authorize: [], mcp: { other_tools: allow, pin_tools: false } }
  - { name: rest, match: { path: "/rest/**" }, upstream: { url: "${upstream.url}" }, authorize: [] }
`;
}

beforeAll(async () => {
  base = `http://127.0.0.1:${await freePort()}`;
  op = await startOidcProvider({ audience: base });
  upstream = await startUpstream();
  warden = await startWarden({ config: config('resource'), env: { K1, MAIL_SECRET } });
  const repo = createConnectionRepository(warden.gateway.runtime().store, createVaultCipher([{ id: 'k1', key: K1 }]));
  await repo.put({ user: 'bob', provider: 'github', accessToken: UPSTREAM_TOKEN, scopes: ['repo'], expiresAt: Date.now() + 3600_000 });
});

afterAll(async () => {
  await warden?.close();
  await upstream?.close();
  await op?.stop();
});

async function mcpPing(token: string): Promise<number> {
  const res = await fetch(`${warden.url}/mcp/files`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function rest(token: string): Promise<{ status: number; challenge: string | null }> {
  const res = await fetch(`${warden.url}/rest/repos`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  return { status: res.status, challenge: res.headers.get('www-authenticate') };
}

async function exchange(subject: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${warden.url}/.warden/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`mail-bot:${MAIL_SECRET}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: GRANT,
      subject_token: subject,
      subject_token_type: ACCESS,
      resource: `${base}/.warden/connections/github`,
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('a token bound to an MCP resource is good on that MCP route only', () => {
  it('an authorization server token for /mcp/files opens /mcp/files but not a REST route', async () => {
    const forFiles = await op.clientCredentialsToken(op.clients.machine.client_id, 'read', `${base}/mcp/files`);
    expect(await mcpPing(forFiles)).toBe(200);
    const before = upstream.requests.length;
    const refused = await rest(forFiles);
    expect(refused.status).toBe(401);
    expect(refused.challenge).toMatch(/^Bearer realm="warden", error="invalid_token", error_description="[^"]+"$/);
    expect(upstream.requests.length).toBe(before);
    // The gateway's own audience still opens REST routes.
    expect((await rest(await op.clientCredentialsToken(op.clients.machine.client_id, 'read', base))).status).toBe(200);
  });

  it('the dev issuer: a token minted for /mcp/files opens no REST route; a gateway token does', async () => {
    expect(await mcpPing(await warden.mcpToken('/mcp/files', 'assistant', 'alice'))).toBe(200);
    expect((await rest(await warden.mcpToken('/mcp/files', 'assistant', 'alice'))).status).toBe(401);
    expect((await rest(await warden.token('assistant', 'alice'))).status).toBe(200);
  });

  it("a token for /mcp/files does not pull the user's upstream token at the exchange endpoint", async () => {
    const refused = await exchange(await warden.mcpToken('/mcp/files', 'mail-bot', 'bob'));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_request');
    expect(JSON.stringify(refused.body)).not.toContain(UPSTREAM_TOKEN);
    const granted = await exchange(await warden.token('mail-bot', 'bob'));
    expect(granted.status).toBe(200);
    expect(granted.body.access_token).toBe(UPSTREAM_TOKEN);
  });

  it("a token for /mcp/files neither lists nor revokes the user's connections", async () => {
    const forFiles = await warden.mcpToken('/mcp/files', 'assistant', 'bob');
    const listed = await fetch(`${warden.url}/.warden/connections`, { headers: { authorization: `Bearer ${forFiles}` } });
    expect(listed.status).toBe(401);
    expect(listed.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(JSON.stringify(await listed.json())).not.toContain('github');
    const revoked = await fetch(`${warden.url}/.warden/connections/github`, { method: 'DELETE', headers: { authorization: `Bearer ${forFiles}` } });
    expect(revoked.status).toBe(401);
    // The link is still there: the gateway's own token lists it.
    const mine = await fetch(`${warden.url}/.warden/connections`, { headers: { authorization: `Bearer ${await warden.token('assistant', 'bob')}` } });
    expect(mine.status).toBe(200);
    expect(((await mine.json()) as { connections: Array<{ provider: string }> }).connections.map((c) => c.provider)).toEqual(['github']);
  });

  it('audience_binding: gateway (one audience for the whole gateway) keeps such tokens good everywhere', async () => {
    expect(await warden.reload(config('gateway'))).toBe(true);
    try {
      const forFiles = await op.clientCredentialsToken(op.clients.machine.client_id, 'read', `${base}/mcp/files`);
      expect((await rest(forFiles)).status).toBe(200);
    } finally {
      expect(await warden.reload(config('resource'))).toBe(true);
    }
  });
});
