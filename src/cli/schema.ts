/** `warden schema`: the JSON Schema of gateway.yaml (the same text as gateway.schema.json). */

import { parseArgs } from 'node:util';
import { gatewayJsonSchemaText } from '../config/reference.js';

export async function run(argv: string[] = []): Promise<void> {
  // No options and no arguments: anything given is a usage error (exit 2), as for every command.
  parseArgs({ args: argv, options: {} });
  process.stdout.write(gatewayJsonSchemaText());
}
