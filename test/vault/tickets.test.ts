/** Connect tickets and link flows: single use, short-lived, stored only as digests. */

import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/store/memory.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createLinkSecrets, digest, safeEqual } from '../../src/vault/tickets.js';

async function keysUnder(store: ReturnType<typeof createMemoryStore>, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of store.keys(prefix)) keys.push(k);
  return keys;
}

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

  it('a binding gets its unused ticket back while half its life is left; then, or once used, a new one', async () => {
    const store = createMemoryStore();
    const cipher = createVaultCipher([{ id: 'k1', key: generateVaultKey() }]);
    const secrets = createLinkSecrets(store, 1_000, { cipher });
    const binding = { user: 'alice', agent: 'bot', provider: 'github', scopes: ['repo'] };
    const first = await Promise.all(Array.from({ length: 50 }, () => secrets.issueTicket(binding)));
    expect(new Set(first).size).toBe(1);
    expect(await keysUnder(store, 'vault:ticket:')).toEqual([`vault:ticket:${digest(first[0])}`]);
    // The kept copy is sealed: the store holds no usable ticket.
    for (const key of await keysUnder(store, 'vault:ticket-for:')) expect(await store.get(key)).not.toContain(first[0]);

    // Another binding (scopes included) never shares it.
    expect(await secrets.issueTicket({ ...binding, scopes: ['repo', 'gist'] })).not.toBe(first[0]);
    expect(await secrets.issueTicket({ ...binding, agent: 'other' })).not.toBe(first[0]);

    // Past half its life: a new ticket; the old one still works until it expires.
    await new Promise((r) => setTimeout(r, 600));
    const second = await secrets.issueTicket(binding);
    expect(second).not.toBe(first[0]);
    expect(await secrets.peekTicket(first[0])).toMatchObject({ user: 'alice' });
    expect(await secrets.issueTicket(binding)).toBe(second);

    // Used: the next refusal gets a new one.
    expect(await secrets.takeTicket(second)).toMatchObject({ user: 'alice', agent: 'bot' });
    const third = await secrets.issueTicket(binding);
    expect(third).not.toBe(second);
    expect(await secrets.peekTicket(third)).toMatchObject({ user: 'alice', agent: 'bot', provider: 'github', scopes: ['repo'] });
    await store.close();
  });

  it('a kept ticket that does not open (tampered, retired key) is replaced, never trusted', async () => {
    const store = createMemoryStore();
    const binding = { user: 'alice', agent: 'bot', provider: 'github', scopes: [] };
    const old = await createLinkSecrets(store, 60_000, { cipher: createVaultCipher([{ id: 'k1', key: generateVaultKey() }]) }).issueTicket(binding);
    const rotated = createLinkSecrets(store, 60_000, { cipher: createVaultCipher([{ id: 'k2', key: generateVaultKey() }]) });
    const fresh = await rotated.issueTicket(binding);
    expect(fresh).not.toBe(old);
    expect(await rotated.issueTicket(binding)).toBe(fresh);
    const [slot] = await keysUnder(store, 'vault:ticket-for:');
    const sealed = (await store.get(slot!))!;
    const parts = sealed.split(':');
    parts[3] = (parts[3]!.startsWith('A') ? 'B' : 'A') + parts[3]!.slice(1);
    await store.set(slot!, parts.join(':'));
    expect(await rotated.issueTicket(binding)).not.toBe(fresh);
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
