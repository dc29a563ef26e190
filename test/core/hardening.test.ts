/**
 * Regression tests for the adversarial review (#12, part A): each `it` names
 * its finding. A real Warden in front of a recording upstream; every refusal
 * also asserts that the upstream saw nothing.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, type WardenHandle, startWardenWithUpstream, closeAll } from '../support/gateway.js';
import type { Upstream } from '../support/upstream.js';
import { rawRequest } from '../support/raw-http.js';
import { parseWwwAuthenticate } from '../support/www-authenticate.js';
import { devPolicyYaml, publicRouteYaml } from '../support/config.js';

let upstream: Upstream;
let warden: WardenHandle;
let alice: string;

const config = (up: string) => `
server:
  listen: 127.0.0.1:0
  admin_token: "\${TEST_ADMIN_TOKEN}"
  limits: { body_bytes: 4096, request_timeout: 2s }
${devPolicyYaml('test/core/fixtures')}
routes:
${publicRouteYaml(up)}
  - name: keyed
    match: { path: /keyed/** }
    upstream:
      url: "${up}"
      strip_prefix: /keyed
      headers: { X-Tenant: "\${TEST_TENANT}", X-Static: fixed }
    authorize: []
    credentials: { header: { name: X-Api-Key, value: "\${TEST_UPSTREAM_KEY}" } }
  - name: by-query
    match: { path: /q/read }
    upstream: { url: "${up}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{query.doc}" }
  - name: limited
    match: { path: /limited }
    upstream: { url: "${up}" }
    authorize: []
    rate_limit: { key: "{query.acct}", requests: 100, per: 1m }
  - name: share
    match: { path: /share/:doc }
    upstream: { url: "${up}" }
    authorize:
      - user: "user:{user}"
        relation: can_read
        object: "doc:{path.doc}"
        contextual_tuples:
          - { user: "user:{query.with}", relation: viewer, object: "doc:{path.doc}" }
  - name: by-body
    match: { path: /b/read, methods: [POST] }
    upstream: { url: "${up}" }
    authorize:
      - user: "user:{user}"
        relation: can_read
        object: "doc:{body.doc}"
        # alice may read one document with a 64-bit id, 2^53.
        contextual_tuples: [{ user: "user:{user}", relation: viewer, object: "doc:9007199254740992" }]
  - name: scoped
    match: { path: /scoped/** }
    upstream: { url: "${up}" }
    scopes: [notes.read]
    authorize: []
  - name: tools
    match: { path: /mcp/tools }
    upstream: { url: "${up}" }
    authorize: []
    mcp: { other_tools: allow }
`;

beforeAll(async () => {
  ({ warden, upstream } = await startWardenWithUpstream(config, {
    env: { TEST_UPSTREAM_KEY: 'static-key-0123456789', TEST_TENANT: 'acme', TEST_ADMIN_TOKEN: 'admin-token-0123456789abcdef0123456789' },
  }));
  alice = await warden.token('demo-agent', 'alice');
});

afterAll(() => closeAll(warden, upstream));

beforeEach(() => {
  upstream.requests.length = 0;
});

const auth = (t = alice) => ({ authorization: `Bearer ${t}` });

/** Every value of header `name` the upstream received, in order. */
function seenValues(name: string): string[] {
  const raw = upstream.requests[0].rawHeaders;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) out.push(raw[i + 1]);
  return out;
}

describe('A.1 injected credentials cannot be shadowed', () => {
  it('drops the agent’s own X-Api-Key (any case) before injecting credentials.header', async () => {
    const host = new URL(warden.url).host;
    const r = await rawRequest(
      warden.url,
      [
        'GET /keyed/k HTTP/1.1',
        `Host: ${host}`,
        `Authorization: Bearer ${alice}`,
        'X-Api-Key: mine',
        'x-API-key: mine-again',
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
    expect(r.status).toBe(200);
    expect(seenValues('x-api-key')).toEqual(['static-key-0123456789']);
  });

  it('drops an inbound Warden-Identity (the identity assertion header)', async () => {
    const res = await fetch(`${warden.url}/keyed/k`, { headers: { ...auth(), 'warden-identity': 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.' } });
    expect(res.status).toBe(200);
    expect(seenValues('warden-identity')).toEqual([]);
  });
});

describe('A.2 strict JSON on MCP routes', () => {
  it.each([
    ['a duplicate tool name', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{},"name":"delete_all"}}'],
    ['a lone surrogate in the arguments', '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"p":"\\udfff"}}}'],
  ])('refuses %s before the tool rules read it', async (_label, body) => {
    // RFC 8707: a token for this MCP route (aud = its resource).
    const mcpToken = await warden.mcpToken('/mcp/tools', 'demo-agent', 'alice');
    const res = await fetch(`${warden.url}/mcp/tools`, {
      method: 'POST',
      headers: { ...auth(mcpToken), 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body,
    });
    expect(res.status).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('A.9 upstream.headers', () => {
  it('sends the route’s static headers (with ${VAR} values), replacing what the agent sent', async () => {
    const res = await fetch(`${warden.url}/keyed/k`, { headers: { ...auth(), 'x-tenant': 'other-tenant', 'X-STATIC': 'agent' } });
    expect(res.status).toBe(200);
    expect(seenValues('x-tenant')).toEqual(['acme']);
    expect(seenValues('x-static')).toEqual(['fixed']);
  });
});

describe('A.5 query pollution', () => {
  it.each([
    ['bracketed twin', 'doc%5B%5D=2&doc=1'],
    ['raw bracketed twin', 'doc[]=2&doc=1'],
    ['semicolon-separated twin', 'x=1;doc=2&doc=1'],
    ['repeated parameter', 'doc=1&doc=1'],
    ['case variant', 'DOC=2&doc=1'],
    ['indexed twin after', 'doc=1&doc%5Bx%5D=2'],
  ])('refuses a templated parameter given twice (%s) with 400', async (_label, query) => {
    const res = await fetch(`${warden.url}/q/read?${query}`, { headers: auth() });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('bad_request');
    expect(upstream.requests).toHaveLength(0);
  });

  it('forwards a query whose templated parameter appears once, as it was authorized', async () => {
    const res = await fetch(`${warden.url}/q/read?doc=1&tag=a&tag=b`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(upstream.requests[0].url).toBe('/q/read?doc=1&tag=a&tag=b');
  });

  it('applies to parameters any feature reads (a rate-limit key)', async () => {
    expect((await fetch(`${warden.url}/limited?acct=a&acct%5B%5D=b`, { headers: auth() })).status).toBe(400);
    expect((await fetch(`${warden.url}/limited?acct=a`, { headers: auth() })).status).toBe(200);
  });

  it('never forwards access_token in a ;-separated or bracketed form', async () => {
    for (const q of ['x=1;access_token=leak', 'access_token%5B%5D=leak']) {
      const res = await fetch(`${warden.url}/public/p?${q}`);
      expect(res.status).toBe(400);
    }
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('A.6 Host and client-IP headers', () => {
  it('refuses a Host header that is not host[:port]', async () => {
    for (const host of ['evil.com/x?', 'evil.com@other', 'a b', 'evil.com:80:80']) {
      const r = await rawRequest(warden.url, ['GET /public/h HTTP/1.1', `Host: ${host}`, 'Connection: close', '', ''].join('\r\n'));
      expect(r.status, host).toBe(400);
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('passes no client-IP or forwarding header from an untrusted peer', async () => {
    const family = [
      'True-Client-IP',
      'X-Client-IP',
      'CF-Connecting-IP',
      'X-Cluster-Client-IP',
      'X-Forwarded-Server',
      'X-Forwarded-Uri',
      'X-Envoy-Original-Path',
      'X-Original-URL',
      'X-Rewrite-URL',
      'X-Real-IP',
      'Forwarded',
    ];
    const host = new URL(warden.url).host;
    const r = await rawRequest(
      warden.url,
      [
        'GET /public/ip HTTP/1.1',
        `Host: ${host}`,
        ...family.map((h) => `${h}: 6.6.6.6`),
        'X-Forwarded-For: 6.6.6.6',
        'X-Forwarded-Host: evil.example',
        'Connection: close',
        '',
        '',
      ].join('\r\n'),
    );
    expect(r.status).toBe(200);
    for (const h of family) expect(seenValues(h.toLowerCase()), h).toEqual([]);
    expect(seenValues('x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(seenValues('x-forwarded-host')).toEqual([host]);
  });

  it('refuses method override headers', async () => {
    for (const h of ['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override']) {
      const res = await fetch(`${warden.url}/public/m`, { method: 'POST', headers: { [h]: 'DELETE' } });
      expect(res.status, h).toBe(400);
    }
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('A.7 wildcard template values', () => {
  it('refuses "*" as a template value instead of checking user:*', async () => {
    // bob owns doc:2; sharing it "with *" would make alice a viewer through the wildcard.
    const res = await fetch(`${warden.url}/share/2?with=*`, { headers: auth() });
    expect(res.status).toBe(403);
    expect(upstream.requests).toHaveLength(0);
  });

  it('still allows a plain value through the same template', async () => {
    const res = await fetch(`${warden.url}/share/2?with=alice`, { headers: auth() });
    expect(res.status).toBe(200);
  });
});

describe('D.7 integers past 2^53 − 1 in a body policy reads', () => {
  const post = (body: string) => fetch(`${warden.url}/b/read`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body });

  it('refuses 9007199254740993 (policy would read 2^53, an int64 upstream 2^53 + 1): 400, nothing forwarded', async () => {
    for (const body of ['{"doc":9007199254740993}', '{"doc":9007199254740992}']) {
      const res = await post(body);
      expect(res.status).toBe(400);
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('bad_request');
      expect(problem.detail).toContain('integer beyond 2^53 − 1');
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('the same ids as strings are exact: the one alice may read passes, its neighbour does not', async () => {
    expect((await post('{"doc":"9007199254740993"}')).status).toBe(403);
    expect(upstream.requests).toHaveLength(0);
    expect((await post('{"doc":"9007199254740992"}')).status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  });
});

describe('E.5 a body read as JSON under a type naming another charset', () => {
  const post = (type: string, body: string) => fetch(`${warden.url}/b/read`, { method: 'POST', headers: { ...auth(), 'content-type': type }, body });
  // Strict JSON in UTF-8, with doc 2^53 (alice's). In UTF-7 `+ACIALAAi-` is `","` and `+ACI-` a quote: an upstream
  // decoding it first reads {"doc":"9007199254740992","x":"","doc":"secret"}, where the last doc wins.
  const twoMeanings = '{"doc":"9007199254740992","x":"+ACIALAAi-doc+ACI-:+ACI-secret"}';

  it('text/plain; charset=utf-7 (read as JSON by its first byte): 400, nothing forwarded', async () => {
    for (const type of ['text/plain; charset=utf-7', 'text/plain;charset="UTF-16"', 'text/plain; charset=iso-8859-1']) {
      const res = await post(type, twoMeanings);
      expect(res.status, type).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toContain('must be UTF-8');
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('control: the same JSON as text/plain in utf-8 (or without a charset) is read and forwarded', async () => {
    for (const type of ['text/plain; charset=utf-8', 'text/plain; charset="UTF-8"', 'text/plain']) {
      expect((await post(type, '{"doc":"9007199254740992"}')).status, type).toBe(200);
    }
    expect(upstream.requests).toHaveLength(3);
  });
});

describe('A.11 every WWW-Authenticate challenge parses strictly (RFC 9110 §11.6.1)', () => {
  async function challengeOf(path: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${warden.url}${path}`, { headers });
    expect([401, 403]).toContain(res.status);
    const value = res.headers.get('www-authenticate');
    expect(value, path).toBeTruthy();
    const parsed = parseWwwAuthenticate(value!);
    expect(parsed).toHaveLength(1);
    expect(parsed[0].scheme).toBe('Bearer');
    return parsed[0].params;
  }

  it('no token', async () => {
    expect(await challengeOf('/keyed/x')).toEqual({ realm: 'warden' });
  });

  it('not a Bearer header', async () => {
    expect(await challengeOf('/keyed/x', { authorization: 'Basic YTpi' })).toEqual({ realm: 'warden', error: 'invalid_request' });
  });

  it('a refused token', async () => {
    const forged = alice.slice(0, alice.lastIndexOf('.') + 1) + 'AAAA';
    const p = await challengeOf('/keyed/x', auth(forged));
    expect(p.realm).toBe('warden');
    expect(p.error).toBe('invalid_token');
    expect(p.error_description).toBeTruthy();
  });

  it('insufficient scope', async () => {
    const p = await challengeOf('/scoped/x', auth());
    expect(p).toMatchObject({ realm: 'warden', error: 'insufficient_scope', scope: 'notes.read' });
  });

  it('MCP routes: resource_metadata, also with a refused token', async () => {
    const p = await challengeOf('/mcp/tools');
    expect(p.resource_metadata).toMatch(/\/\.well-known\/oauth-protected-resource\/mcp\/tools$/);
    const q = await challengeOf('/mcp/tools', auth('not.a.jwt'));
    expect(q.resource_metadata).toBe(p.resource_metadata);
    expect(q.error).toBe('invalid_token');
  });

  it('Warden’s own endpoints', async () => {
    let checked = 0;
    for (const path of ['/.warden/approvals/abc', '/.warden/connections', '/.warden/grants']) {
      const res = await fetch(`${warden.url}${path}`);
      if (res.status !== 401) continue;
      checked++;
      const value = res.headers.get('www-authenticate');
      expect(value, path).toBeTruthy();
      expect(() => parseWwwAuthenticate(value!)).not.toThrow();
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('the admin listener', async () => {
    const res = await fetch(`${warden.adminUrl}/routes`);
    expect(res.status).toBe(401);
    expect(parseWwwAuthenticate(res.headers.get('www-authenticate')!)[0]).toMatchObject({ scheme: 'Bearer', params: { realm: 'warden-admin' } });
  });

  it('every literal challenge in the source', () => {
    // Templated challenges are exercised end to end above; the fixed ones are read from the code.
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/'www-authenticate'\]?\s*[:=]\s*'([^']+)'|'WWW-Authenticate':\s*'([^']+)'/gi))
            found.push(m[1] ?? m[2]);
        }
      }
    };
    walk(join(REPO_ROOT, 'src'));
    expect(found.length).toBeGreaterThan(3);
    for (const value of found) expect(() => parseWwwAuthenticate(value), value).not.toThrow();
  });

  it('the parser itself refuses the malformed form the review found', () => {
    expect(() => parseWwwAuthenticate('Bearer realm="warden" error="invalid_token"')).toThrow(/","/);
    expect(() => parseWwwAuthenticate('Bearer realm="a", realm="b"')).toThrow(/duplicate/);
    expect(parseWwwAuthenticate('Bearer realm="a", error="x", Basic realm="b"')).toHaveLength(2);
    expect(parseWwwAuthenticate('Negotiate abc==')[0].token68).toBe('abc==');
  });
});
