#!/usr/bin/env node
// After `tsc`: make the package's bin files executable (tsc writes 0644). Installing the package
// (`npm install`, `npm link`, `npx`) does this too; a checkout built with `npm run build` needs it so
// that `./dist/src/cli.js start` runs through its shebang, which gives node Warden's V8 flags (#17).
import { chmodSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = process.argv[2] ?? join(root, 'dist');
const { bin } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of Object.values(typeof bin === 'string' ? { bin } : bin)) {
  // "dist/src/cli.js" → <outDir>/src/cli.js, so a build into another outDir works too.
  const path = join(outDir, file.replace(/^(\.\/)?dist\//, ''));
  chmodSync(path, statSync(path).mode | 0o111);
}
