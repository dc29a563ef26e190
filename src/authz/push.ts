/**
 * `warden fga push`: writes `policies/` (a DSL or modular `fga.mod` model and
 * `tuples.yaml`) to an OpenFGA server. Reruns are idempotent: the store is
 * found again by name, an unchanged model is not written twice, and tuples that
 * already exist are ignored by the server (`on_duplicate: ignore`).
 */

import { WardenError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { TupleKey } from './authorizer.js';
import { loadModel, loadTuples } from './model.js';
import { createOpenFgaAdmin, type OpenFgaModelJson } from './openfga.js';
import { canonicalJson } from '../core/canonical-json.js';

/** OpenFGA's limit on tuples per write request. */
const MAX_TUPLES_PER_WRITE = 100;

/** Options of `pushPolicies`. */
export interface PushOptions {
  apiUrl: string;
  apiToken?: string;
  /** Existing store; absent = the store named `storeName`, created when there is none. */
  storeId?: string;
  /** `model.fga` (DSL), `fga.mod` (modular) or `*.json`. */
  modelPath: string;
  /** `tuples.yaml`; absent = write the model only. */
  tuplesPath?: string;
  /** Name used to find or create the store; default `warden`. */
  storeName?: string;
  /** Deadline per OpenFGA call; default 10 s. */
  timeoutMs?: number;
  logger?: Logger;
}

/** What `pushPolicies` did. */
export interface PushResult {
  storeId: string;
  modelId: string;
  /** Tuples sent to the server (existing ones are ignored by it, not counted separately). */
  tuplesWritten: number;
  storeCreated: boolean;
  /** False when the store's latest model already was this model (its id is reused). */
  modelWritten: boolean;
}

/** Drops members that carry no meaning (null, "", [], {}) so the server's echo compares equal to our input. */
function meaningful(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(meaningful).filter((v) => v !== undefined);
    return items.length ? items : undefined;
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const m = meaningful(v);
      if (m !== undefined) out[k] = m;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return value === null || value === '' ? undefined : value;
}

/** True when two models define the same types, relations, restrictions and conditions. */
export function sameModel(a: OpenFgaModelJson, b: OpenFgaModelJson): boolean {
  const shape = (m: OpenFgaModelJson) =>
    canonicalJson(meaningful({ schema_version: m.schema_version, type_definitions: m.type_definitions, conditions: m.conditions }));
  return shape(a) === shape(b);
}

function tupleId(t: TupleKey): string {
  return JSON.stringify([t.user, t.relation, t.object]);
}

/** Identical tuples once; the same tuple with two different conditions is an error. */
function dedupe(tuples: TupleKey[], file: string): TupleKey[] {
  const seen = new Map<string, TupleKey>();
  for (const t of tuples) {
    const id = tupleId(t);
    const prev = seen.get(id);
    if (!prev) seen.set(id, t);
    else if (canonicalJson(prev.condition ?? null) !== canonicalJson(t.condition ?? null)) {
      throw new WardenError('config_invalid', `${file}: tuple ${t.user} ${t.relation} ${t.object} appears twice with different conditions`);
    }
  }
  return [...seen.values()];
}

/** Runs one step; a failure says which step and what OpenFGA answered (no secrets: ids and messages only). */
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const cause = (err as { cause?: { apiErrorMessage?: string; message?: string } }).cause;
    const detail = cause?.apiErrorMessage ?? cause?.message ?? (err as Error).message;
    const code = err instanceof WardenError ? err.code : 'authz_unavailable';
    throw new WardenError(code, `${name}: ${detail}`, { cause: err, reason: err instanceof WardenError ? err.reason : undefined });
  }
}

/**
 * Write the model and tuples to OpenFGA and return the store and model ids to
 * put in `authz.openfga`. Tuples go in writes of at most 100.
 */
export async function pushPolicies(options: PushOptions): Promise<PushResult> {
  const model = await loadModel(options.modelPath).catch((err: unknown) => {
    throw new WardenError('config_invalid', (err as Error).message, { cause: err });
  });
  const tuples = options.tuplesPath
    ? dedupe(
        await loadTuples(options.tuplesPath).catch((err: unknown) => {
          throw new WardenError('config_invalid', (err as Error).message, { cause: err });
        }),
        options.tuplesPath,
      )
    : [];
  const admin = createOpenFgaAdmin({ apiUrl: options.apiUrl, apiToken: options.apiToken, timeoutMs: options.timeoutMs ?? 10_000, logger: options.logger });
  const storeName = options.storeName ?? 'warden';

  let storeId = options.storeId;
  let storeCreated = false;
  if (storeId) {
    const id = storeId;
    if (!(await step('read store', () => admin.storeExists(id)))) {
      throw new WardenError('config_invalid', `OpenFGA has no store ${id} (authz.openfga.store_id); remove it to let push create one`);
    }
  } else {
    const found = await step('list stores', () => admin.findStores(storeName));
    if (found.length > 1) {
      throw new WardenError(
        'config_invalid',
        `several OpenFGA stores are named "${storeName}" (${found.map((s) => s.id).join(', ')}); set authz.openfga.store_id`,
      );
    }
    if (found.length === 1) storeId = found[0].id;
    else {
      storeId = await step('create store', () => admin.createStore(storeName));
      storeCreated = true;
    }
  }
  const store = storeId;

  const modelJson = model as unknown as OpenFgaModelJson;
  const latest = await step('read latest model', () => admin.readLatestModel(store));
  let modelId: string;
  let modelWritten = false;
  if (latest && sameModel(latest.model, modelJson)) modelId = latest.id;
  else {
    modelId = await step('write model', () => admin.writeModel(store, modelJson));
    modelWritten = true;
  }

  for (let i = 0; i < tuples.length; i += MAX_TUPLES_PER_WRITE) {
    const chunk = tuples.slice(i, i + MAX_TUPLES_PER_WRITE);
    await step(`write tuples ${i + 1}-${i + chunk.length}`, () => admin.writeTuples(store, modelId, chunk));
  }
  options.logger?.info(
    { store_id: store, model_id: modelId, tuples: tuples.length, store_created: storeCreated, model_written: modelWritten },
    'policies pushed to OpenFGA',
  );
  return { storeId: store, modelId, tuplesWritten: tuples.length, storeCreated, modelWritten };
}

/** The lines `warden fga push` prints: the ids to put in `authz.openfga`, then what changed. */
export function formatPushResult(result: PushResult): string {
  return [
    `store_id: ${result.storeId}${result.storeCreated ? ' (created)' : ''}`,
    `model_id: ${result.modelId}${result.modelWritten ? ' (written)' : ' (unchanged)'}`,
    `tuples: ${result.tuplesWritten}`,
    '',
  ].join('\n');
}
