/** Config rules for vault use in routes (kept free of the vault's runtime imports). */

import type { ConfigIssue } from '../config/issues.js';
import type { Config, CredentialsConfig } from '../config/schema.js';

/**
 * Every problem with vault use in routes, with its config path: a route naming an
 * unknown provider, or vault credentials without `vault.keys`. Checked when the
 * feature is built and by config validation (`warden validate`): one rule, two callers.
 */
export function vaultConfigIssues(config: Config): string[] {
  const issues: string[] = [];
  const check = (credentials: CredentialsConfig | undefined, path: string) => {
    if (credentials?.kind !== 'vault') return;
    if (!Object.hasOwn(config.vault.providers, credentials.provider)) {
      issues.push(`${path}.vault: provider ${JSON.stringify(credentials.provider)} is not in vault.providers`);
    }
    if (config.vault.keys.length === 0) issues.push(`${path}.vault: vault.keys must list at least one key`);
  };
  config.routes.forEach((route, i) => {
    check(route.credentials, `routes[${i}].credentials`);
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {})) check(rule.credentials, `routes[${i}].mcp.tools.${tool}.credentials`);
  });
  return issues;
}

/** Every problem of `vault:` and of vault use in routes, as ConfigIssues (for config validation). */
export function vaultConfigChecks(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  const keyIds = new Set<string>();
  config.vault.keys.forEach((k, i) => {
    if (keyIds.has(k.id)) add(`vault.keys[${i}].id`, `duplicate key id ${k.id}`);
    keyIds.add(k.id);
    if (Buffer.from(k.key, 'base64').length !== 32 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(k.key)) {
      add(`vault.keys[${i}].key`, 'must be 32 random bytes in base64 (`warden keygen` prints one)');
    }
  });
  for (const [name, p] of Object.entries(config.vault.providers)) {
    if (!p.issuer && !(p.authorization_url && p.token_url)) {
      add(`vault.providers.${name}`, 'needs either issuer (OIDC discovery) or authorization_url and token_url');
    }
  }
  for (const issue of vaultConfigIssues(config)) {
    const sep = issue.indexOf(': ');
    add(issue.slice(0, sep), issue.slice(sep + 2));
  }
  return issues;
}
