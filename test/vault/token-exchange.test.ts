/**
 * Unit tests of the RFC 8693 client's own logic (request shape, cache keying,
 * expiry, single flight, bounds, error classes) against a minimal HTTP
 * authorization server; the end-to-end use runs in e2e.test.ts.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTokenExchangeClient, type TokenExchangeConfig } from '../../src/vault/token-exchange.js';

describe('token exchange client', () => {
  let server: Server;
  let url = '';
  let calls: URLSearchParams[] = [];
  let auth: Array<string | undefined> = [];
  let answer: { status: number; body: Record<string, unknown>; delayMs?: number } = { status: 200, body: {} };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        calls.push(form);
        auth.push(req.headers.authorization);
        const body = {
          access_token: `xt-${calls.length}-${form.get('audience')}`,
          token_type: 'Bearer',
          issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          expires_in: 300,
          ...answer.body,
        };
        setTimeout(() => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(body)), answer.delayMs ?? 0);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    calls = [];
    auth = [];
    answer = { status: 200, body: {} };
  });

  const cfg = (over: Partial<TokenExchangeConfig> = {}): TokenExchangeConfig => ({
    kind: 'token_exchange',
    token_url: url,
    audience: 'https://api.example',
    client_id: 'warden',
    client_secret: 'exchange-secret',
    ...over,
  });
  const later = () => Date.now() + 3_600_000;

  it('sends an RFC 8693 request with client authentication and caches the answer per agent token', async () => {
    const client = createTokenExchangeClient({ timeoutMs: 2_000 });
    const a = await client.exchange('agent-token-A', later(), cfg({ scope: 'read' }));
    expect(a.accessToken).toBe('xt-1-https://api.example');
    expect(Object.fromEntries(calls[0])).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: 'agent-token-A',
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      audience: 'https://api.example',
      scope: 'read',
    });
    expect(auth[0]).toBe(`Basic ${Buffer.from('warden:exchange-secret').toString('base64')}`);
    expect((await client.exchange('agent-token-A', later(), cfg({ scope: 'read' }))).accessToken).toBe(a.accessToken);
    expect(calls).toHaveLength(1);
    // Another agent token, or other settings, never share the entry.
    expect((await client.exchange('agent-token-B', later(), cfg({ scope: 'read' }))).accessToken).not.toBe(a.accessToken);
    expect((await client.exchange('agent-token-A', later(), cfg({ scope: 'write' }))).accessToken).not.toBe(a.accessToken);
    expect((await client.exchange('agent-token-A', later(), cfg({ scope: 'read', audience: 'https://other' }))).accessToken).not.toBe(a.accessToken);
    expect(calls).toHaveLength(4);
    client.close();
  });

  it('does not serve a token near its expiry, nor past the agent token’s expiry', async () => {
    const client = createTokenExchangeClient({ timeoutMs: 2_000, refreshBeforeMs: 30_000 });
    answer.body = { expires_in: 20 };
    await client.exchange('t', later(), cfg());
    await client.exchange('t', later(), cfg());
    expect(calls).toHaveLength(2);
    answer.body = {};
    const capped = await client.exchange('short-agent', Date.now() + 10_000, cfg());
    expect(capped.expiresAt).toBeLessThanOrEqual(Date.now() + 10_000);
    await client.exchange('short-agent', Date.now() + 10_000, cfg());
    expect(calls).toHaveLength(4);
  });

  it('one request in flight per key; bounded cache', async () => {
    const client = createTokenExchangeClient({ timeoutMs: 2_000, maxEntries: 3 });
    answer.delayMs = 100;
    const all = await Promise.all(Array.from({ length: 10 }, () => client.exchange('same', later(), cfg())));
    expect(new Set(all.map((t) => t.accessToken)).size).toBe(1);
    expect(calls).toHaveLength(1);
    answer.delayMs = 0;
    for (let i = 0; i < 10; i++) await client.exchange(`agent-${i}`, later(), cfg());
    expect(client.size()).toBeLessThanOrEqual(3);
  });

  it('classifies refusals and outages', async () => {
    const client = createTokenExchangeClient({ timeoutMs: 300 });
    answer = { status: 400, body: { error: 'invalid_target' } };
    await expect(client.exchange('x', later(), cfg())).rejects.toMatchObject({ kind: 'rejected', oauthError: 'invalid_target' });
    answer = { status: 502, body: {} };
    await expect(client.exchange('x', later(), cfg())).rejects.toMatchObject({ kind: 'transient' });
    answer = { status: 200, body: {}, delayMs: 1_000 };
    await expect(client.exchange('y', later(), cfg())).rejects.toMatchObject({ kind: 'transient' });
    answer = { status: 200, body: { token_type: 'DPoP' } };
    await expect(client.exchange('z', later(), cfg())).rejects.toMatchObject({ kind: 'rejected' });
    expect(client.size()).toBe(0);
  });
});
