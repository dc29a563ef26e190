// The OpenFGA engine against a real OpenFGA server (memory datastore, loopback).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenFgaAuthorizer, type OpenFgaAuthorizer } from '../../src/authz/openfga.js';
import { captureLogs } from '../support/logs.js';
import { stopProcess } from '../support/net.js';
import { WardenError } from '../../src/core/errors.js';
import { SAMPLE_TUPLES, createStoreWithModel, dslToJson, sampleModel, startOpenFga, type OpenFgaServer } from '../support/openfga.js';

async function failure(p: Promise<unknown>): Promise<WardenError> {
  try {
    await p;
  } catch (err) {
    return err as WardenError;
  }
  throw new Error('expected a failure, got an answer');
}

describe('OpenFGA authorizer (real server)', () => {
  let server: OpenFgaServer;
  let storeId: string;
  let modelId: string;
  let fga: OpenFgaAuthorizer;

  beforeAll(async () => {
    server = await startOpenFga();
    ({ storeId, modelId } = await createStoreWithModel(server.apiUrl, sampleModel(), SAMPLE_TUPLES));
    fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId, modelId, timeoutMs: 5_000, retries: 1 });
  });
  afterAll(async () => {
    await fga?.close();
    await server?.stop();
  });

  it('reads the model: relations() lists types and relations; ready() answers', async () => {
    expect(fga.engine).toBe('openfga');
    expect(fga.modelId).toBe(modelId);
    const rel = fga.relations();
    expect([...rel.keys()].sort()).toEqual(['agent', 'document', 'folder', 'group', 'tool', 'user']);
    expect([...(rel.get('document') ?? [])].sort()).toEqual(['blocked', 'editor', 'owner', 'parent', 'viewer']);
    expect(rel.get('user')?.size).toBe(0);
    await expect(fga.ready()).resolves.toBeUndefined();
  });

  it('checks direct, userset, computed, tuple-to-userset with wildcard, and exclusion', async () => {
    expect(await fga.check({ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' })).toBe(true);
    expect(await fga.check({ user: 'user:bob', relation: 'viewer', object: 'document:roadmap' })).toBe(false);
    expect(await fga.check({ user: 'user:bob', relation: 'viewer', object: 'document:budget' })).toBe(true);
    expect(await fga.check({ user: 'user:erin', relation: 'viewer', object: 'document:plan' })).toBe(true);
    expect(await fga.check({ user: 'user:carl', relation: 'viewer', object: 'document:plan' })).toBe(false);
  });

  it('evaluates conditions with request context and tuple context', async () => {
    const secret = { user: 'user:dana', relation: 'editor', object: 'document:secret' };
    expect(await fga.check({ ...secret, context: { ip: '10.1.2.3' } })).toBe(true);
    expect(await fga.check({ ...secret, context: { ip: '192.168.0.1' } })).toBe(false);
    const refund = { user: 'agent:bot', relation: 'can_call', object: 'tool:refund' };
    expect(await fga.check({ ...refund, context: { amount: 50 } })).toBe(true);
    expect(await fga.check({ ...refund, context: { amount: 500 } })).toBe(false);
    // tuple context wins over request context for the same parameter
    expect(await fga.check({ ...refund, context: { amount: 150, limit: 1000 } })).toBe(false);
  });

  it('fails closed (authz_unavailable) when a condition parameter is missing', async () => {
    const err = await failure(fga.check({ user: 'user:dana', relation: 'editor', object: 'document:secret' }));
    expect(err).toBeInstanceOf(WardenError);
    expect(err.code).toBe('authz_unavailable');
    expect(err.status).toBe(503);
    const batchErr = await failure(
      fga.batchCheck([
        { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' },
        { user: 'user:dana', relation: 'editor', object: 'document:secret' },
      ]),
    );
    expect(batchErr.code).toBe('authz_unavailable');
  });

  it('uses contextual tuples (with conditions) for check, batchCheck and listObjects', async () => {
    const frank = { user: 'user:frank', relation: 'viewer', object: 'document:roadmap' };
    const member = { user: 'user:frank', relation: 'member', object: 'group:eng' };
    expect(await fga.check(frank)).toBe(false);
    expect(await fga.check({ ...frank, contextualTuples: [member] })).toBe(true);
    expect(await fga.batchCheck([frank, { ...frank, contextualTuples: [member] }, frank])).toEqual([false, true, false]);
    const conditioned = { ...member, condition: { name: 'in_office', context: { cidr: '10.0.0.0/8' } } };
    // group#member is not declared with a condition, so the contextual tuple is invalid → fail closed
    expect((await failure(fga.check({ ...frank, contextualTuples: [conditioned] }))).code).toBe('authz_unavailable');
    const grant = { user: 'user:frank', relation: 'editor', object: 'document:draft', condition: { name: 'in_office', context: { cidr: '10.0.0.0/8' } } };
    expect(await fga.check({ user: 'user:frank', relation: 'viewer', object: 'document:draft', contextualTuples: [grant], context: { ip: '10.9.9.9' } })).toBe(
      true,
    );
    expect(await fga.check({ user: 'user:frank', relation: 'viewer', object: 'document:draft', contextualTuples: [grant], context: { ip: '11.9.9.9' } })).toBe(
      false,
    );
    expect((await fga.listObjects({ user: 'user:frank', relation: 'viewer', type: 'document', contextualTuples: [member] })).sort()).toEqual([
      'document:plan',
      'document:roadmap',
    ]);
  });

  it('lists objects with context', async () => {
    expect((await fga.listObjects({ user: 'user:anne', relation: 'viewer', type: 'document', context: { ip: '1.1.1.1' } })).sort()).toEqual([
      'document:plan',
      'document:roadmap',
    ]);
    expect((await fga.listObjects({ user: 'user:dana', relation: 'viewer', type: 'document', context: { ip: '10.0.0.7' } })).sort()).toEqual([
      'document:plan',
      'document:secret',
    ]);
    expect((await fga.listObjects({ user: 'user:dana', relation: 'viewer', type: 'document', context: { ip: '8.8.8.8' } })).sort()).toEqual(['document:plan']);
    expect(await fga.listObjects({ user: 'user:carl', relation: 'viewer', type: 'document', context: { ip: '8.8.8.8' } })).toEqual([]);
  });

  it('keeps input order for 60 checks (over the 50-per-batch server limit)', async () => {
    const cases = [
      { r: { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' }, want: true },
      { r: { user: 'user:bob', relation: 'viewer', object: 'document:roadmap' }, want: false },
      { r: { user: 'user:bob', relation: 'owner', object: 'document:budget' }, want: true },
      { r: { user: 'user:carl', relation: 'viewer', object: 'document:plan' }, want: false },
      { r: { user: 'user:zed', relation: 'viewer', object: 'document:plan' }, want: true },
      { r: { user: 'agent:bot', relation: 'can_call', object: 'tool:refund', context: { amount: 101 } }, want: false },
      { r: { user: 'agent:bot', relation: 'can_call', object: 'tool:refund', context: { amount: 99 } }, want: true },
    ];
    // A pseudo-random but fixed pattern so that answers are not periodic in the batch boundaries.
    const picks = Array.from({ length: 60 }, (_, i) => (i * 37 + (i >> 2)) % cases.length);
    const answers = await fga.batchCheck(picks.map((p) => cases[p].r));
    expect(answers).toEqual(picks.map((p) => cases[p].want));
    expect(await fga.batchCheck([])).toEqual([]);
  });

  it('accepts higher_consistency on every call', async () => {
    const r = { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' };
    expect(await fga.check(r, { consistency: 'higher_consistency' })).toBe(true);
    expect(await fga.batchCheck([r], { consistency: 'higher_consistency' })).toEqual([true]);
    expect(await fga.listObjects({ user: 'user:anne', relation: 'viewer', type: 'document', context: {} }, { consistency: 'higher_consistency' })).toContain(
      'document:roadmap',
    );
  });

  it('uses (and pins) the latest model when model_id is absent', async () => {
    const latest = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId });
    expect(latest.modelId).toBe(modelId);
    expect(await latest.check({ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' })).toBe(true);
  });

  it('refuses to start on an unknown store or model (config_invalid) and without store_id', async () => {
    await expect(createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' })).rejects.toMatchObject({
      code: 'config_invalid',
    });
    await expect(createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId, modelId: '01ARZ3NDEKTSV4RRFFQ69G5FAV' })).rejects.toMatchObject({
      code: 'config_invalid',
    });
    await expect(createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId: '' })).rejects.toMatchObject({ code: 'config_invalid' });
    const empty = await createStoreWithModel(server.apiUrl, dslToJson('model\n  schema 1.1\ntype user\n'));
    const emptyStore = await fetch(`${server.apiUrl}/stores`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'no-model' }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    expect(empty.storeId).toBeTruthy();
    await expect(createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId: emptyStore.id })).rejects.toMatchObject({ code: 'config_invalid' });
  });

  it('fails closed on a check the model does not allow (unknown relation)', async () => {
    expect((await failure(fga.check({ user: 'user:anne', relation: 'nope', object: 'document:roadmap' }))).code).toBe('authz_unavailable');
  });
});

describe('OpenFGA authorizer faults (private server)', () => {
  it('answers authz_unavailable quickly when OpenFGA is killed', async () => {
    const server = await startOpenFga({ private: true });
    try {
      const { storeId, modelId } = await createStoreWithModel(server.apiUrl, sampleModel(), SAMPLE_TUPLES);
      const logs = captureLogs();
      const fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId, modelId, timeoutMs: 2_000, retries: 1, logger: logs.logger });
      const r = { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' };
      expect(await fga.check(r)).toBe(true);
      process.kill(server.pid as number, 'SIGKILL');
      await new Promise((res) => setTimeout(res, 100));
      const started = performance.now();
      const err = await failure(fga.check(r));
      const elapsed = performance.now() - started;
      expect(err.code).toBe('authz_unavailable');
      // Connection refused is answered by the retry path, not by waiting for the deadline.
      expect(err.reason).toBe('openfga_unreachable');
      console.log(`[measure] killed OpenFGA → authz_unavailable in ${elapsed.toFixed(0)} ms (deadline 2000 ms, 1 retry)`);
      expect((await failure(fga.batchCheck([r, r]))).code).toBe('authz_unavailable');
      expect((await failure(fga.listObjects({ user: 'user:anne', relation: 'viewer', type: 'document' }))).code).toBe('authz_unavailable');
      await expect(fga.ready()).rejects.toMatchObject({ code: 'authz_unavailable' });
      expect(logs.text()).toContain('openfga call failed');
    } finally {
      await server.stop();
    }
  });

  it('answers authz_unavailable within its deadline (not the SDK 10 s) when OpenFGA hangs (SIGSTOP)', async () => {
    const server = await startOpenFga({ private: true });
    const pid = server.pid as number;
    try {
      const { storeId, modelId } = await createStoreWithModel(server.apiUrl, sampleModel(), SAMPLE_TUPLES);
      const fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId, modelId, timeoutMs: 400, retries: 2 });
      const r = { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' };
      expect(await fga.check(r)).toBe(true);
      await stopProcess(pid);
      const started = performance.now();
      const results = await Promise.all([
        failure(fga.check(r)),
        failure(fga.batchCheck(Array.from({ length: 60 }, () => r))),
        failure(fga.listObjects({ user: 'user:anne', relation: 'viewer', type: 'document' })),
        failure(fga.ready()),
      ]);
      const elapsed = performance.now() - started;
      for (const err of results) {
        expect(err.code).toBe('authz_unavailable');
        expect(err.reason).toBe('openfga_timeout');
      }
      // 'openfga_timeout' comes only from our own deadline timer (the SDK's 10 s
      // axios timeout would classify as 'openfga_unreachable', and only after 10 s).
      console.log(`[measure] stopped OpenFGA → authz_unavailable in ${elapsed.toFixed(0)} ms (deadline 400 ms)`);
      process.kill(pid, 'SIGCONT');
      // It recovers once the server runs again.
      expect(await fga.check(r)).toBe(true);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await server.stop();
    }
  });

  it('starts when OpenFGA cannot be reached, and answers every check authz_unavailable until it can (#12 A.12)', async () => {
    const fga = await createOpenFgaAuthorizer({ apiUrl: 'http://127.0.0.1:1', storeId: '01ARZ3NDEKTSV4RRFFQ69G5FAV', timeoutMs: 1_000 });
    try {
      for (const p of [
        fga.check({ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' }),
        fga.batchCheck([{ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' }]),
        fga.ready(),
      ]) {
        const err = await failure(p);
        expect(err.code).toBe('authz_unavailable');
        expect(err.reason).toBe('openfga_unreachable');
      }
      expect(() => fga.relations()).toThrow(/has not answered/);
    } finally {
      await fga.close();
    }
  });

  it('sends the API token (preshared key) and never logs it', async () => {
    const token = 'wardentestpresharedkey0123456789';
    const server = await startOpenFga({ private: true, args: ['--authn-method', 'preshared', '--authn-preshared-keys', token] });
    try {
      const res = await fetch(`${server.apiUrl}/stores`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ name: 'authn' }),
      });
      const { id: storeId } = (await res.json()) as { id: string };
      const model = sampleModel();
      const m = await fetch(`${server.apiUrl}/stores/${storeId}/authorization-models`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ schema_version: '1.1', type_definitions: model.type_definitions, conditions: model.conditions }),
      });
      expect(m.status).toBe(201);
      const fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId, apiToken: token });
      expect(await fga.check({ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' })).toBe(false);

      const logs = captureLogs();
      const wrongToken = 'wrongwrongwrongwrongwrong0123456';
      const err = await failure(createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId, apiToken: wrongToken, logger: logs.logger }));
      expect(err.code).toBe('authz_unavailable');
      expect(err.reason).toBe('openfga_unauthorized');
      expect(logs.text()).toContain('openfga_unauthorized');
      expect(logs.text()).not.toContain(wrongToken);
      expect(logs.text()).not.toContain(token);
    } finally {
      await server.stop();
    }
  });
});
