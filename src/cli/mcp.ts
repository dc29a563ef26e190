/**
 * `warden mcp accept`: review a changed tool definition, then accept exactly
 * that one so the tool is shown and callable again. Without `--hash` it prints
 * the whole pending definition (a line diff against the pinned one) and its
 * hash, and accepts nothing; `--hash` accepts the definition with that hash
 * only (not one that changed again since it was printed).
 */

import { parseArgs } from 'node:util';
import { toolReview } from '../mcp/pin-review.js';
import { acceptToolChange, getToolPin, shellWord as word } from '../mcp/admin.js';
import { MAX_KEPT_DEFINITION_BYTES } from '../mcp/pinning.js';
import { createLogger } from '../observability/logger.js';
import { createStore } from '../store/create.js';
import { configPath, fail, loadOrExit } from './common.js';

const USAGE = 'usage: warden mcp accept --route NAME --tool NAME [--hash SHA256] [-c gateway.yaml]';
const MARK = { same: ' ', removed: '-', added: '+', elided: '~' } as const;

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'accept') fail(USAGE, 2);
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string', short: 'c' }, route: { type: 'string' }, tool: { type: 'string' }, hash: { type: 'string' } },
  });
  const { route, tool, hash } = values;
  if (!route || !tool) fail('warden mcp accept: --route and --tool are required', 2);
  if (hash !== undefined && !/^[0-9a-f]{64}$/.test(hash)) fail('warden mcp accept: --hash takes the 64 hex digits printed by warden mcp accept', 2);
  const loaded = loadOrExit(configPath(values));
  const logger = createLogger();
  const store = await createStore(loaded.config.store, logger, loaded.baseDir);
  const cli = `warden mcp accept --route ${word(route)} --tool ${word(tool)}${values.config ? ` -c ${word(values.config)}` : ''}`;
  try {
    const pin = await getToolPin(store, route, tool);
    if (!pin) {
      process.stderr.write(`no tool ${tool} has been seen on route ${route}\n`);
      process.exitCode = 1;
      return;
    }
    if (!pin.changed) {
      process.stderr.write(`the definition of ${tool} on route ${route} has not changed; nothing to accept\n`);
      process.exitCode = 1;
      return;
    }
    // The whole kept definition is printed (no display bound here).
    const review = toolReview(pin, Infinity);
    if (hash === undefined) {
      process.stdout.write(
        `${tool} on route ${route}: the pinned definition (-) and the new one (+), every field, keys sorted; ~ marks what is not shown\n` +
          review.lines.map((d) => `${MARK[d.op]} ${d.text}`).join('\n') +
          '\n',
      );
    }
    if (!review.acceptHash) {
      process.stderr.write(
        review.notAcceptable === 'legacy'
          ? 'the change was recorded by an older Warden, which kept only part of the definition: nothing can be accepted; it is recorded whole the next time an agent lists the tools on this route\n'
          : review.notAcceptable === 'not_kept'
            ? `the new definition is larger than the ${MAX_KEPT_DEFINITION_BYTES} bytes Warden keeps for review: only its hash was recorded and it cannot be accepted; the tool stays blocked until the server lists a smaller definition\n`
            : 'the stored copy of the new definition does not match its hash: nothing can be accepted; the next tools/list records it again\n',
      );
      process.exitCode = 1;
      return;
    }
    if (hash === undefined) {
      process.stdout.write(`new definition: sha256 ${review.acceptHash} (${review.bytes ?? '?'} bytes of canonical JSON)\n`);
      process.stderr.write(`nothing accepted. To pin exactly the new definition above, run:\n  ${cli} --hash ${review.acceptHash}\n`);
      process.exitCode = 1;
      return;
    }
    const outcome = await acceptToolChange(store, route, tool, logger, { expectedHash: hash, by: 'cli' });
    if (outcome.status === 'accepted') {
      process.stdout.write(`accepted the definition of ${tool} on route ${route} with sha256 ${hash}\n`);
      return;
    }
    process.stderr.write(
      outcome.status === 'unknown_tool'
        ? `no tool ${tool} has been seen on route ${route}\n`
        : outcome.status === 'nothing_to_accept' && outcome.record.changed
          ? `the pending definition of ${tool} on route ${route} is not the one with sha256 ${hash} (it changed again); nothing accepted. Review it with: ${cli}\n`
          : `nothing accepted: the definition of ${tool} on route ${route} cannot be accepted (${outcome.status === 'not_reviewable' ? outcome.reason : 'no change pending'})\n`,
    );
    process.exitCode = 1;
  } finally {
    await store.close();
  }
}
