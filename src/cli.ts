#!/usr/bin/env node
/**
 * The `warden` command (the package bin). Entry point only: it picks the
 * command module under `cli/` (loaded on demand, so `warden keygen` does not
 * load the gateway) and turns what escapes it into a message and exit code.
 */

import { ConfigError } from './config/issues.js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELP, USAGE, fail } from './cli/common.js';

type Command = { run(argv: string[]): Promise<void> };

const COMMANDS: Record<string, () => Promise<Command>> = {
  start: () => import('./cli/start.js'),
  validate: () => import('./cli/validate.js'),
  token: () => import('./cli/token.js'),
  explain: () => import('./cli/explain.js'),
  fga: () => import('./cli/fga.js'),
  schema: () => import('./cli/schema.js'),
  keygen: () => import('./cli/keygen.js'),
  vault: () => import('./cli/vault.js'),
  mcp: () => import('./cli/mcp.js'),
  audit: () => import('./cli/audit.js'),
  test: () => import('./cli/policy-test.js'),
  replay: () => import('./cli/replay.js'),
};

async function main(): Promise<void> {
  const [command, ...argv] = process.argv.slice(2);
  if (command === undefined) fail(USAGE, 2);
  if (command === '-h' || command === '--help' || command === 'help') {
    const topic = command === 'help' ? argv[0] : undefined;
    process.stdout.write((topic && Object.hasOwn(HELP, topic) ? HELP[topic] : USAGE) + '\n');
    return;
  }
  if (command === '-V' || command === '--version' || command === 'version') {
    process.stdout.write(`warden ${version()}\n`);
    return;
  }
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!load) fail(`warden: unknown command ${command}\n\n${USAGE}`, 2);
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(HELP[command] + '\n');
    return;
  }
  // `start` serves with Warden's V8 flags (cli/node-flags.ts): a child started with them serves and this
  // process only relays, so it loads nothing of the gateway.
  if (command === 'start' && (await import('./cli/node-flags.js')).reexecWithNodeFlags()) return;
  try {
    await (await load()).run(argv);
  } catch (err) {
    // node:util parseArgs: an unknown or malformed option is a usage error.
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) fail(`warden ${command}: ${(err as Error).message}\n\n${HELP[command]}`, 2);
    throw err;
  }
}

/** The package version, read once from package.json next to dist/. */
function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, '..', '..', 'package.json'), join(here, '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'warden' && pkg.version) return pkg.version;
    } catch {
      /* next candidate */
    }
  }
  return 'unknown';
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message);
  const code = (err as { code?: string }).code;
  fail(`warden: ${code ? `${code}: ` : ''}${(err as Error).message}`);
});
