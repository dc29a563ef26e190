/** `warden mcp accept`: accept a changed tool definition so the tool is shown and callable again. */

import { parseArgs } from 'node:util';
import { acceptToolChange } from '../mcp/admin.js';
import { createLogger } from '../observability/logger.js';
import { createStore } from '../store/create.js';
import { configPath, fail, loadOrExit } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'accept') fail('usage: warden mcp accept --route NAME --tool NAME [-c gateway.yaml]', 2);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, route: { type: 'string' }, tool: { type: 'string' } } });
  const { route, tool } = values;
  if (!route || !tool) fail('warden mcp accept: --route and --tool are required', 2);
  const loaded = loadOrExit(configPath(values));
  const logger = createLogger();
  const store = await createStore(loaded.config.store, logger, loaded.baseDir);
  try {
    const outcome = await acceptToolChange(store, route, tool, logger);
    if (outcome.status === 'accepted') process.stdout.write(`accepted the current definition of ${tool} on route ${route}\n`);
    else {
      process.stderr.write(
        outcome.status === 'unknown_tool'
          ? `no tool ${tool} has been seen on route ${route}\n`
          : `the definition of ${tool} on route ${route} has not changed; nothing to accept\n`,
      );
      process.exitCode = 1;
    }
  } finally {
    await store.close();
  }
}
