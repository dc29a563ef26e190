/**
 * Users of several issuers (identity.issuers[].user_prefix). Two real OpenID
 * providers both have a user "alice"; without a prefix their tokens act for
 * one and the same user (OpenFGA tuples, the vault's connections, approvals),
 * so partner IdP B's alice reads what company IdP A's alice may read. With
 * `user_prefix: "partner/"` on B, B's alice is `partner/alice` everywhere.
 * `warden validate` warns about two issuers that leave the prefix unset.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';

const AUDIENCE = 'https://warden.test';
const client = {
  client_id: 'billing-bot',
  client_secret: 'billing-bot-secret-0123456789abcdef',
  grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
  redirect_uris: ['http://127.0.0.1/cb'],
};

let company: OidcTestProvider;
let partner: OidcTestProvider;
let upstream: Upstream;

/** A config trusting both providers; `prefixes` are the two issuers' user_prefix lines (or none). */
function config(prefixes: [string?, string?]): string {
  const issuer = (op: OidcTestProvider, prefix?: string) =>
    `    - { issuer: "${op.issuer}", audience: ${AUDIENCE}, algorithms: [RS256]${prefix === undefined ? '' : `, user_prefix: "${prefix}"`} }`;
  return `
identity:
  issuers:
${issuer(company, prefixes[0])}
${issuer(partner, prefixes[1])}
authz:
  model: ${join(REPO_ROOT, 'test/core/fixtures/model.fga')}
  tuples: ${join(REPO_ROOT, 'test/core/fixtures/tuples.yaml')}
routes:
  - name: docs
    match: { path: /docs/:doc }
    upstream: { url: "${upstream.url}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
`;
}

beforeAll(async () => {
  [company, partner, upstream] = await Promise.all([
    startOidcProvider({ audience: AUDIENCE, clients: [client] }),
    startOidcProvider({ audience: AUDIENCE, clients: [client] }),
    startUpstream(),
  ]);
});
afterAll(async () => {
  await Promise.allSettled([upstream?.close(), company?.stop(), partner?.stop()]);
});

const aliceOf = async (op: OidcTestProvider) => (await op.userAccessToken({ accountId: 'alice', clientId: 'billing-bot', scope: 'openid read' })).access_token;
const read = (warden: WardenHandle, token: string) => fetch(`${warden.url}/docs/1`, { headers: { authorization: `Bearer ${token}` } });
const forwarded = () => upstream.requests.filter((r) => r.url === '/docs/1').length;

describe('users of several issuers', () => {
  it('without a prefix, the partner IdP’s alice is the company’s alice (what user_prefix is for)', async () => {
    const warden = await startWarden({ config: config([undefined, undefined]) });
    try {
      expect((await read(warden, await aliceOf(partner))).status).toBe(200);
      expect(warden.logs()).toContain('2 issuers name users in one namespace');
    } finally {
      await warden.close();
    }
  });

  it('with user_prefix on the partner IdP, its alice is partner/alice: refused, nothing forwarded', async () => {
    const warden = await startWarden({ config: config(['', 'partner/']) });
    try {
      upstream.requests.length = 0;
      const theirs = await read(warden, await aliceOf(partner));
      expect(theirs.status).toBe(403);
      expect(((await theirs.json()) as { detail: string }).detail).toContain('user:partner/alice');
      expect(forwarded()).toBe(0);
      expect(warden.audits().at(-1)).toMatchObject({ user: 'partner/alice', decision: 'deny' });

      const ours = await read(warden, await aliceOf(company));
      expect(ours.status).toBe(200);
      expect(forwarded()).toBe(1);
      expect(warden.audits().at(-1)).toMatchObject({ user: 'alice', decision: 'allow' });
      // Every issuer said where its users live: no warning.
      expect(warden.logs()).not.toContain('issuers name users in one namespace');
    } finally {
      await warden.close();
    }
  });

  it('warden validate warns about issuers that leave user_prefix unset, and refuses a prefix that would change an OpenFGA id', async () => {
    requireBuiltCli();
    const dir = mkdtempSync(join(tmpdir(), 'warden-issuers-'));
    try {
      const validate = async (text: string) => {
        writeFileSync(join(dir, 'gateway.yaml'), text);
        return runCli(['validate'], { cwd: dir, env: { ...process.env, NODE_ENV: 'development' } });
      };
      const shared = await validate(config(['', undefined]));
      expect(shared.code).toBe(0);
      expect(shared.stderr).toContain(`warning: identity.issuers: 2 issuers name users in one namespace (user_prefix unset on ${partner.issuer})`);
      const apart = await validate(config(['', 'partner/']));
      expect(apart.code).toBe(0);
      expect(apart.stderr).toBe('');
      const bad = await validate(config(['', 'partner:']));
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('user_prefix');
      expect(bad.stderr).toContain('must not contain #, :, * or whitespace');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
