/** `warden schema`: the JSON Schema of gateway.yaml (the same text as gateway.schema.json). */

import { gatewayJsonSchemaText } from '../config/reference.js';

export async function run(): Promise<void> {
  process.stdout.write(gatewayJsonSchemaText());
}
