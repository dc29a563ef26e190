/**
 * The OpenFGA engine: an `Authorizer` backed by a real OpenFGA server through
 * `@openfga/sdk` (the only module that imports it). Every call runs under one
 * deadline that covers its retries, and every failure becomes 503
 * `authz_unavailable`: a slow or broken OpenFGA never turns into an allow.
 *
 * Checks go through the batcher (check-batcher.ts): the checks of one
 * event-loop turn leave as one batch-check request (OpenFGA ≥ 1.8), identical
 * checks in flight are asked once, and the SDK's HTTP runs on keep-alive
 * undici connections (openfga-transport.ts).
 */

import {
  OpenFgaClient,
  ConsistencyPreference,
  CredentialsMethod,
  ClientWriteRequestOnDuplicateWrites,
  type BatchCheckItem,
  type ClientRequestOptsWithConsistency,
  type AuthorizationModel,
  type TupleKey as SdkTupleKey,
} from '@openfga/sdk';
import { WardenError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Authorizer, CheckOptions, CheckRequest, ListObjectsRequest, TupleKey } from './authorizer.js';
import { createCheckBatcher, type BatchItemResult } from './check-batcher.js';
import { createOpenFgaTransport, type OpenFgaTransport } from './openfga-transport.js';

/** The server's own limit on checks per batch-check request (OpenFGA default). */
const MAX_CHECKS_PER_BATCH = 50;
/** Wait before the first retry; the SDK backs off exponentially with jitter from here. */
const RETRY_MIN_WAIT_MS = 25;
/** A failure reason is logged at most once per this window (an outage must not flood the log). */
const LOG_WINDOW_MS = 5_000;

/** Options of `createOpenFgaAuthorizer` (mirrors `authz.openfga` in gateway.yaml). */
export interface OpenFgaAuthorizerOptions {
  apiUrl: string;
  storeId: string;
  /** Authorization model id; absent = the store's latest model, read once at start and pinned. */
  modelId?: string;
  /** Pre-shared key (`--authn-method preshared`); sent as a bearer token, never logged. */
  apiToken?: string;
  /** Deadline for one call including its retries; default 2 s. */
  timeoutMs?: number;
  /** Retries of a failed request (network error, 429, 5xx) within the deadline; default 1. */
  retries?: number;
  logger?: Logger;
}

/** The OpenFGA authorizer, with the store and the pinned model it answers from. */
export interface OpenFgaAuthorizer extends Authorizer {
  readonly engine: 'openfga';
  readonly storeId: string;
  readonly modelId: string;
}

/** An authorization model as OpenFGA's JSON API takes and returns it. */
export interface OpenFgaModelJson {
  schema_version: string;
  type_definitions: unknown[];
  conditions?: Record<string, unknown>;
}

type CallOptions = ClientRequestOptsWithConsistency & { signal?: AbortSignal };

interface CallContext {
  op: string;
  timeoutMs: number;
  logger?: Logger;
  logState: Map<string, { at: number; suppressed: number }>;
}

/** Why a call failed, for the audit log and the error's `reason` (never secret). */
function classify(err: unknown): { reason: string; status?: number; message: string } {
  const e = err as { statusCode?: number; apiErrorMessage?: string; message?: string; name?: string };
  const message = String(e?.apiErrorMessage ?? e?.message ?? err).slice(0, 300);
  if (typeof e?.statusCode === 'number') {
    const status = e.statusCode;
    if (status === 401 || status === 403) return { reason: 'openfga_unauthorized', status, message };
    if (status >= 400 && status < 500 && status !== 429) return { reason: 'openfga_rejected', status, message };
    return { reason: 'openfga_error', status, message };
  }
  return { reason: 'openfga_unreachable', message };
}

function logFailure(ctx: CallContext, reason: string, fields: Record<string, unknown>): void {
  if (!ctx.logger) return;
  const now = Date.now();
  const seen = ctx.logState.get(reason);
  if (seen && now - seen.at < LOG_WINDOW_MS) {
    seen.suppressed++;
    return;
  }
  ctx.logState.set(reason, { at: now, suppressed: 0 });
  ctx.logger.warn({ op: ctx.op, reason, suppressed: seen?.suppressed ?? 0, ...fields }, 'openfga call failed; failing closed');
}

function unavailable(ctx: CallContext, reason: string, cause: unknown, fields: Record<string, unknown> = {}): WardenError {
  logFailure(ctx, reason, fields);
  return new WardenError('authz_unavailable', 'The authorization service is unavailable', { cause, reason });
}

/**
 * Run `fn` with an abort signal and a hard deadline. The SDK's own HTTP timeout
 * is 10 s; racing our timer guarantees the caller gets its answer (a 503) within
 * `timeoutMs` even if the SDK ignored the signal, and the abort frees the socket.
 */
async function withDeadline<T>(ctx: CallContext, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      controller.abort();
      reject(unavailable(ctx, 'openfga_timeout', undefined, { timeout_ms: ctx.timeoutMs }));
    }, ctx.timeoutMs);
    // Through a resolved promise so that a synchronous throw is handled like a rejection.
    Promise.resolve()
      .then(() => fn(controller.signal))
      .then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (controller.signal.aborted) return; // already rejected by the timer
          if (err instanceof WardenError) return reject(err);
          const c = classify(err);
          reject(unavailable(ctx, c.reason, err, { status: c.status, message: c.message }));
        },
      );
  });
}

function toSdkTuple(t: TupleKey): SdkTupleKey {
  const out: SdkTupleKey = { user: t.user, relation: t.relation, object: t.object };
  if (t.condition) out.condition = { name: t.condition.name, context: t.condition.context ?? {} };
  return out;
}

function relationsOf(model: AuthorizationModel | OpenFgaModelJson): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const td of (model.type_definitions ?? []) as Array<{ type: string; relations?: Record<string, unknown> }>) {
    out.set(td.type, new Set(Object.keys(td.relations ?? {})));
  }
  return out;
}

function sdkClient(
  apiUrl: string,
  apiToken: string | undefined,
  retries: number,
  storeId?: string,
  modelId?: string,
  transport?: OpenFgaTransport,
): OpenFgaClient {
  return new OpenFgaClient(
    {
      apiUrl: apiUrl.replace(/\/+$/, ''),
      storeId,
      authorizationModelId: modelId,
      credentials: apiToken ? { method: CredentialsMethod.ApiToken, config: { token: apiToken } } : undefined,
      retryParams: { maxRetry: retries, minWaitInMs: RETRY_MIN_WAIT_MS },
    },
    // The SDK's typings are axios' CommonJS declarations, ours the ESM ones: the same axios 1.19 at run time.
    transport?.axios as unknown as ConstructorParameters<typeof OpenFgaClient>[1],
  );
}

/**
 * Connect to OpenFGA, read (and pin) the authorization model, and return an
 * `Authorizer`. Throws `authz_unavailable` when the server cannot be reached and
 * `config_invalid` when the store has no such model.
 */
export async function createOpenFgaAuthorizer(options: OpenFgaAuthorizerOptions): Promise<OpenFgaAuthorizer> {
  const timeoutMs = options.timeoutMs ?? 2_000;
  const retries = options.retries ?? 1;
  if (!options.storeId) throw new WardenError('config_invalid', 'authz.openfga.store_id is required (run `warden fga push` to create one)');
  const logState = new Map<string, { at: number; suppressed: number }>();
  const ctx = (op: string): CallContext => ({ op, timeoutMs, logger: options.logger, logState });

  let client: OpenFgaClient;
  let transport: OpenFgaTransport;
  try {
    transport = createOpenFgaTransport({ apiUrl: options.apiUrl, timeoutMs: Math.max(timeoutMs, 1_000) });
    client = sdkClient(options.apiUrl, options.apiToken, retries, options.storeId, options.modelId, transport);
  } catch (err) {
    throw new WardenError('config_invalid', `authz.openfga: ${(err as Error).message}`, { cause: err });
  }

  /** Read (and pin) the model; config mistakes are `config_invalid`, an outage `authz_unavailable`. */
  async function loadModel(): Promise<{ modelId: string; relations: Map<string, Set<string>> }> {
    const modelResponse = await withDeadline(ctx('read_model'), (signal) =>
      options.modelId ? client.readAuthorizationModel({ signal } as CallOptions) : client.readLatestAuthorizationModel({ signal } as CallOptions),
    ).catch((err: unknown) => {
      // A store or model the server does not know is a configuration mistake,
      // not an outage: say so at startup instead of answering 503 forever.
      if (err instanceof WardenError && err.reason === 'openfga_rejected') {
        throw new WardenError(
          'config_invalid',
          `authz.openfga: OpenFGA rejected store ${options.storeId}${options.modelId ? ` / model ${options.modelId}` : ''} (${classify(err.cause).message})`,
          { cause: err.cause },
        );
      }
      throw err;
    });
    const model = modelResponse.authorization_model;
    if (!model?.id) {
      throw new WardenError('config_invalid', `OpenFGA store ${options.storeId} has no authorization model (run \`warden fga push\`)`);
    }
    return { modelId: model.id, relations: relationsOf(model) };
  }

  // OpenFGA unreachable at startup: start anyway (as with Redis). Until the
  // model is read, every check answers 503 authz_unavailable and readiness
  // says why; the model is retried with backoff (0.5 s doubling to 30 s).
  let loaded: { modelId: string; relations: Map<string, Set<string>> } | null = null;
  let pendingReason = 'openfga_unreachable';
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  try {
    loaded = await loadModel();
  } catch (err) {
    // Wrong credentials are a configuration mistake: refuse to start, as before.
    if (!(err instanceof WardenError) || err.code !== 'authz_unavailable' || err.reason === 'openfga_unauthorized') throw err;
    pendingReason = err.reason ?? 'openfga_unreachable';
    options.logger?.warn(
      { reason: pendingReason, api_url: options.apiUrl },
      'OpenFGA is unreachable; starting without it and retrying (authorization answers 503 until it answers)',
    );
    const retry = (delayMs: number) => {
      retryTimer = setTimeout(() => {
        loadModel().then(
          (m) => {
            if (closed) return;
            loaded = m;
            options.logger?.info({ model_id: m.modelId }, 'OpenFGA reachable again; authorization model loaded');
          },
          (e: unknown) => {
            if (closed) return;
            if (e instanceof WardenError && e.code === 'config_invalid') {
              pendingReason = 'openfga_config_invalid';
              options.logger?.error({ err: e }, 'OpenFGA answered, but the configured store or model is not usable');
            } else if (e instanceof WardenError) {
              pendingReason = e.reason ?? pendingReason;
            }
            retry(Math.min(delayMs * 2, 30_000));
          },
        );
      }, delayMs);
      retryTimer.unref();
    };
    retry(500);
  }
  const notLoaded = () =>
    new WardenError('authz_unavailable', 'the authorization engine (OpenFGA) has not answered yet', {
      status: 503,
      reason: pendingReason,
      headers: { 'Retry-After': '1' },
    });
  const current = () => {
    if (!loaded) throw notLoaded();
    return loaded;
  };

  // Pin the model id so every answer (and every cache key) refers to one model,
  // even when someone writes a newer model to the store.
  const callOptions = (signal: AbortSignal, opts?: CheckOptions): CallOptions => ({
    signal,
    authorizationModelId: current().modelId,
    consistency: opts?.consistency === 'higher_consistency' ? ConsistencyPreference.HigherConsistency : undefined,
  });

  /**
   * One batch-check request for the batcher: correlation ids are the indexes
   * (the server answers an unordered map); an item the server answered with an
   * error fails that caller only, a failed request every caller (fail closed).
   */
  const sendBatch = async (requests: CheckRequest[], consistency: CheckOptions['consistency']): Promise<BatchItemResult[]> => {
    const { modelId } = current();
    if (requests.length === 1) {
      // Alone in its turn: the check endpoint costs OpenFGA less than a batch of one (measured: ≈ 0.8×).
      const r = requests[0];
      const response = await withDeadline(ctx('check'), (signal) =>
        client.check(
          { user: r.user, relation: r.relation, object: r.object, context: r.context, contextualTuples: r.contextualTuples?.map(toSdkTuple) },
          callOptions(signal, { consistency }),
        ),
      );
      return [{ allowed: response.allowed === true }];
    }
    const c = ctx('batch_check');
    const checks: BatchCheckItem[] = requests.map((r, i) => ({
      tuple_key: { user: r.user, relation: r.relation, object: r.object },
      context: r.context,
      contextual_tuples: r.contextualTuples?.length ? { tuple_keys: r.contextualTuples.map(toSdkTuple) } : undefined,
      correlation_id: String(i),
    }));
    const response = await withDeadline(c, (signal) =>
      client.api.batchCheck(
        options.storeId,
        {
          checks,
          authorization_model_id: modelId,
          consistency: consistency === 'higher_consistency' ? ConsistencyPreference.HigherConsistency : undefined,
        },
        { signal },
      ),
    );
    const results: Array<BatchItemResult | undefined> = new Array(requests.length);
    for (const [id, item] of Object.entries(response.result ?? {})) {
      const index = Number(id);
      if (!Number.isInteger(index) || index < 0 || index >= requests.length) continue;
      if (item.error && (item.error.message || item.error.input_error || item.error.internal_error)) {
        const message = String(item.error.message ?? '').slice(0, 300);
        const code = String(item.error.input_error ?? item.error.internal_error ?? '');
        // The cause keeps OpenFGA's words for logs and tests; clients only see the generic detail.
        const cause = Object.assign(new Error(message || code), { apiErrorCode: code, apiErrorMessage: message });
        results[index] = { error: unavailable(c, item.error.input_error ? 'openfga_check_invalid' : 'openfga_check_error', cause, { code, message }) };
      } else results[index] = { allowed: item.allowed === true };
    }
    for (let i = 0; i < results.length; i++) {
      if (results[i] === undefined) results[i] = { error: unavailable(c, 'openfga_incomplete_batch', undefined, { missing_index: i }) };
    }
    return results as BatchItemResult[];
  };
  const batcher = createCheckBatcher({ send: sendBatch, maxBatch: MAX_CHECKS_PER_BATCH });

  return {
    engine: 'openfga',
    storeId: options.storeId,
    get modelId() {
      return loaded?.modelId ?? '';
    },

    async check(request, opts) {
      current();
      return batcher.check(request, opts);
    },

    /** Every check through the batcher; any failure fails the whole call (fail closed), answers in input order. */
    async batchCheck(requests: CheckRequest[], opts?: CheckOptions): Promise<boolean[]> {
      if (requests.length === 0) return [];
      current();
      const pending = requests.map((r) => batcher.check(r, opts));
      // Wait for all (no unhandled rejection is left behind), then throw the first failure.
      const settled = await Promise.allSettled(pending);
      const failed = settled.find((s) => s.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return settled.map((s) => (s as PromiseFulfilledResult<boolean>).value);
    },

    async listObjects(request: ListObjectsRequest, opts) {
      current();
      const response = await withDeadline(ctx('list_objects'), (signal) =>
        client.listObjects(
          {
            user: request.user,
            relation: request.relation,
            type: request.type,
            context: request.context,
            contextualTuples: request.contextualTuples?.map(toSdkTuple),
          },
          callOptions(signal, opts),
        ),
      );
      return [...(response.objects ?? [])];
    },

    relations() {
      return current().relations;
    },

    async ready() {
      const { modelId } = current();
      await withDeadline(ctx('ready'), (signal) => client.readAuthorizationModel({ signal, authorizationModelId: modelId } as CallOptions));
    },

    async close() {
      closed = true;
      clearTimeout(retryTimer);
      // Checks still in flight finish (or fail) on their own; the pool closes after them.
      await transport.close();
    },
  };
}

// ---------------------------------------------------------------- administration (`warden fga push`)

/** Options of `createOpenFgaAdmin`. */
export interface OpenFgaAdminOptions {
  apiUrl: string;
  apiToken?: string;
  /** Deadline per call; default 10 s (administration is not on the request path). */
  timeoutMs?: number;
  retries?: number;
  logger?: Logger;
}

/** The store and model administration `warden fga push` needs. */
export interface OpenFgaAdmin {
  /** Stores whose name is exactly `name`. */
  findStores(name: string): Promise<Array<{ id: string; name: string }>>;
  /** True when the store exists. */
  storeExists(storeId: string): Promise<boolean>;
  createStore(name: string): Promise<string>;
  /** The store's latest model, or undefined when it has none. */
  readLatestModel(storeId: string): Promise<{ id: string; model: OpenFgaModelJson } | undefined>;
  /** Writes a model and returns its id. */
  writeModel(storeId: string, model: OpenFgaModelJson): Promise<string>;
  /** One write of at most 100 tuples; tuples that already exist are ignored (`on_duplicate: ignore`). */
  writeTuples(storeId: string, modelId: string, tuples: TupleKey[]): Promise<void>;
  /** One model by id (`warden fga pull`). */
  readModel(storeId: string, modelId: string): Promise<{ id: string; model: OpenFgaModelJson } | undefined>;
  /** Every stored tuple, page by page (`warden fga pull`). */
  readTuples(storeId: string): Promise<TupleKey[]>;
}

/** A small administration client over the same SDK (one importer of `@openfga/sdk`). */
export function createOpenFgaAdmin(options: OpenFgaAdminOptions): OpenFgaAdmin {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const client = sdkClient(options.apiUrl, options.apiToken, options.retries ?? 2);
  const logState = new Map<string, { at: number; suppressed: number }>();
  const ctx = (op: string): CallContext => ({ op, timeoutMs, logger: options.logger, logState });

  return {
    async findStores(name) {
      const found: Array<{ id: string; name: string }> = [];
      let continuationToken: string | undefined;
      do {
        const page = await withDeadline(ctx('list_stores'), (signal) =>
          client.listStores({ name, pageSize: 100, continuationToken, signal } as CallOptions & { name: string; pageSize: number; continuationToken?: string }),
        );
        for (const s of page.stores ?? []) if (s.name === name) found.push({ id: s.id, name: s.name });
        continuationToken = page.continuation_token || undefined;
      } while (continuationToken);
      return found;
    },

    async storeExists(storeId) {
      try {
        await withDeadline(ctx('get_store'), (signal) => client.getStore({ storeId, signal } as CallOptions));
        return true;
      } catch (err) {
        const status = ((err as WardenError).cause as { statusCode?: number } | undefined)?.statusCode;
        if (status === 404 || status === 400) return false;
        throw err;
      }
    },

    async createStore(name) {
      const res = await withDeadline(ctx('create_store'), (signal) => client.createStore({ name }, { signal } as CallOptions));
      return res.id;
    },

    async readLatestModel(storeId) {
      const res = await withDeadline(ctx('read_latest_model'), (signal) => client.readLatestAuthorizationModel({ storeId, signal } as CallOptions));
      const m = res.authorization_model;
      if (!m?.id) return undefined;
      return { id: m.id, model: { schema_version: m.schema_version, type_definitions: m.type_definitions, conditions: m.conditions } };
    },

    async writeModel(storeId, model) {
      const res = await withDeadline(ctx('write_model'), (signal) =>
        client.writeAuthorizationModel(
          {
            schema_version: model.schema_version,
            type_definitions: model.type_definitions as AuthorizationModel['type_definitions'],
            conditions: (model.conditions ?? {}) as AuthorizationModel['conditions'],
          },
          { storeId, signal } as CallOptions,
        ),
      );
      return res.authorization_model_id;
    },

    async readModel(storeId, modelId) {
      const res = await withDeadline(ctx('read_model'), (signal) =>
        client.readAuthorizationModel({ storeId, authorizationModelId: modelId, signal } as CallOptions),
      );
      const m = res.authorization_model;
      if (!m?.id) return undefined;
      return { id: m.id, model: { schema_version: m.schema_version, type_definitions: m.type_definitions, conditions: m.conditions } };
    },

    async readTuples(storeId) {
      const out: TupleKey[] = [];
      let continuationToken: string | undefined;
      do {
        const page = await withDeadline(ctx('read_tuples'), (signal) =>
          client.read({}, { storeId, pageSize: 100, continuationToken, signal } as CallOptions & { pageSize: number; continuationToken?: string }),
        );
        for (const t of page.tuples ?? []) {
          const key = t.key;
          const tuple: TupleKey = { user: key.user, relation: key.relation, object: key.object };
          if (key.condition?.name) {
            tuple.condition = {
              name: key.condition.name,
              ...(key.condition.context && Object.keys(key.condition.context).length ? { context: key.condition.context as Record<string, unknown> } : {}),
            };
          }
          out.push(tuple);
        }
        continuationToken = page.continuation_token || undefined;
      } while (continuationToken);
      return out;
    },

    async writeTuples(storeId, modelId, tuples) {
      if (tuples.length === 0) return;
      if (tuples.length > 100) throw new WardenError('internal', 'writeTuples takes at most 100 tuples per call');
      await withDeadline(ctx('write_tuples'), (signal) =>
        client.writeTuples(tuples.map(toSdkTuple), {
          storeId,
          authorizationModelId: modelId,
          signal,
          conflict: { onDuplicateWrites: ClientWriteRequestOnDuplicateWrites.Ignore },
        } as CallOptions & { conflict: { onDuplicateWrites: typeof ClientWriteRequestOnDuplicateWrites.Ignore } }),
      );
    },
  };
}
