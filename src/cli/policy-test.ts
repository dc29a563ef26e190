/** `warden test [-c gateway.yaml] [--json] [-v] FILE…`: run gateway-level policy test cases offline. */

import { ConfigError } from '../config/issues.js';
import { loadConfigFile } from '../gateway/config.js';
import { PolicyTestFileError, formatResults, readPolicyTestFile, runPolicyTests, type PolicyTestFile } from '../gateway/policy-tests.js';
import { HELP, configPath, fail, commandArgs } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = commandArgs(argv, {
    json: { type: 'boolean', default: false },
    verbose: { type: 'boolean', short: 'v', default: false },
  });
  if (!positionals.length) fail(`warden test: name the test files\n\n${HELP.test}`, 2);
  let files: PolicyTestFile[];
  let results;
  try {
    files = positionals.map(readPolicyTestFile);
    results = await runPolicyTests(files, { configFile: configPath(values), load: (f) => loadConfigFile(f) });
  } catch (err) {
    if (err instanceof PolicyTestFileError || err instanceof ConfigError) fail(`warden test: ${err.message}`, 2);
    throw err;
  }
  if (values.json) {
    const failed = results.filter((r) => !r.passed).length;
    process.stdout.write(
      JSON.stringify(
        {
          passed: results.length - failed,
          failed,
          cases: results.map((r) => ({
            file: r.file,
            line: r.line,
            name: r.name,
            passed: r.passed,
            expected: r.expected,
            got: { outcome: r.got.outcome, code: r.got.code, status: r.got.status, route: r.got.route, decisive: r.got.decisive },
          })),
        },
        null,
        2,
      ) + '\n',
    );
  } else process.stdout.write(formatResults(results, values.verbose));
  if (results.some((r) => !r.passed)) process.exitCode = 1;
}
