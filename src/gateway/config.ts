/**
 * Loading gateway.yaml with every check: the config's own (config/) and each
 * feature's (`<feature>/config-checks.ts`, limits/compile.ts,
 * store/config-checks.ts). The one aggregator, above the features, so config/
 * imports none of them. Adding a feature's checks is one line in CHECKS.
 */

import { approvalsConfigIssues } from '../approvals/config-checks.js';
import { authzConfigIssues } from '../authz/config-checks.js';
import type { ConfigCheck } from '../config/issues.js';
import { loadConfigFile as loadFile, parseConfig as parseText, type LoadedConfig, type ParseOptions } from '../config/load.js';
import { configIssues } from '../config/validate.js';
import { assertionConfigIssues } from '../identity/assertion/config-checks.js';
import { identityConfigIssues } from '../identity/config-checks.js';
import { loginConfigIssues } from '../identity/login/config-checks.js';
import { limitsConfigIssues } from '../limits/compile.js';
import { routeConfigIssues } from '../pipeline/config-checks.js';
import { storeConfigIssues } from '../store/config-checks.js';
import { vaultConfigChecks } from '../vault/config-checks.js';

/** Every check a config must pass before anything is built from it. */
export const CHECKS: readonly ConfigCheck[] = [
  (config) => configIssues(config),
  (config) => storeConfigIssues(config.store),
  (config, env) => identityConfigIssues(config, env),
  (config, env) => loginConfigIssues(config, env),
  (config, env) => assertionConfigIssues(config, env),
  (config) => authzConfigIssues(config),
  (config) => routeConfigIssues(config),
  (config, env) => approvalsConfigIssues(config, env),
  (config) => vaultConfigChecks(config),
  (config) => limitsConfigIssues(config),
];

/** Read and validate a gateway.yaml file; throws ConfigError with every problem. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  return loadFile(file, env, CHECKS);
}

/** Parse and validate config text; throws ConfigError with every problem. */
export function parseConfig(text: string, options: Omit<ParseOptions, 'checks'> = {}): LoadedConfig {
  return parseText(text, { ...options, checks: CHECKS });
}
