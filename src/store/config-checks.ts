/**
 * Cross-field checks of the `store:` section (no I/O): TLS and Sentinel keys
 * only mean something for the redis driver, and TLS needs a rediss:// URL.
 */

import type { Config } from '../config/schema.js';

/** Every problem of `store:`, each with its YAML path. */
export function storeConfigIssues(store: Config['store']): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  if (store.driver !== 'redis') {
    for (const key of ['sentinels', 'sentinel_master', 'sentinel_password', 'tls'] as const) {
      if (store[key] !== undefined) add(`store.${key}`, 'only used with store.driver: redis');
    }
    return issues;
  }
  if (!store.url) return issues; // reported by the general check
  let scheme: string;
  try {
    scheme = new URL(store.url).protocol;
  } catch {
    add('store.url', 'not a URL (use redis://host:port/db or rediss://… for TLS)');
    return issues;
  }
  if (scheme !== 'redis:' && scheme !== 'rediss:') add('store.url', `scheme must be redis:// or rediss:// (got ${scheme}//)`);
  if (store.tls && scheme !== 'rediss:') add('store.tls', 'needs a rediss:// url (TLS); with redis:// the connection would be plain text');
  if (store.tls && (store.tls.cert === undefined) !== (store.tls.key === undefined)) {
    add('store.tls', 'cert and key go together (a client certificate needs its private key)');
  }
  for (const key of ['sentinel_master', 'sentinel_password'] as const) {
    if (store[key] !== undefined && !store.sentinels) add(`store.${key}`, 'only used with store.sentinels');
  }
  return issues;
}
