/**
 * `warden fga pull`: an OpenFGA store's model (as DSL) and tuples (as YAML)
 * written where the embedded engine reads them, so production policies can be
 * evaluated locally (development, replaying decisions).
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import syntaxTransformer from '@openfga/syntax-transformer';
import { WardenError } from '../core/errors.js';
import type { TupleKey } from './authorizer.js';
import { createOpenFgaAdmin } from './openfga.js';

const { transformer } = syntaxTransformer;

export interface PullOptions {
  apiUrl: string;
  apiToken?: string;
  /** The store; without it, the single store named `storeName`. */
  storeId?: string;
  storeName?: string;
  /** The model; without it, the store's latest. */
  modelId?: string;
  outDir: string;
  timeoutMs?: number;
}

export interface PullResult {
  storeId: string;
  modelId: string;
  modelFile: string;
  tuplesFile: string;
  tuples: number;
}

/** One tuple as a line of tuples.yaml (JSON strings are valid YAML scalars). */
function tupleLine(t: TupleKey): string {
  const parts = [`user: ${JSON.stringify(t.user)}`, `relation: ${JSON.stringify(t.relation)}`, `object: ${JSON.stringify(t.object)}`];
  if (t.condition) parts.push(`condition: ${JSON.stringify(t.condition)}`);
  return `- { ${parts.join(', ')} }`;
}

export async function pullPolicies(options: PullOptions): Promise<PullResult> {
  const admin = createOpenFgaAdmin({ apiUrl: options.apiUrl, apiToken: options.apiToken, timeoutMs: options.timeoutMs ?? 10_000 });
  let storeId = options.storeId;
  if (!storeId) {
    const name = options.storeName ?? 'warden';
    const found = await admin.findStores(name);
    if (found.length !== 1) {
      throw new WardenError(
        'config_invalid',
        found.length
          ? `several OpenFGA stores are named "${name}"; set authz.openfga.store_id`
          : `OpenFGA has no store named "${name}"; set authz.openfga.store_id`,
      );
    }
    storeId = found[0].id;
  }
  const model = options.modelId ? await admin.readModel(storeId, options.modelId) : await admin.readLatestModel(storeId);
  if (!model)
    throw new WardenError(
      'config_invalid',
      options.modelId ? `OpenFGA store ${storeId} has no model ${options.modelId}` : `OpenFGA store ${storeId} has no model yet`,
    );
  const dsl = transformer.transformJSONToDSL(model.model as Parameters<typeof transformer.transformJSONToDSL>[0]);
  const tuples = await admin.readTuples(storeId);
  tuples.sort((a, b) => a.object.localeCompare(b.object) || a.relation.localeCompare(b.relation) || a.user.localeCompare(b.user));

  mkdirSync(options.outDir, { recursive: true });
  const modelFile = join(options.outDir, 'model.fga');
  const tuplesFile = join(options.outDir, 'tuples.yaml');
  const header = `# Pulled from OpenFGA store ${storeId}, model ${model.id} (warden fga pull).`;
  writeFileSync(modelFile, `${header}\n${dsl.endsWith('\n') ? dsl : dsl + '\n'}`);
  writeFileSync(tuplesFile, `${header}\n${tuples.map(tupleLine).join('\n')}${tuples.length ? '\n' : '[]\n'}`);
  return { storeId, modelId: model.id, modelFile, tuplesFile, tuples: tuples.length };
}
