/**
 * `warden validate`: everything `warden start` would refuse, without serving:
 * schema, cross-checks, the FGA model and the names routes use in it.
 */

import { policyNameIssues } from '../authz/config-checks.js';
import { createAuthorizer } from '../authz/create.js';
import { ConfigError, parsePath, type ConfigIssue } from '../config/issues.js';
import { loadConfigFile } from './config.js';
import { createLogger } from '../observability/logger.js';

/** Every problem with the config file (empty when valid). */
export async function validateConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigIssue[]> {
  let loaded;
  try {
    loaded = loadConfigFile(file, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  const logger = createLogger({ level: 'silent' });
  let authorizer;
  try {
    authorizer = await createAuthorizer(loaded.config.authz, { baseDir: loaded.baseDir, logger });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    return [{ path: 'authz', line: loaded.lineOf(['authz']), message: (err as Error).message }];
  }
  try {
    return policyNameIssues(loaded.config, authorizer.relations()).map((i) => ({ ...i, line: loaded.lineOf(parsePath(i.path)) }));
  } finally {
    await authorizer.close();
  }
}
