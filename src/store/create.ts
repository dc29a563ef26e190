/**
 * Builds the Store named by `store.driver`. The redis driver is loaded only
 * when configured, so the embedded default never touches ioredis.
 */

import { WardenError } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from './store.js';
import { createMemoryStore } from './memory.js';

/** Create the store described by the `store:` section of gateway.yaml. */
export async function createStore(config: Config['store'], logger: Logger): Promise<Store> {
  if (config.driver === 'memory') return createMemoryStore();
  if (!config.url) {
    throw new WardenError('config_invalid', 'store.url: required when store.driver is redis', { reason: 'store_url_missing' });
  }
  const { createRedisStore } = await import('./redis.js');
  return createRedisStore({ url: config.url, keyPrefix: config.key_prefix, timeoutMs: config.timeout, logger });
}
