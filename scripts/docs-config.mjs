#!/usr/bin/env node
// `npm run docs:config`: regenerate docs/configuration.md and gateway.schema.json
// from the zod schema (via the build in dist/). `--check` only compares and
// exits 1 when a committed file is out of date (the test suite does the same).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const { configReference, gatewayJsonSchemaText } = await import(join(root, 'dist/src/config/reference.js'));

const { markdown, undescribed } = configReference();
const files = [
  ['docs/configuration.md', markdown],
  ['gateway.schema.json', gatewayJsonSchemaText()],
];
let stale = 0;
for (const [file, text] of files) {
  const path = join(root, file);
  const current = existsSync(path) ? readFileSync(path, 'utf8') : null;
  if (current === text) continue;
  if (check) {
    process.stderr.write(`${file} is out of date: run \`npm run docs:config\`\n`);
    stale++;
  } else {
    writeFileSync(path, text);
    process.stdout.write(`wrote ${file}\n`);
  }
}
if (undescribed.length) {
  process.stderr.write(`keys without a .describe() text in src/config/schema.ts:\n${undescribed.map((k) => `  ${k.key}`).join('\n')}\n`);
}
process.exit(stale || undescribed.length ? 1 : 0);
