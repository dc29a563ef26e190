/**
 * Builds the configured authorization engine (`authz.engine`) and puts the
 * decision cache in front of it. Called once per config generation; a reload
 * builds a new authorizer (and a new, empty cache) and closes the old one.
 */

import { isAbsolute, resolve } from 'node:path';
import { WardenError } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Authorizer } from './authorizer.js';
import { withDecisionCache, type CachedAuthorizer } from './cache.js';
import { loadEmbeddedAuthorizer } from './embedded/index.js';
import { withCheckTiming } from './timed.js';

/** Options of `createAuthorizer`. */
export interface CreateAuthorizerOptions {
  /** Directory relative policy paths are resolved against (the gateway.yaml's directory). */
  baseDir: string;
  logger?: Logger;
  metrics?: Metrics;
}

/**
 * The authorizer for `config` (the `authz` section): the embedded engine over
 * `authz.model` / `authz.tuples`, or an OpenFGA server (`authz.openfga`),
 * wrapped in the decision cache (`authz.cache_ttl`, `authz.cache_size`).
 * Throws `config_invalid` for unusable policies or settings, and
 * `authz_unavailable` when OpenFGA cannot be reached at start.
 */
export async function createAuthorizer(config: Config['authz'], options: CreateAuthorizerOptions): Promise<CachedAuthorizer> {
  const path = (p: string) => (isAbsolute(p) ? p : resolve(options.baseDir, p));
  let engine: Authorizer;
  if (config.engine === 'openfga') {
    const o = config.openfga;
    if (!o) throw new WardenError('config_invalid', 'authz.openfga is required when authz.engine is openfga');
    if (!o.store_id) throw new WardenError('config_invalid', 'authz.openfga.store_id is required (run `warden fga push` to create a store)');
    // Loaded only for this engine: the OpenFGA SDK and its HTTP stack cost memory in every process.
    const { createOpenFgaAuthorizer } = await import('./openfga.js');
    engine = await createOpenFgaAuthorizer({
      apiUrl: o.api_url,
      storeId: o.store_id,
      modelId: o.model_id || undefined,
      apiToken: o.api_token || undefined,
      timeoutMs: o.timeout,
      retries: o.retries,
      logger: options.logger,
    });
  } else {
    const embedded = await loadEmbeddedAuthorizer({
      modelPath: path(config.model),
      tuplesPath: config.tuples ? path(config.tuples) : undefined,
      invalidTuples: config.invalid_tuples,
    });
    const ignored = embedded.evaluator.ignoredTuples;
    if (ignored.length) {
      // Like the OpenFGA server, which keeps tuples an older model allowed and ignores them at check time.
      options.logger?.warn(
        { ignored: ignored.length, tuples: ignored.slice(0, 20).map((i) => `${i.tuple.object}#${i.tuple.relation}@${i.tuple.user}: ${i.reason}`) },
        'authz.invalid_tuples: ignore: tuples the model does not allow are loaded and ignored at check time',
      );
    }
    engine = embedded;
  }
  const cached = withDecisionCache(options.metrics ? withCheckTiming(engine, options.metrics) : engine, {
    ttlMs: config.cache_ttl,
    maxEntries: config.cache_size,
    metrics: options.metrics,
  });
  options.logger?.info(
    { engine: engine.engine, model_id: cached.modelId, cache_ttl_ms: config.cache_ttl, cache_size: config.cache_size },
    'authorization engine ready',
  );
  return cached;
}
