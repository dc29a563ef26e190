// `warden fga push` (pushPolicies) against a real OpenFGA server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';
import { formatPushResult, pushPolicies } from '../../src/authz/push.js';
import { createOpenFgaAuthorizer } from '../../src/authz/openfga.js';
import { SAMPLE_DSL, SAMPLE_TUPLES, startOpenFga, type OpenFgaServer } from '../support/openfga.js';

async function readAllTuples(apiUrl: string, storeId: string): Promise<Array<{ key: { user: string; relation: string; object: string } }>> {
  const out: Array<{ key: { user: string; relation: string; object: string } }> = [];
  let token = '';
  do {
    const res = await fetch(`${apiUrl}/stores/${storeId}/read`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ page_size: 100, ...(token ? { continuation_token: token } : {}) }),
    });
    const body = (await res.json()) as { tuples: typeof out; continuation_token: string };
    out.push(...body.tuples);
    token = body.continuation_token;
  } while (token);
  return out;
}

async function countModels(apiUrl: string, storeId: string): Promise<number> {
  const res = await fetch(`${apiUrl}/stores/${storeId}/authorization-models?page_size=100`);
  return ((await res.json()) as { authorization_models: unknown[] }).authorization_models.length;
}

describe('pushPolicies (real OpenFGA)', () => {
  let server: OpenFgaServer;
  let dir: string;
  // 230 memberships + the sample: three writes of ≤100 tuples.
  const members = Array.from({ length: 230 }, (_, i) => ({ user: `user:u${i}`, relation: 'member', object: `group:g${i % 7}` }));
  const tuples = [...SAMPLE_TUPLES, ...members];

  beforeAll(async () => {
    server = await startOpenFga();
    dir = await mkdtemp(join(tmpdir(), 'warden-push-'));
    await writeFile(join(dir, 'model.fga'), SAMPLE_DSL);
    await writeFile(join(dir, 'tuples.yaml'), stringify(tuples));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates the store, writes the model and all tuples in chunks; a rerun is idempotent', async () => {
    const storeName = `warden-${randomUUID()}`;
    const opts = { apiUrl: server.apiUrl, modelPath: join(dir, 'model.fga'), tuplesPath: join(dir, 'tuples.yaml'), storeName };
    const first = await pushPolicies(opts);
    expect(first).toMatchObject({ storeCreated: true, modelWritten: true, tuplesWritten: tuples.length });
    expect(first.storeId).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect((await readAllTuples(server.apiUrl, first.storeId)).length).toBe(tuples.length);

    const fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId: first.storeId, modelId: first.modelId });
    expect(await fga.check({ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' })).toBe(true);
    expect(await fga.check({ user: 'user:u229', relation: 'member', object: 'group:g5' })).toBe(true);

    // Rerun by name: same store, same model id (not written again), tuples ignored as duplicates.
    const second = await pushPolicies(opts);
    expect(second).toEqual({ ...first, storeCreated: false, modelWritten: false });
    expect(formatPushResult(second)).toBe(`store_id: ${first.storeId}\nmodel_id: ${first.modelId} (unchanged)\ntuples: ${tuples.length}\n`);
    // Rerun by id.
    const third = await pushPolicies({ ...opts, storeId: first.storeId });
    expect(third).toEqual({ ...first, storeCreated: false, modelWritten: false });
    expect((await readAllTuples(server.apiUrl, first.storeId)).length).toBe(tuples.length);
    expect(await countModels(server.apiUrl, first.storeId)).toBe(1);

    // A changed model gets a new id; new tuples are added to the old ones.
    await writeFile(join(dir, 'model2.fga'), SAMPLE_DSL.replace('define blocked: [user]', 'define blocked: [user, group#member]'));
    await writeFile(join(dir, 'tuples2.yaml'), stringify([...tuples, { user: 'group:g1#member', relation: 'blocked', object: 'document:plan' }]));
    const fourth = await pushPolicies({ ...opts, modelPath: join(dir, 'model2.fga'), tuplesPath: join(dir, 'tuples2.yaml') });
    expect(fourth.storeId).toBe(first.storeId);
    expect(fourth.modelWritten).toBe(true);
    expect(fourth.modelId).not.toBe(first.modelId);
    expect((await readAllTuples(server.apiUrl, first.storeId)).length).toBe(tuples.length + 1);
  });

  it('pushes a modular model (fga.mod)', async () => {
    const mod = join(dir, 'modular');
    await rm(mod, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(mod, { recursive: true }));
    await writeFile(join(mod, 'fga.mod'), 'schema: "1.2"\ncontents:\n  - core.fga\n  - docs.fga\n');
    await writeFile(join(mod, 'core.fga'), 'module core\n\ntype user\n\ntype team\n  relations\n    define member: [user]\n');
    await writeFile(
      join(mod, 'docs.fga'),
      'module docs\n\ntype doc\n  relations\n    define reader: [user, team#member]\n\nextend type team\n  relations\n    define lead: [user]\n',
    );
    await writeFile(
      join(mod, 'tuples.yaml'),
      stringify([
        { user: 'user:ann', relation: 'member', object: 'team:a' },
        { user: 'team:a#member', relation: 'reader', object: 'doc:1' },
      ]),
    );
    const storeName = `warden-${randomUUID()}`;
    const opts = { apiUrl: server.apiUrl, modelPath: join(mod, 'fga.mod'), tuplesPath: join(mod, 'tuples.yaml'), storeName };
    const first = await pushPolicies(opts);
    expect(first).toMatchObject({ storeCreated: true, modelWritten: true, tuplesWritten: 2 });
    const fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId: first.storeId });
    expect(fga.modelId).toBe(first.modelId);
    expect([...(fga.relations().get('team') ?? [])].sort()).toEqual(['lead', 'member']);
    expect(await fga.check({ user: 'user:ann', relation: 'reader', object: 'doc:1' })).toBe(true);
    const again = await pushPolicies(opts);
    expect(again.modelId).toBe(first.modelId);
    expect(again.modelWritten).toBe(false);
  });

  it('refuses unknown store ids, bad models and conflicting duplicate tuples with a clear error', async () => {
    const base = { apiUrl: server.apiUrl, modelPath: join(dir, 'model.fga'), tuplesPath: join(dir, 'tuples.yaml') };
    await expect(pushPolicies({ ...base, storeId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' })).rejects.toMatchObject({ code: 'config_invalid' });
    await writeFile(join(dir, 'bad.fga'), 'model\n  schema 1.1\ntype user\n  relations\n    define x: [nosuchtype]\n');
    await expect(pushPolicies({ ...base, modelPath: join(dir, 'bad.fga') })).rejects.toMatchObject({ code: 'config_invalid' });
    await writeFile(
      join(dir, 'dup.yaml'),
      stringify([
        { user: 'user:dana', relation: 'editor', object: 'document:x', condition: { name: 'in_office', context: { cidr: '10.0.0.0/8' } } },
        { user: 'user:dana', relation: 'editor', object: 'document:x', condition: { name: 'in_office', context: { cidr: '11.0.0.0/8' } } },
      ]),
    );
    const err = await pushPolicies({ ...base, tuplesPath: join(dir, 'dup.yaml'), storeName: `warden-${randomUUID()}` }).catch((e) => e);
    expect(err.code).toBe('config_invalid');
    expect(err.message).toContain('different conditions');
    // A tuple the model does not allow is refused by the server, and the message says where.
    await writeFile(join(dir, 'invalid.yaml'), stringify([{ user: 'user:a', relation: 'nosuch', object: 'document:x' }]));
    const bad = await pushPolicies({ ...base, tuplesPath: join(dir, 'invalid.yaml'), storeName: `warden-${randomUUID()}` }).catch((e) => e);
    expect(bad.code).toBe('authz_unavailable');
    expect(bad.message).toMatch(/^write tuples 1-1: .*nosuch/);
    // A stored tuple whose condition changed in the file: OpenFGA's conflict (409) is passed on by step.
    const storeName = `warden-${randomUUID()}`;
    const secret = { user: 'user:dana', relation: 'editor', object: 'document:x' };
    await writeFile(join(dir, 'c1.yaml'), stringify([{ ...secret, condition: { name: 'in_office', context: { cidr: '10.0.0.0/8' } } }]));
    await writeFile(join(dir, 'c2.yaml'), stringify([{ ...secret, condition: { name: 'in_office', context: { cidr: '11.0.0.0/8' } } }]));
    await pushPolicies({ ...base, tuplesPath: join(dir, 'c1.yaml'), storeName });
    const conflict = await pushPolicies({ ...base, tuplesPath: join(dir, 'c2.yaml'), storeName }).catch((e) => e);
    expect(conflict.message).toMatch(/^write tuples 1-1: .*different condition/);
  });
});
