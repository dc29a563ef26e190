/** `warden validate [-c gateway.yaml]`: exit 0, or 1 listing every problem. */

import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issues.js';
import { loadConfigFile } from '../gateway/config.js';
import { publicUrlOf } from '../config/public-url.js';
import { audienceBindingWarnings } from '../mcp/audience.js';
import { issuerNamespaceWarnings } from '../identity/config-checks.js';
import { validateConfigFile } from '../gateway/validate-file.js';
import { configPath } from './common.js';
import { embeddedSizeWarning } from '../authz/embedded/size.js';
import { dirname, resolve } from 'node:path';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  const file = configPath(values);
  const issues = await validateConfigFile(file);
  if (issues.length === 0) {
    // Warnings: valid, but probably not what the operator meant (exit code stays 0).
    const { config } = loadConfigFile(file);
    const warnings = [...audienceBindingWarnings(config, publicUrlOf(config)), ...issuerNamespaceWarnings(config)];
    const size = await embeddedSizeWarning(config.authz, dirname(resolve(file)));
    if (size) warnings.push(size);
    for (const w of warnings) process.stderr.write(`  warning: ${w.path}: ${w.message}\n`);
    process.stdout.write(`${file}: OK\n`);
    return;
  }
  process.stderr.write(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n`);
  for (const i of issues) process.stderr.write(`  ${formatIssue(i)}\n`);
  process.exit(1);
}
