/** `warden audit verify [--jwks FILE] [--partial] [--allow-unsigned] [--json] FILE…`: check decision-log files. */

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { verifyFiles } from '../audit/verify.js';
import { HELP, fail, printable } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'verify') fail(`warden audit: unknown sub-command ${sub ?? '(none)'}\n\n${HELP.audit}`, 2);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { jwks: { type: 'string' }, partial: { type: 'boolean' }, 'allow-unsigned': { type: 'boolean' }, json: { type: 'boolean' } },
  });
  if (!positionals.length) fail(`warden audit verify: name the log files, oldest first\n\n${HELP.audit}`, 2);
  let jwks: Array<Record<string, unknown>> | undefined;
  if (values.jwks) {
    const parsed = JSON.parse(readFileSync(values.jwks, 'utf8')) as { keys?: unknown };
    if (!Array.isArray(parsed.keys)) fail(`warden audit verify: ${values.jwks} is not a JWKS ({"keys": [...]})`, 2);
    jwks = parsed.keys as Array<Record<string, unknown>>;
  }
  if (values['allow-unsigned'] && !jwks) fail('warden audit verify: --allow-unsigned only means something with --jwks', 2);
  const r = await verifyFiles(positionals, { jwks, partial: values.partial, allowUnsigned: values['allow-unsigned'] });
  if (values.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  } else if (r.problem) {
    const p = r.problem;
    // The instance id (also inside the reason) is the file's: an edited log chooses it.
    process.stdout.write(printable(`FAIL ${p.file}:${p.line}${p.seq !== undefined ? ` (instance ${p.instance}, seq ${p.seq})` : ''}: ${p.reason}`) + '\n');
  } else {
    const tails = Object.entries(r.unsigned).filter(([, n]) => n > 0);
    process.stdout.write(
      `OK ${r.records} records, ${Object.keys(r.unsigned).length} instance(s), ${r.checkpoints} checkpoint(s)` +
        (r.signaturesChecked ? ', signatures valid' : ' (signatures not checked: pass --jwks)') +
        '\n' +
        tails.map(([id, n]) => `  instance ${printable(id)}: ${n} record(s) after its last checkpoint\n`).join('') +
        r.unsignedInstances.map((id) => `  instance ${printable(id)}: no valid signed checkpoint (accepted: --allow-unsigned)\n`).join('') +
        r.roots.map((id) => `  instance ${printable(id)}: first chain of its writer in these files (no previous chain to link to)\n`).join('') +
        (r.unlinked.length
          ? `  ${r.unlinked.length} instance(s) without a genesis record (written before chains were linked): not linked to each other, so one removed or added whole is not detected\n`
          : ''),
    );
  }
  if (!r.ok) process.exitCode = 1;
}
