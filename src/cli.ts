#!/usr/bin/env node
/**
 * The `warden` command: start, validate, token, explain, fga push, keygen,
 * vault rekey, mcp accept. Entry point only: each command loads config, calls
 * into the library, prints, and sets the exit code.
 */

import { parseArgs } from 'node:util';
import { loadConfigFile, ConfigError, formatIssue } from './config/load.js';
import { parseDuration } from './config/duration.js';

const USAGE = `Usage: warden <command> [options]

Commands:
  start    [-c gateway.yaml]                      serve (SIGHUP reloads, SIGTERM drains and exits)
  validate [-c gateway.yaml]                      check config and policies; exit 1 listing every problem
  token    --agent ID [--user ID] [--scope "a b"] [--ttl 1h] [--claim k=v] [-c …]
                                                  print a dev-issuer access token
  explain  --token JWT [-X METHOD] PATH [--data BODY] [-H "K: V"] [-c …]
                                                  run the pipeline without forwarding; print the decision trace
  fga push [-c …]                                 write policies/ to the configured OpenFGA server
  keygen                                          print a fresh vault key (base64, 32 bytes)
  vault rekey [-c …]                              re-encrypt vault records with the first key (resumable)
  mcp accept --route NAME --tool NAME [-c …]      accept a changed MCP tool definition

Environment: WARDEN_DATA_DIR (default .warden/), WARDEN_LOG_LEVEL (default info).`;

function fail(message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
}

function configPath(values: { config?: string }): string {
  return values.config ?? process.env.WARDEN_CONFIG ?? 'gateway.yaml';
}

async function cmdValidate(argv: string[]) {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const file = configPath(values);
  const { validateConfigFile } = await import('./validate-file.js');
  const issues = await validateConfigFile(file);
  if (issues.length === 0) {
    process.stdout.write(`${file}: OK\n`);
    return;
  }
  process.stderr.write(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n`);
  for (const i of issues) process.stderr.write(`  ${formatIssue(i)}\n`);
  process.exit(1);
}

async function cmdStart(argv: string[]) {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const file = configPath(values);
  const { runServer } = await import('./serve.js');
  await runServer(file);
}

async function cmdToken(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      agent: { type: 'string' },
      user: { type: 'string' },
      scope: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      claim: { type: 'string', multiple: true },
    },
  });
  if (!values.agent) fail('warden token: --agent is required\n\n' + USAGE, 2);
  const ttlMs = parseDuration(values.ttl);
  if (ttlMs === null || ttlMs < 1000) fail(`warden token: invalid --ttl ${values.ttl}`, 2);
  const loaded = loadOrExit(configPath(values));
  if (!loaded.config.identity.dev_issuer) fail('warden token: identity.dev_issuer is not enabled in the config');
  const { loadDevIssuer } = await import('./identity/dev-issuer.js');
  const { publicUrlOf, dataDirOf } = await import('./serve.js');
  const issuer = await loadDevIssuer({ dataDir: dataDirOf(process.env), publicUrl: publicUrlOf(loaded.config) });
  const claims: Record<string, unknown> = {};
  for (const c of values.claim ?? []) {
    const eq = c.indexOf('=');
    if (eq <= 0) fail(`warden token: --claim must be key=value (got ${c})`, 2);
    claims[c.slice(0, eq)] = c.slice(eq + 1);
  }
  const token = await issuer.issue({
    agent: values.agent,
    user: values.user ?? null,
    scopes: values.scope ? values.scope.split(/\s+/).filter(Boolean) : [],
    ttlSeconds: Math.round((ttlMs as number) / 1000),
    claims,
  });
  process.stdout.write(token + '\n');
}

async function cmdExplain(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      token: { type: 'string' },
      request: { type: 'string', short: 'X', default: 'GET' },
      data: { type: 'string', short: 'd' },
      header: { type: 'string', short: 'H', multiple: true },
      json: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) fail('warden explain: exactly one PATH is required\n\n' + USAGE, 2);
  const { explain, formatTrace } = await import('./explain.js');
  const trace = await explain({
    configFile: configPath(values),
    token: values.token,
    method: values.request.toUpperCase(),
    target: positionals[0],
    body: values.data,
    headers: values.header ?? [],
  });
  process.stdout.write(values.json ? JSON.stringify(trace, null, 2) + '\n' : formatTrace(trace));
  process.exitCode = trace.decision === 'allow' ? 0 : trace.decision === 'pending' ? 0 : 1;
}

async function cmdFga(argv: string[]) {
  const [sub, ...rest] = argv;
  if (sub !== 'push') fail('usage: warden fga push [-c gateway.yaml] [--store-name NAME]', 2);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, 'store-name': { type: 'string', default: 'warden' } } });
  const loaded = loadOrExit(configPath(values));
  const fga = loaded.config.authz.openfga;
  const apiUrl = fga?.api_url ?? process.env.FGA_API_URL ?? process.env.OPENFGA_API_URL;
  if (!apiUrl) fail('warden fga push: set authz.openfga.api_url (or FGA_API_URL)');
  const { pushPolicies } = await import('./authz/push.js');
  const { resolve } = await import('node:path');
  const auth = loaded.config.authz;
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

async function cmdKeygen() {
  const { generateVaultKey } = await import('./vault/crypto.js');
  process.stdout.write(generateVaultKey() + '\n');
}

async function cmdVault(argv: string[]) {
  const [sub, ...rest] = argv;
  if (sub !== 'rekey') fail('usage: warden vault rekey [-c gateway.yaml]', 2);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
  const loaded = loadOrExit(configPath(values));
  const { runVaultRekey } = await import('./serve.js');
  await runVaultRekey(loaded);
}

async function cmdMcp(argv: string[]) {
  const [sub, ...rest] = argv;
  if (sub !== 'accept') fail('usage: warden mcp accept --route NAME --tool NAME [-c gateway.yaml]', 2);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, route: { type: 'string' }, tool: { type: 'string' } } });
  if (!values.route || !values.tool) fail('warden mcp accept: --route and --tool are required', 2);
  const loaded = loadOrExit(configPath(values));
  const { runMcpAccept } = await import('./serve.js');
  await runMcpAccept(loaded, values.route, values.tool);
}

function loadOrExit(file: string) {
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

async function main() {
  const [command, ...argv] = process.argv.slice(2);
  switch (command) {
    case 'start':
      return cmdStart(argv);
    case 'validate':
      return cmdValidate(argv);
    case 'token':
      return cmdToken(argv);
    case 'explain':
      return cmdExplain(argv);
    case 'fga':
      return cmdFga(argv);
    case 'keygen':
      return cmdKeygen();
    case 'vault':
      return cmdVault(argv);
    case 'mcp':
      return cmdMcp(argv);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE + '\n');
      return;
    default:
      fail(`warden: unknown command ${command}\n\n${USAGE}`, 2);
  }
}

main().catch((err) => {
  if (err instanceof ConfigError) fail(err.message);
  const code = (err as { code?: string }).code;
  fail(`warden: ${code ? `${code}: ` : ''}${(err as Error).message}`);
});
