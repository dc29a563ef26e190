// The demo policies' model tests (policies/model.fga.yaml, `fga model test`
// format) against a real OpenFGA server, and a push of policies/ itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { createOpenFgaAuthorizer } from '../../src/authz/openfga.js';
import { pushPolicies } from '../../src/authz/push.js';
import { failedModelTests, loadStoreFile, runModelTests } from '../support/fga-model-tests.js';
import { createStoreWithModel, deleteStore, startOpenFga, type OpenFgaServer } from '../support/openfga.js';

const POLICIES = fileURLToPath(new URL('../../policies/', import.meta.url));

describe('policies/ on a real OpenFGA server', () => {
  let server: OpenFgaServer;
  beforeAll(async () => {
    server = await startOpenFga();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('passes every assertion of policies/model.fga.yaml', async () => {
    const store = await loadStoreFile(`${POLICIES}model.fga.yaml`);
    const stores: string[] = [];
    const results = await runModelTests(store, async (model, tuples) => {
      const ids = await createStoreWithModel(server.apiUrl, model as unknown as Record<string, unknown>, tuples, 'model-test');
      stores.push(ids.storeId);
      return createOpenFgaAuthorizer({ apiUrl: server.apiUrl, ...ids, timeoutMs: 10_000 });
    });
    for (const id of stores) await deleteStore(server.apiUrl, id);
    const checks = results.filter((r) => r.kind === 'check').length;
    console.log(
      `[model-tests/openfga] ${results.length} assertions (${checks} check, ${results.length - checks} list_objects), ${results.filter((r) => r.passed).length} passed`,
    );
    expect(results.length).toBeGreaterThan(0);
    expect(failedModelTests(results)).toEqual([]);
  });

  it('`warden fga push` writes policies/ (model and tuples) and a rerun changes nothing', async () => {
    const opts = { apiUrl: server.apiUrl, modelPath: `${POLICIES}model.fga`, tuplesPath: `${POLICIES}tuples.yaml`, storeName: `warden-${randomUUID()}` };
    const first = await pushPolicies(opts);
    expect(first.storeCreated).toBe(true);
    expect(first.tuplesWritten).toBeGreaterThan(0);
    const again = await pushPolicies(opts);
    expect(again).toEqual({ ...first, storeCreated: false, modelWritten: false });
    const fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId: first.storeId });
    expect(fga.modelId).toBe(first.modelId);
    expect(fga.relations().size).toBeGreaterThan(1);
  });
});
