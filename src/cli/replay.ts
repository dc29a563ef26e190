/** `warden replay -c NEW.yaml [--allow FILTER]… [--json] LOG…`: what a config change would flip in recorded traffic. */

import { existsSync } from 'node:fs';
import { parseAllowFilter, formatReplay, replayLogs, type AllowFilter, type ReplayReport } from '../audit/replay.js';
import { ConfigError } from '../config/issues.js';
import { WardenError } from '../core/errors.js';
import { createEvaluator, type AuthzOverride, type Evaluator } from '../gateway/evaluator.js';
import { loadConfigFile } from '../gateway/config.js';
import { HELP, configPath, fail, commandArgs, printable } from './common.js';

/** `value` with every string in it, keys included, made printable: examples carry what agents sent (tool names, paths). */
function printableDeep<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T;
  if (Array.isArray(value)) return value.map(printableDeep) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [printable(k), printableDeep(v)])) as T;
  return value;
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = commandArgs(argv, {
    allow: { type: 'string', multiple: true },
    examples: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    'fga-api-url': { type: 'string' },
    'fga-store-id': { type: 'string' },
    'fga-model-id': { type: 'string' },
  });
  if (!positionals.length) fail(`warden replay: name the decision-log files\n\n${HELP.replay}`, 2);
  for (const f of positionals) if (!existsSync(f)) fail(`warden replay: ${f}: no such file`, 2);
  const examples = Number(values.examples);
  if (!Number.isInteger(examples) || examples < 0) fail('warden replay: --examples must be a whole number', 2);
  let allow: AllowFilter[];
  try {
    allow = (values.allow ?? []).map(parseAllowFilter);
  } catch (err) {
    fail(`warden replay: ${(err as Error).message}`, 2);
  }
  const env = process.env;
  let authz: AuthzOverride = { engine: 'config' };
  if (values['fga-api-url'] || values['fga-store-id'] || values['fga-model-id']) {
    const apiUrl = values['fga-api-url'] ?? env.FGA_API_URL;
    const storeId = values['fga-store-id'] ?? env.FGA_STORE_ID;
    if (!apiUrl || !storeId) fail('warden replay: an OpenFGA store needs --fga-api-url and --fga-store-id (or FGA_API_URL, FGA_STORE_ID)', 2);
    authz = { engine: 'openfga', apiUrl, storeId, modelId: values['fga-model-id'] ?? env.FGA_MODEL_ID, apiToken: env.FGA_API_TOKEN };
  }
  const configFile = configPath(values);
  let evaluator: Evaluator;
  try {
    evaluator = await createEvaluator({ loaded: loadConfigFile(configFile), authz, env });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    if (err instanceof WardenError) fail(`warden replay: ${err.code}: ${err.message}`, 2);
    throw err;
  }
  const started = Date.now();
  const progress = (n: number) => {
    const s = (Date.now() - started) / 1000;
    process.stderr.write(`replay: ${n} records (${Math.round(n / Math.max(s, 0.001))}/s)\n`);
  };
  let report;
  try {
    report = await replayLogs(positionals, evaluator, { allow, examples, progress, progressEvery: 20_000 });
  } finally {
    await evaluator.close();
  }
  process.stderr.write(`replay: ${report.records} records in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  process.stdout.write(
    values.json ? JSON.stringify({ config: configFile, ...report }, null, 2) + '\n' : formatReplay(printableDeep<ReplayReport>(report), configFile),
  );
  process.exitCode = report.ok ? 0 : 1;
}
