/**
 * The demo policies' model tests (`policies/model.fga.yaml`, `fga model test`
 * format) on the embedded engine. The OpenFGA-server suite runs the same file
 * through `runModelTests` with a server-backed factory.
 */

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createEmbeddedAuthorizer } from '../../src/authz/embedded/index.js';
import { failedModelTests, loadStoreFile, runModelTests } from '../support/fga-model-tests.js';

const STORE_FILE = fileURLToPath(new URL('../../policies/model.fga.yaml', import.meta.url));

describe('policies/model.fga.yaml on the embedded engine', () => {
  it('passes every check and list-objects assertion', async () => {
    const store = await loadStoreFile(STORE_FILE);
    const results = await runModelTests(store, async (model, tuples) => createEmbeddedAuthorizer({ model, tuples }));
    console.log(`[model-tests] ${results.length} assertions, ${results.filter((r) => r.passed).length} passed`);
    expect(results.length).toBeGreaterThan(50);
    expect(failedModelTests(results)).toEqual([]);
  });

  it('detects a wrong expectation (the runner can fail)', async () => {
    const store = await loadStoreFile(STORE_FILE);
    const flipped = {
      ...store,
      tests: [{ name: 'flipped', tuples: [], listObjects: [], check: [{ user: 'user:bob', object: 'doc:1', assertions: { can_read: true } }] }],
    };
    const results = await runModelTests(flipped, async (model, tuples) => createEmbeddedAuthorizer({ model, tuples }));
    expect(failedModelTests(results)).toEqual(['flipped: check user:bob can_read doc:1: expected true, got false']);
  });
});
