/**
 * The config's own cross-field checks: the `server:` and `store:` sections
 * the schema cannot check alone. Features check their own sections
 * (`<feature>/config-checks.ts`); gateway/config.ts runs them all.
 */

import type { ConfigIssue } from './issues.js';
import type { Config } from './schema.js';

/** Problems between fields of `server:` and `store:` (no I/O). */
export function configIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  if (config.server.workers !== 1 && config.store.driver === 'memory') {
    add('server.workers', 'several workers need a shared store (store.driver: redis): approvals, vault and locks must be seen by every worker');
  }
  if (config.server.metrics_auth && !config.server.admin_token) add('server.metrics_auth', 'needs server.admin_token (the secret /metrics would require)');
  if (config.store.driver === 'redis' && !config.store.url) add('store.url', 'required when store.driver is redis');
  config.server.trusted_proxies.forEach((cidr, i) => {
    if (!isCidr(cidr)) add(`server.trusted_proxies[${i}]`, `not a CIDR or address: ${JSON.stringify(cidr)}`);
  });
  return issues;
}

function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined) return false;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255) && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= 32));
  if (addr.includes(':')) return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= 128);
  return false;
}
