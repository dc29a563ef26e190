/**
 * HTTP details a platform team notices: 405 names the allowed methods, Warden's
 * own endpoints of a feature that is not configured are 404 (never 500), every
 * 400 — also the ones refused before routing, and the ones Node's parser
 * rejects — carries a request id, an audit line and a metric, and log
 * redaction keeps error codes readable.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { rawRequest } from '../support/raw-http.js';
import { createLogger, scrub } from '../../src/observability/logger.js';
import { WardenError } from '../../src/core/errors.js';

let upstream: Upstream;
let warden: WardenHandle;

beforeAll(async () => {
  upstream = await startUpstream();
  warden = await startWarden({
    config: `
identity: { dev_issuer: true }
authz: { model: policies/model.fga, tuples: policies/tuples.yaml }
routes:
  - name: docs-read
    match: { path: /docs/:doc, methods: [GET] }
    upstream: { url: "${upstream.url}" }
    authorize: []
  - name: docs-write
    match: { path: /docs/:doc, methods: [PUT, PATCH] }
    upstream: { url: "${upstream.url}" }
    authorize: []
  - name: files-mcp
    match: { path: /mcp }
    upstream: { url: "${upstream.url}/mcp" }
    authorize: []
    mcp: {}
`,
  });
});
afterAll(async () => {
  await warden?.close();
  await upstream?.close();
});

const metric = async (status: number) => {
  const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
  const m = new RegExp(`^warden_requests_total\\{decision="deny",route="-",status="${status}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

describe('405 Method Not Allowed', () => {
  it('carries Allow with every method the matching routes take', async () => {
    const token = await warden.token('demo-agent', 'alice');
    const r = await fetch(`${warden.url}/docs/1`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, PATCH, PUT');
    expect(((await r.json()) as { code: string }).code).toBe('method_not_allowed');
  });

  it('HEAD is a method of its own: a route that lists GET does not take it (docs/routes.md)', async () => {
    const token = await warden.token('demo-agent', 'alice');
    const r = await fetch(`${warden.url}/docs/1`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, PATCH, PUT');
  });

  it('on an MCP route names POST, GET and DELETE', async () => {
    const token = await warden.mcpToken('/mcp', 'demo-agent', 'alice');
    const r = await fetch(`${warden.url}/mcp`, { method: 'PUT', headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('DELETE, GET, POST');
  });
});

describe('protocol upgrades', () => {
  it('a WebSocket upgrade is not tunnelled: checked and forwarded as the plain GET it also is, without Upgrade (docs/http.md)', async () => {
    const token = await warden.token('demo-agent', 'alice');
    const host = new URL(warden.url).host;
    const r = await rawRequest(
      warden.url,
      `GET /docs/ws HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(r.status).toBe(200);
    const seen = upstream.requests.find((q) => q.url === '/docs/ws');
    expect(seen?.method).toBe('GET');
    expect(seen?.headers.upgrade).toBeUndefined();
    expect(String(seen?.headers.connection ?? '')).not.toMatch(/upgrade/i);
    expect(seen?.headers.authorization).toBeUndefined();

    // Without a token the upgrade changes nothing either: 401, nothing forwarded.
    const before = upstream.requests.length;
    const anon = await rawRequest(warden.url, `GET /docs/ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    expect(anon.status).toBe(401);
    expect(upstream.requests.length).toBe(before);
  });
});

describe('endpoints of a feature that is not configured', () => {
  it('/.warden/connections without a vault is 404 not_found, never 500', async () => {
    const token = await warden.token('demo-agent', 'alice');
    for (const [method, path] of [
      ['GET', '/.warden/connections'],
      ['DELETE', '/.warden/connections/github'],
      ['GET', '/.warden/connect/github?ticket=x'],
    ]) {
      const r = await fetch(`${warden.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, redirect: 'manual' });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(((await r.json()) as { code: string }).code).toBe('not_found');
    }
    expect(warden.logs()).not.toMatch(/"level":"error"/);
  });
});

describe('every 400 is traceable', () => {
  it('a target refused before routing has a request id, an audit line and a metric', async () => {
    const before = await metric(400);
    const r = await fetch(`${warden.url}/docs/a%2Fb`, { headers: { 'x-request-id': 'attacker-chosen' } });
    expect(r.status).toBe(400);
    const body = (await r.json()) as { code: string; request_id: string };
    expect(body.code).toBe('bad_request');
    expect(body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.headers.get('x-request-id')).toBe(body.request_id);
    const line = warden.audits().find((a) => a.request_id === body.request_id);
    expect(line).toMatchObject({ audit: true, route: '-', decision: 'deny', status: 400, code: 'bad_request', method: 'GET' });
    expect(typeof line?.reason).toBe('string');
    expect(await metric(400)).toBe(before + 1);
  });

  it('a message Node’s HTTP parser rejects gets the same', async () => {
    const before = await metric(400);
    const r = await rawRequest(warden.url, 'GET /docs/1 HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n');
    expect(r.status).toBe(400);
    const id = /\r\nx-request-id: ([0-9a-f-]{36})\r\n/i.exec(r.text)?.[1];
    expect(id).toBeDefined();
    expect(r.text).toContain(`"request_id":"${id}"`);
    await expect
      .poll(() => warden.audits().find((a) => a.request_id === id))
      .toMatchObject({ audit: true, decision: 'deny', status: 400, code: 'bad_request' });
    expect(await metric(400)).toBe(before + 1);
  });
});

describe('log redaction by secret field names', () => {
  it('error codes stay readable; secrets named in the list do not', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: new Writable({ write: (c, _e, done) => (lines.push(String(c)), done()) }) });
    logger.error({ err: new WardenError('store_unavailable', 'Redis did not answer'), code: 'ECONNREFUSED', exit: { code: 1 } }, 'failed');
    logger.info(
      { authorization_code: 'oauth-code-1234567890', client_secret: 's3cret-value-123', url: '/.warden/callback/github?code=oauth-code-1234567890&state=s' },
      'callback',
    );
    const text = lines.join('');
    expect(text).toContain('"code":"store_unavailable"');
    expect(text).toContain('"code":"ECONNREFUSED"');
    expect(text).toContain('"exit":{"code":1}');
    expect(text).not.toContain('oauth-code-1234567890');
    expect(text).not.toContain('s3cret-value-123');
    expect(scrub({ code: 'approval_pending' })).toEqual({ code: 'approval_pending' });
  });
});
