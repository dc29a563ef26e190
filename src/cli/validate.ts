/** `warden validate [-c gateway.yaml]`: exit 0, or 1 listing every problem. */

import { parseArgs } from 'node:util';
import { formatIssue } from '../config/load.js';
import { validateConfigFile } from '../gateway/validate-file.js';
import { configPath } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const file = configPath(values);
  const issues = await validateConfigFile(file);
  if (issues.length === 0) {
    process.stdout.write(`${file}: OK\n`);
    return;
  }
  process.stderr.write(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n`);
  for (const i of issues) process.stderr.write(`  ${formatIssue(i)}\n`);
  process.exit(1);
}
