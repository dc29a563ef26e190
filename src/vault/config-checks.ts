/** Config rules for vault use in routes (kept free of the vault's runtime imports). */

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
