/**
 * `warden validate`: everything `warden start` would refuse, without serving:
 * schema, cross-checks, the FGA model and the names routes use in it.
 */

import { policyNameIssues } from '../authz/config-checks.js';
import { createAuthorizer } from '../authz/create.js';
import { ConfigError, parsePath, type ConfigIssue } from '../config/issues.js';
import type { LoadedConfig } from '../config/load.js';
import { loadConfigFile } from './config.js';
import { createLogger } from '../observability/logger.js';

/** Every problem with the config file (empty when valid). */
export async function validateConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ConfigIssue[]> {
  let loaded: Pick<LoadedConfig, 'config' | 'baseDir' | 'lineOf'>;
  const found: ConfigIssue[] = [];
  try {
    loaded = loadConfigFile(file, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Schema or cross-check problems: the policies are still checked, against
    // what of the config could be read, so one run reports everything.
    if (!err.partial) return err.issues;
    found.push(...err.issues);
    loaded = err.partial;
  }
  const add = (issues: ConfigIssue[]) => {
    for (const i of issues) if (!found.some((f) => f.path === i.path && f.message === i.message)) found.push(i);
    return found;
  };
  const logger = createLogger({ level: 'silent' });
  let authorizer;
  try {
    authorizer = await createAuthorizer(loaded.config.authz, { baseDir: loaded.baseDir, logger });
  } catch (err) {
    if (!(err instanceof ConfigError)) return add([{ path: 'authz', line: loaded.lineOf(['authz']), message: (err as Error).message }]);
    add(err.issues.map((i) => ({ ...i, line: i.line ?? loaded.lineOf(parsePath(i.path)) })));
    // Only tuples refused: the model loads without them, so the names routes use are still checked.
    if (!err.issues.every((i) => i.path === 'authz.tuples')) return found;
    try {
      authorizer = await createAuthorizer({ ...loaded.config.authz, invalid_tuples: 'ignore' }, { baseDir: loaded.baseDir, logger });
    } catch {
      return found;
    }
  }
  try {
    return add(policyNameIssues(loaded.config, authorizer.relations()).map((i) => ({ ...i, line: loaded.lineOf(parsePath(i.path)) })));
  } finally {
    await authorizer.close();
  }
}
