/**
 * Sign-in building blocks without a browser: which return_to values survive,
 * how sealed cookies refuse tampering and swapping, and what `warden validate`
 * says about sign-in settings.
 */

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/issues.js';
import { parseConfig } from '../../src/gateway/config.js';
import { createCookieSealer, safeReturnTo, sessionClaims } from '../../src/http/session.js';

describe('return_to', () => {
  it('keeps paths of Warden’s own pages, with a query', () => {
    expect(safeReturnTo('/.warden/session', '')).toBe('/.warden/session');
    expect(safeReturnTo('/.warden/connect/github?ticket=abc_-1', '')).toBe('/.warden/connect/github?ticket=abc_-1');
    expect(safeReturnTo('/base/.warden/approvals/x/review?t=1', '/base')).toBe('/base/.warden/approvals/x/review?t=1');
  });

  it.each([
    'https://evil.example/.warden/x',
    '//evil.example/.warden/x',
    '/\\evil.example/.warden/',
    '/.warden/\\evil',
    '/.warden//evil.example',
    '/.warden/../x',
    '/.warden/./x',
    '/.warden/%2e%2e/x',
    '/.warden/%2F/x',
    '/.warden/x#frag',
    '/.warden/x\nLocation: //evil',
    '/.warden/x\t',
    '/other',
    '/.wardenx/',
    '/.warden/x?',
    '',
    'x'.repeat(3000),
  ])('refuses %j', (value) => {
    expect(safeReturnTo(value, '')).toBeNull();
  });

  it('refuses a path outside the base path', () => {
    expect(safeReturnTo('/.warden/session', '/base')).toBeNull();
  });
});

describe('sealed cookies', () => {
  const sealer = createCookieSealer('s'.repeat(40));

  it('opens what it sealed for the same purpose only', () => {
    const v = sealer.seal('session', { sub: 'alice' });
    expect(sealer.open('session', v)).toEqual({ sub: 'alice' });
    expect(sealer.open('signin', v)).toBeNull();
    expect(createCookieSealer('t'.repeat(40)).open('session', v)).toBeNull();
  });

  it('refuses every single-character change', () => {
    const v = sealer.seal('session', { sub: 'alice', exp: 1 });
    for (let i = 3; i < v.length; i++) {
      const flipped = v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1);
      // A change in the last base64url character's padding bits can decode to the same bytes.
      if (Buffer.from(flipped.slice(3), 'base64url').equals(Buffer.from(v.slice(3), 'base64url'))) continue;
      expect(sealer.open('session', flipped)).toBeNull();
    }
  });

  it('keeps a bounded subset of claims', () => {
    const claims = sessionClaims({
      sub: 'a',
      iss: 'x',
      nonce: 'n',
      email: 'a@example.test',
      big: 'x'.repeat(2000),
      ...Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`c${i}`, 'y'.repeat(50)])),
    });
    expect(claims.email).toBe('a@example.test');
    expect(claims).not.toHaveProperty('nonce');
    expect(claims).not.toHaveProperty('big');
    expect(JSON.stringify(claims).length).toBeLessThanOrEqual(1600);
  });
});

/** The config problems of `yaml` as `path: message` lines (none when it loads). */
function issues(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, { env: { ...env } });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

describe('sign-in config checks', () => {
  it('refuses a short session secret and scopes without openid', () => {
    const found = issues(`
identity:
  dev_issuer: true
  login: { issuer: "https://idp.example.test/", client_id: w, scopes: [email], session: { secret: short } }
`);
    expect(found.some((i) => i.startsWith('identity.login.session.secret'))).toBe(true);
    expect(found.some((i) => i.startsWith('identity.login.scopes'))).toBe(true);
  });

  it('refuses review_auth login and vault providers when nobody can sign in', () => {
    const found = issues(`
identity:
  issuers: [{ issuer: "https://idp.example.test/", audience: x }]
approvals: { review_auth: login }
vault:
  providers:
    gh: { authorization_url: "https://gh.example.test/a", token_url: "https://gh.example.test/t", client_id: c }
`);
    expect(found.some((i) => i.startsWith('approvals.review_auth'))).toBe(true);
    expect(found.some((i) => i.startsWith('identity.login: vault.providers'))).toBe(true);
  });

  it('in production, sign-in needs an https public_url and the dev login is refused', () => {
    const yaml = `
server: { public_url: "http://warden.example.test" }
identity:
  issuers: [{ issuer: "https://idp.example.test/", audience: x }]
  login: { issuer: "https://idp.example.test/", client_id: w, session: { secret: "${'s'.repeat(40)}" } }
`;
    expect(issues(yaml, { NODE_ENV: 'production' }).some((i) => i.startsWith('identity.login: in production'))).toBe(true);
    expect(issues(yaml.replace('http://', 'https://'), { NODE_ENV: 'production' })).toEqual([]);
    expect(
      issues(`identity: { dev_issuer: true }\napprovals: { review_auth: login }\n`, { NODE_ENV: 'production' }).some((i) =>
        i.startsWith('approvals.review_auth'),
      ),
    ).toBe(true);
  });
});

describe('review by link alone is a choice in production', () => {
  const config = (route: string, approvals = '') => `
identity:
  issuers: [{ issuer: "https://idp.example.test/", audience: x }]
${approvals}
routes:
  - { name: pay, match: { path: /pay }, upstream: { url: "http://127.0.0.1:9" }, authorize: [], ${route} }
`;
  const linkAlone = (found: string[]) => found.some((i) => i.startsWith('approvals.review_auth: without identity.login the review link alone decides'));

  it('refuses approvals without identity.login unless review_auth: link is said explicitly', () => {
    const production = { NODE_ENV: 'production' };
    expect(linkAlone(issues(config('approval: { message: "Pay?" }'), production))).toBe(true);
    // A budget that asks for approval when it would be passed holds requests too.
    expect(linkAlone(issues(config('budget: { amount: 1, max: 10, per: 1h, over: approve }'), production))).toBe(true);
    expect(issues(config('approval: { message: "Pay?" }', 'approvals: { review_auth: link }'), production)).toEqual([]);
    // Nothing can be held: nothing to review.
    expect(issues(config('budget: { amount: 1, max: 10, per: 1h }'), production)).toEqual([]);
    // Development keeps the link-only default.
    expect(issues(config('approval: { message: "Pay?" }'))).toEqual([]);
  });
});

describe('session cookies over https', () => {
  it('are __Host- prefixed, Secure, HttpOnly, SameSite=Lax and Path=/; over http they stay on /.warden', async () => {
    const { Hono } = await import('hono');
    const { createSessions } = await import('../../src/http/session.js');
    const { createMemoryStore } = await import('../../src/store/memory.js');
    const { createLogger } = await import('../../src/observability/logger.js');
    const store = createMemoryStore();
    const cookieOf = async (publicUrl: string) => {
      const sessions = createSessions({ mode: 'oidc', secret: 's'.repeat(40), ttlMs: 3_600_000, publicUrl, store, logger: createLogger({ level: 'silent' }) });
      const app = new Hono();
      app.get('/in', (c) => {
        sessions.signIn(c, { sub: 'alice', issuer: 'https://idp.example.test', claims: {}, via: 'oidc' });
        return c.text('ok');
      });
      app.get('/who', async (c) => c.text((await sessions.current(c))?.sub ?? 'nobody'));
      const res = await app.request('/in');
      return { setCookie: res.headers.get('set-cookie') ?? '', app };
    };
    const https = await cookieOf('https://warden.example.test');
    expect(https.setCookie).toMatch(/^__Host-warden_session=v1\.[A-Za-z0-9_-]+;/);
    expect(https.setCookie).toMatch(/; Max-Age=3600; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    const value = /^([^;]+);/.exec(https.setCookie)![1];
    expect(await (await https.app.request('/who', { headers: { cookie: value } })).text()).toBe('alice');
    // The same value under the non-prefixed name is not read on https.
    expect(await (await https.app.request('/who', { headers: { cookie: value.replace('__Host-', '') } })).text()).toBe('nobody');

    const http = await cookieOf('http://127.0.0.1:8080/base');
    expect(http.setCookie).toMatch(/^warden_session=v1\./);
    expect(http.setCookie).toContain('; Path=/base/.warden; HttpOnly; SameSite=Lax');
    expect(http.setCookie).not.toContain('Secure');
    await store.close();
  });
});
