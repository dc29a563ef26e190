/** Connect tickets and link flows: single use, short-lived, stored only as digests. */

import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/store/memory.js';
import { createLinkSecrets, digest, safeEqual } from '../../src/vault/tickets.js';

describe('link secrets', () => {
  it('a ticket is single-use and its store key is a digest', async () => {
    const store = createMemoryStore();
    const secrets = createLinkSecrets(store, 60_000);
    const ticket = await secrets.issueTicket({ user: 'alice', agent: 'bot', provider: 'github', scopes: ['repo'] });
    expect(ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const keys: string[] = [];
    for await (const k of store.keys('vault:ticket:')) keys.push(k);
    expect(keys).toEqual([`vault:ticket:${digest(ticket)}`]);
    expect(await secrets.takeTicket(ticket)).toMatchObject({ user: 'alice', provider: 'github', scopes: ['repo'] });
    expect(await secrets.takeTicket(ticket)).toBeNull();
    expect(await secrets.takeTicket('short')).toBeNull();
    await store.close();
  });

  it('tickets and flows expire', async () => {
    const store = createMemoryStore();
    const secrets = createLinkSecrets(store, 50);
    const ticket = await secrets.issueTicket({ user: 'a', agent: 'b', provider: 'p', scopes: [] });
    const state = await secrets.startFlow({ user: 'a', agent: 'b', provider: 'p', scopes: [], codeVerifier: 'v', redirectUri: 'http://x/cb' });
    await new Promise((r) => setTimeout(r, 80));
    expect(await secrets.takeTicket(ticket)).toBeNull();
    expect(await secrets.takeFlow(state)).toBeNull();
    await store.close();
  });

  it('state comparison is exact', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
  });
});

describe('vault config cross-checks', () => {
  it('reports routes naming unknown providers and vault use without keys', async () => {
    const { vaultConfigIssues } = await import('../../src/vault/stage.js');
    const { configSchema } = await import('../../src/config/schema.js');
    const config = configSchema.parse({
      vault: { providers: { github: { authorization_url: 'https://a.example/auth', token_url: 'https://a.example/token', client_id: 'x' } } },
      routes: [
        { name: 'ok', match: { path: '/a' }, upstream: { url: 'http://127.0.0.1:1' }, authorize: [], credentials: { vault: 'github' } },
        { name: 'bad', match: { path: '/b' }, upstream: { url: 'http://127.0.0.1:1' }, authorize: [], credentials: { vault: 'gitlab' } },
      ],
    });
    const issues = vaultConfigIssues(config);
    expect(issues).toContain('routes[1].credentials.vault: provider "gitlab" is not in vault.providers');
    expect(issues.filter((i) => i.includes('vault.keys'))).toHaveLength(2);
  });
});
