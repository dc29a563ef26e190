#!/usr/bin/env node
/**
 * The `warden` command (the package bin). Entry point only: it picks the
 * command module under `cli/` (loaded on demand, so `warden keygen` does not
 * load the gateway) and turns what escapes it into a message and exit code.
 */

import { ConfigError } from './config/load.js';
import { USAGE, fail } from './cli/common.js';

type Command = { run(argv: string[]): Promise<void> };

const COMMANDS: Record<string, () => Promise<Command>> = {
  start: () => import('./cli/start.js'),
  validate: () => import('./cli/validate.js'),
  token: () => import('./cli/token.js'),
  explain: () => import('./cli/explain.js'),
  fga: () => import('./cli/fga.js'),
  keygen: () => import('./cli/keygen.js'),
  vault: () => import('./cli/vault.js'),
  mcp: () => import('./cli/mcp.js'),
};

async function main(): Promise<void> {
  const [command, ...argv] = process.argv.slice(2);
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!load) fail(`warden: unknown command ${command}\n\n${USAGE}`, 2);
  await (await load()).run(argv);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message);
  const code = (err as { code?: string }).code;
  fail(`warden: ${code ? `${code}: ` : ''}${(err as Error).message}`);
});
