/**
 * The console admin role (console.admin): a claim of the signed-in person's
 * session, or a relation checked with the configured engine — here a real
 * OpenFGA server, which is then stopped: an engine that cannot answer makes
 * nobody an admin (fail closed).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenFgaAuthorizer } from '../../src/authz/openfga.js';
import { claimGrantsAdmin, createAdminCheck } from '../../src/console/admin/role.js';
import type { SignedInPerson } from '../../src/http/session.js';
import { parseConfig } from '../../src/gateway/config.js';
import { REPO_ROOT, startWarden } from '../support/gateway.js';
import { captureLogs } from '../support/logs.js';
import { createStoreWithModel, dslToJson, startOpenFga, type OpenFgaServer } from '../support/openfga.js';

const person = (sub: string, claims: Record<string, unknown> = {}): SignedInPerson => ({
  sub,
  issuer: 'https://idp.example/',
  claims,
  via: 'oidc',
  sessionId: 's',
  issuedAt: 0,
  expiresAt: Number.MAX_SAFE_INTEGER,
});

describe('admin role from a claim', () => {
  it('matches a string or a list member exactly, walking dotted paths', () => {
    expect(claimGrantsAdmin({ roles: 'warden-admin' }, 'roles', 'warden-admin')).toBe(true);
    expect(claimGrantsAdmin({ roles: ['viewer', 'warden-admin'] }, 'roles', 'warden-admin')).toBe(true);
    expect(claimGrantsAdmin({ realm_access: { roles: ['warden-admin'] } }, 'realm_access.roles', 'warden-admin')).toBe(true);
    // No substring, case or type games; a missing claim is not admin.
    expect(claimGrantsAdmin({ roles: 'warden-admins' }, 'roles', 'warden-admin')).toBe(false);
    expect(claimGrantsAdmin({ roles: 'Warden-Admin' }, 'roles', 'warden-admin')).toBe(false);
    expect(claimGrantsAdmin({ roles: 'viewer warden-admin' }, 'roles', 'warden-admin')).toBe(false);
    expect(claimGrantsAdmin({ roles: [['warden-admin']] }, 'roles', 'warden-admin')).toBe(false);
    expect(claimGrantsAdmin({ roles: { 'warden-admin': true } }, 'roles', 'warden-admin')).toBe(false);
    expect(claimGrantsAdmin({}, 'roles', 'warden-admin')).toBe(false);
    expect(claimGrantsAdmin({ 'realm_access.roles': ['warden-admin'] }, 'realm_access.roles', 'warden-admin')).toBe(false);
    expect(claimGrantsAdmin({ a: ['warden-admin'] }, 'a.length', 'warden-admin')).toBe(false);
  });

  it('createAdminCheck reads the session claims; without console.admin nobody is an admin', async () => {
    const { logger } = captureLogs('warn');
    const never = createAdminCheck(undefined, null as never, logger);
    expect(await never(person('root', { roles: ['warden-admin'] }))).toBe(false);
    // From gateway.yaml text, through the schema and every config check.
    const { config } = parseConfig(
      'identity: { dev_issuer: true }\nauthz: { engine: embedded, model: test/console/fixtures/model.fga }\nconsole:\n  admin: { claim: roles, value: warden-admin }\n',
      { baseDir: REPO_ROOT },
    );
    const byClaim = createAdminCheck(config.console.admin, null as never, logger);
    expect(await byClaim(person('ops', { roles: ['warden-admin'] }))).toBe(true);
    expect(await byClaim(person('bob', { roles: ['viewer'] }))).toBe(false);
    // Both forms at once, or a templated object, are config errors.
    expect(() => parseConfig('console:\n  admin: { claim: roles, value: x, relation: admin, object: "warden:console" }\n')).toThrow(/console\.admin/);
    expect(() => parseConfig('console:\n  admin: { relation: admin, object: "warden:{user}" }\n')).toThrow(/console\.admin\.object/);
  });
});

describe('admin role names checked against the loaded model', () => {
  it('a relation or type the model lacks stops the start, with its YAML path', async () => {
    const config = (relation: string, object: string) =>
      `server: { listen: 127.0.0.1:0 }\nidentity: { dev_issuer: true }\nauthz: { engine: embedded, model: test/console/fixtures/model.fga }\nconsole:\n  admin: { relation: ${relation}, object: "${object}" }\n`;
    await expect(startWarden({ config: config('owner', 'warden:console') })).rejects.toThrow(/console\.admin\.relation.*type warden has no relation owner/s);
    await expect(startWarden({ config: config('admin', 'platform:console') })).rejects.toThrow(/console\.admin\.object.*type platform is not in the model/s);
    const ok = await startWarden({ config: config('admin', 'warden:console') });
    await ok.close();
  });
});

describe('admin role from an OpenFGA relation (real server)', () => {
  let fga: OpenFgaServer;
  let storeId: string;

  beforeAll(async () => {
    fga = await startOpenFga({ private: true });
    const model = dslToJson('model\n  schema 1.1\ntype user\ntype warden\n  relations\n    define admin: [user]\n');
    ({ storeId } = await createStoreWithModel(fga.apiUrl, model, [{ user: 'user:alice', relation: 'admin', object: 'warden:console' }]));
  }, 60_000);

  afterAll(async () => {
    await fga?.stop();
  });

  it('alice holds admin on warden:console, bob does not; ids that would change a check are refused; an engine outage means not an admin', async () => {
    const { logger, lines } = captureLogs('warn');
    const authorizer = await createOpenFgaAuthorizer({ apiUrl: fga.apiUrl, storeId, timeoutMs: 1_000, retries: 0, logger });
    const isAdmin = createAdminCheck({ relation: 'admin', object: 'warden:console' }, authorizer, logger);
    expect(await isAdmin(person('alice'))).toBe(true);
    expect(await isAdmin(person('bob'))).toBe(false);
    expect(await isAdmin(person('alice#member'))).toBe(false);
    expect(await isAdmin(person('x:alice'))).toBe(false);

    await fga.stop();
    expect(await isAdmin(person('alice'))).toBe(false);
    expect(lines.join('')).toContain('admin check failed');
    await authorizer.close();
  });
});
