/**
 * How much a churn promotes into V8's old generation, measured in a child node
 * process with V8's own GC trace (#17: a structure that keeps one request's
 * data alive through another's turns young garbage into old). The script is an
 * ES module body that prints `--- churn` when the measured part starts and,
 * optionally, `--- end` when it stops; built modules are passed to it as file
 * URLs in `process.argv[1..]`, followed by `args`.
 */

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Bytes promoted by the scavenges between `--- churn` and `--- end` (or the end), from --trace-gc-nvp. */
export function promotedBetweenMarkers(trace: string): { bytes: number; scavenges: number } {
  const start = trace.indexOf('--- churn');
  const end = trace.indexOf('--- end');
  const part = trace.slice(start, end < 0 ? undefined : end);
  let bytes = 0;
  let scavenges = 0;
  for (const line of part.split('\n')) {
    if (!/\bgc=s\b/.test(line)) continue;
    scavenges++;
    bytes += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
  }
  return { bytes, scavenges };
}

/** Options of `promotedInChild`. */
export interface PromotionRun {
  /** Built modules (paths under dist/), passed first as file URLs. */
  modules: string[];
  /** Further arguments after the modules. */
  args?: string[];
  /** Extra node flags (e.g. `--no-allocation-site-pretenuring`). */
  flags?: string[];
}

/**
 * Run `script` with a 1 MB young generation (many scavenges) and `--expose-gc`;
 * returns what its measured part promoted and its whole output.
 */
export async function promotedInChild(script: string, options: PromotionRun): Promise<{ bytes: number; scavenges: number; stdout: string }> {
  for (const m of options.modules) {
    if (!existsSync(m)) throw new Error(`${m} is missing: run \`npm run build\` (npm test does this first)`);
  }
  const { stdout } = await run(
    process.execPath,
    [
      '--expose-gc',
      ...(options.flags ?? []),
      '--trace-gc',
      '--trace-gc-nvp',
      '--min-semi-space-size=1',
      '--max-semi-space-size=1',
      '--input-type=module',
      '-e',
      script,
      ...options.modules.map((m) => pathToFileURL(m).href),
      ...(options.args ?? []),
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return { ...promotedBetweenMarkers(stdout), stdout };
}
