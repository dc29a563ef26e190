/**
 * `authz.invalid_tuples`: by default a tuple the model does not allow refuses
 * the policies (config_invalid, with file and line); with `ignore` the
 * embedded engine loads the rest, warns once, and answers as the OpenFGA
 * server does for tuples an older model allowed: as if they were not there.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthorizer } from '../../src/authz/create.js';
import { authzSchema } from '../../src/config/schema.js';
import { captureLogs } from '../support/logs.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-invalid-tuples-'));
  writeFileSync(
    join(dir, 'model.fga'),
    'model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user]\ntype doc\n  relations\n    define viewer: [user]\n',
  );
  writeFileSync(
    join(dir, 'tuples.yaml'),
    [
      '- { user: user:alice, relation: viewer, object: doc:1 }',
      '- { user: group:eng#member, relation: viewer, object: doc:1 }  # allowed by an older model only',
      '- { user: user:bob, relation: owner, object: doc:2 }           # relation no longer exists',
      '',
    ].join('\n'),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// As a gateway.yaml would say it: authz: { model, tuples, invalid_tuples: ignore }.
const config = (invalid?: 'error' | 'ignore') => {
  const authz = { model: 'model.fga', tuples: 'tuples.yaml', cache_ttl: 0 };
  return authzSchema.parse(invalid ? { ...authz, invalid_tuples: invalid } : authz);
};

describe('authz.invalid_tuples', () => {
  it('error (the default): the policies are refused, naming the file and line', async () => {
    await expect(createAuthorizer(config(), { baseDir: dir })).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringContaining('tuples.yaml:2'),
    });
  });

  it('ignore: the valid tuples load, the others are ignored at check time with one warning', async () => {
    const logs = captureLogs('debug');
    const authz = await createAuthorizer(config('ignore'), { baseDir: dir, logger: logs.logger });
    try {
      expect(await authz.check({ user: 'user:alice', relation: 'viewer', object: 'doc:1' })).toBe(true);
      expect(await authz.check({ user: 'user:carol', relation: 'viewer', object: 'doc:1' })).toBe(false);
      const warnings = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ ignored: 2 });
      expect(JSON.stringify(warnings[0])).toContain('doc:1#viewer@group:eng#member');
    } finally {
      await authz.close();
    }
  });
});
