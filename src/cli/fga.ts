/**
 * `warden fga push`: write policies/ (model and tuples) to an OpenFGA server,
 * creating the store when none is configured, and print the ids as shell
 * exports. `warden fga pull`: the reverse, into policies/. Both read only the
 * `authz` part of the config, so they run before the store id exists.
 */

import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pushPolicies } from '../authz/push.js';
import { pullPolicies } from '../authz/pull.js';
import { loadAuthzSection, type AuthzSection } from '../config/authz-section.js';
import { ConfigError } from '../config/issues.js';
import { HELP, configPath, fail } from './common.js';

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  'api-url': { type: 'string' },
  'store-name': { type: 'string', default: 'warden' },
  out: { type: 'string' },
} as const;

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'push' && sub !== 'pull') fail(`warden fga: ${sub ? `unknown sub-command ${sub}` : 'a sub-command is required'}\n\n${HELP.fga}`, 2);
  const { values } = parseArgs({ args: rest, options: OPTIONS });
  const file = configPath(values);
  let section: AuthzSection;
  try {
    section = loadAuthzSection(file);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const apiUrl = values['api-url'] ?? section.openfga.api_url ?? process.env.FGA_API_URL ?? process.env.OPENFGA_API_URL;
  if (!apiUrl) fail(`warden fga ${sub}: no OpenFGA URL: pass --api-url, set authz.openfga.api_url, or FGA_API_URL`, 2);
  if (!/^https?:\/\/[^\s]+$/.test(apiUrl)) fail(`warden fga ${sub}: the OpenFGA URL must be http(s) (got ${JSON.stringify(apiUrl)})`, 2);
  const apiToken = section.openfga.api_token ?? (process.env.FGA_API_TOKEN || undefined);

  if (sub === 'push') {
    const auth = section.authz;
    const result = await pushPolicies({
      apiUrl,
      apiToken,
      storeId: section.openfga.store_id,
      modelPath: resolve(section.baseDir, auth.model),
      tuplesPath: auth.tuples ? resolve(section.baseDir, auth.tuples) : undefined,
      storeName: values['store-name'],
    });
    process.stderr.write(
      `store ${result.storeId} (${result.storeCreated ? 'created' : 'existing'}), model ${result.modelId} (${result.modelWritten ? 'written' : 'unchanged'}), ${result.tuplesWritten} tuples written\n`,
    );
    process.stdout.write(`export FGA_STORE_ID=${result.storeId} FGA_MODEL_ID=${result.modelId}\n`);
    return;
  }

  const outDir = resolve(values.out ?? dirname(resolve(section.baseDir, section.authz.model)));
  const result = await pullPolicies({
    apiUrl,
    apiToken,
    storeId: section.openfga.store_id,
    storeName: values['store-name'],
    modelId: section.openfga.model_id,
    outDir,
  });
  process.stdout.write(`wrote ${result.modelFile} (model ${result.modelId}) and ${result.tuplesFile} (${result.tuples} tuples) from store ${result.storeId}\n`);
}
