/** `warden fga push`: write policies/ (model and tuples) to the configured OpenFGA server. */

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pushPolicies } from '../authz/push.js';
import { configPath, fail, loadOrExit } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'push') fail('usage: warden fga push [-c gateway.yaml] [--store-name NAME]', 2);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, 'store-name': { type: 'string', default: 'warden' } } });
  const loaded = loadOrExit(configPath(values));
  const auth = loaded.config.authz;
  const fga = auth.openfga;
  const apiUrl = fga?.api_url ?? process.env.FGA_API_URL ?? process.env.OPENFGA_API_URL;
  if (!apiUrl) fail('warden fga push: set authz.openfga.api_url (or FGA_API_URL)');
  const result = await pushPolicies({
    apiUrl,
    apiToken: fga?.api_token,
    storeId: fga?.store_id,
    modelPath: resolve(loaded.baseDir, auth.model),
    tuplesPath: auth.tuples ? resolve(loaded.baseDir, auth.tuples) : undefined,
    storeName: values['store-name'],
  });
  process.stdout.write(`store_id: ${result.storeId}\nmodel_id: ${result.modelId}\ntuples written: ${result.tuplesWritten}\n`);
  process.stdout.write(`\nSet in gateway.yaml (or the environment):\n  FGA_STORE_ID=${result.storeId}\n  FGA_MODEL_ID=${result.modelId}\n`);
}
