// createAuthorizer: the configured engine (embedded files or a real OpenFGA
// server) behind the decision cache, from the `authz` config section.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { authzSchema } from '../../src/config/schema.js';
import { createAuthorizer } from '../../src/authz/create.js';
import { SAMPLE_DSL, SAMPLE_TUPLES, createStoreWithModel, sampleModel, startOpenFga, type OpenFgaServer } from '../support/openfga.js';

describe('createAuthorizer', () => {
  let server: OpenFgaServer;
  let dir: string;
  let storeId: string;
  let modelId: string;

  beforeAll(async () => {
    server = await startOpenFga();
    ({ storeId, modelId } = await createStoreWithModel(server.apiUrl, sampleModel(), SAMPLE_TUPLES));
    dir = await mkdtemp(join(tmpdir(), 'warden-create-'));
    await writeFile(join(dir, 'model.fga'), SAMPLE_DSL);
    await writeFile(join(dir, 'tuples.yaml'), stringify(SAMPLE_TUPLES));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const anne = { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' };

  it('builds the embedded engine from relative policy paths, behind the cache', async () => {
    const config = authzSchema.parse({ engine: 'embedded', model: 'model.fga', tuples: 'tuples.yaml', cache_ttl: '5s' });
    const authz = await createAuthorizer(config, { baseDir: dir });
    expect(authz.engine).toBe('embedded');
    expect(await authz.check(anne)).toBe(true);
    expect(await authz.check(anne)).toBe(true);
    expect(authz.stats()).toMatchObject({ enabled: true, hits: 1, misses: 1 });
    expect(authz.relations().get('document')?.has('viewer')).toBe(true);
    await authz.close();
  });

  it('builds the OpenFGA engine from authz.openfga, behind the cache', async () => {
    const config = authzSchema.parse({
      engine: 'openfga',
      openfga: { api_url: server.apiUrl, store_id: storeId, timeout: '3s', retries: 1 },
      cache_ttl: '5s',
    });
    const authz = await createAuthorizer(config, { baseDir: dir });
    expect(authz.engine).toBe('openfga');
    expect(authz.modelId).toBe(modelId);
    expect(await authz.batchCheck([anne, { ...anne, user: 'user:bob' }])).toEqual([true, false]);
    expect(await authz.check(anne)).toBe(true);
    expect(authz.stats()).toMatchObject({ hits: 1, misses: 2 });
    await authz.ready();
  });

  it('cache_ttl 0 disables the cache', async () => {
    const config = authzSchema.parse({ engine: 'openfga', openfga: { api_url: server.apiUrl, store_id: storeId }, cache_ttl: 0 });
    const authz = await createAuthorizer(config, { baseDir: dir });
    await authz.check(anne);
    await authz.check(anne);
    expect(authz.stats()).toMatchObject({ enabled: false, hits: 0, size: 0 });
  });

  it('refuses unusable settings with config_invalid', async () => {
    await expect(createAuthorizer(authzSchema.parse({ engine: 'openfga' }), { baseDir: dir })).rejects.toMatchObject({ code: 'config_invalid' });
    await expect(createAuthorizer(authzSchema.parse({ engine: 'openfga', openfga: { api_url: server.apiUrl } }), { baseDir: dir })).rejects.toMatchObject({
      code: 'config_invalid',
    });
    await expect(createAuthorizer(authzSchema.parse({ engine: 'embedded', model: 'missing.fga' }), { baseDir: dir })).rejects.toMatchObject({
      code: 'config_invalid',
    });
  });
});
