/**
 * Builds the Store named by `store.driver`. The redis driver is loaded only
 * when configured, so the embedded default never touches ioredis.
 */

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { WardenError } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from './store.js';
import { createMemoryStore } from './memory.js';

/** Create the store described by the `store:` section of gateway.yaml; relative TLS file paths resolve against `baseDir`. */
export async function createStore(
  config: Omit<Config['store'], 'limit_blocks'> & { limit_blocks?: number },
  logger: Logger,
  baseDir = process.cwd(),
): Promise<Store> {
  if (config.driver === 'memory') return createMemoryStore();
  if (!config.url) {
    throw new WardenError('config_invalid', 'store.url: required when store.driver is redis', { reason: 'store_url_missing' });
  }
  const { createRedisStore } = await import('./redis.js');
  return createRedisStore({
    url: config.url,
    keyPrefix: config.key_prefix,
    timeoutMs: config.timeout,
    limitBlocks: config.limit_blocks,
    logger,
    sentinels: config.sentinels?.map(splitHostPort),
    sentinelMaster: config.sentinel_master,
    sentinelPassword: config.sentinel_password,
    tls: config.tls && {
      ca: config.tls.ca === undefined ? undefined : readPem(resolve(baseDir, config.tls.ca), 'store.tls.ca'),
      cert: config.tls.cert === undefined ? undefined : readPem(resolve(baseDir, config.tls.cert), 'store.tls.cert'),
      key: config.tls.key === undefined ? undefined : readPem(resolve(baseDir, config.tls.key), 'store.tls.key'),
      servername: config.tls.servername,
    },
  });
}

function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(address.slice(at + 1)) };
}

/** Read a PEM file named in the config; a missing or unreadable file stops startup with its path. */
function readPem(file: string, path: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new WardenError('config_invalid', `${path}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
      reason: 'store_tls_file',
    });
  }
}
