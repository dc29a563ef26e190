#!/usr/bin/env -S node --min-semi-space-size=8 --max-semi-space-size=8 --heap-growing-percent=20
/**
 * The `warden` command (the package bin). Entry point only: it picks the
 * command module under `cli/` (loaded on demand, so `warden keygen` does not
 * load the gateway) and turns what escapes it into a message and exit code.
 */

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reexecWithNodeFlags } from './cli/node-flags.js';
import { catchEarlyHup } from './cli/early-hup.js';

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
  const { HELP, USAGE, fail } = await import('./cli/common.js');
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
  if (!load) return fail(`warden: unknown command ${command}\n\n${USAGE}`, 2);
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(HELP[command] + '\n');
    return;
  }
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

async function failWith(err: unknown): Promise<void> {
  const [{ ConfigError }, { fail }] = await Promise.all([import('./config/issues.js'), import('./cli/common.js')]);
  if (err instanceof ConfigError) fail(err.message);
  const code = (err as { code?: string }).code;
  fail(`warden: ${code ? `${code}: ` : ''}${(err as Error).message}`);
}

// `start` serves with Warden's V8 flags (cli/node-flags.ts). Run as the bin (`warden start`, `npx warden
// start`, `./dist/src/cli.js start`), the shebang above gives them to node: one process. Run as
// `node dist/src/cli.js start` without them, a child started with them serves and this process only relays
// signals and the exit status (the fallback). It is decided before anything else is loaded, so the relay
// holds node:child_process and nothing of Warden (#17: its memory counts next to the server's).
// The shebang's flags must equal WARDEN_NODE_FLAGS (test/core/cli.test.ts checks it).
const [first, ...rest] = process.argv.slice(2);
const relaying = first === 'start' && !rest.includes('-h') && !rest.includes('--help') && reexecWithNodeFlags();
// A SIGHUP while the server's modules load must not end it (cli/early-hup.ts); the relay passes SIGHUPs on.
if (first === 'start' && !relaying) catchEarlyHup();
if (!relaying) main().catch(failWith);
