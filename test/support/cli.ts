/** The built `warden` binary as a user runs it, in a child process (`npm test` builds first). */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './gateway.js';

const run = promisify(execFile);

/** Path of the built CLI. */
export const CLI = join(REPO_ROOT, 'dist/src/cli.js');

/** Throw a clear message when the CLI was not built. */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does this first)`);
}

/**
 * Run `warden …args` in `cwd`; never throws on a non-zero exit. With
 * `timeoutMs`, a command still running then (a `start` that should have
 * refused) is stopped with SIGTERM, which the bin passes on to its re-executed
 * node, and answers with a non-zero code.
 */
export async function runCli(
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      cwd: options.cwd,
      env: options.env,
      ...(options.timeoutMs ? { timeout: options.timeoutMs, killSignal: 'SIGTERM' as const } : {}),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
