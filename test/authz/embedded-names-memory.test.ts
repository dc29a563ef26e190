/**
 * #17, the embedded engine at size: the names the engine interns (objects and
 * user objects) must not keep the tuples file's text alive. A name of 13 or
 * more characters read from the file is, in V8, a view into the whole text;
 * interned as it was, one such name kept the file (65 MB for the bench's
 * million tuples) in memory for the life of the process. Measured in a child
 * node process (built modules): load a tuples file padded to 40 MB, let go of
 * everything but the authorizer, collect, and read the heap.
 */

import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../support/gateway.js';

const run = promisify(execFile);
const MODULE = join(REPO_ROOT, 'dist/src/authz/embedded/index.js');
const PADDING = 40 * 2 ** 20;

const LOAD = `
const { loadEmbeddedAuthorizer } = await import(process.argv[1]);
let authorizer = await loadEmbeddedAuthorizer({ modelPath: process.argv[2], tuplesPath: process.argv[3], invalidTuples: process.argv[4] });
const allowed = authorizer.evaluator.check({ user: 'user:someone-with-a-long-name', relation: 'member', object: 'group:everyone-in-the-company' });
const ignored = authorizer.evaluator.ignoredTuples.map((i) => i.tuple.object);
globalThis.gc();
globalThis.gc();
process.stdout.write(JSON.stringify({ allowed, ignored, heapUsed: process.memoryUsage().heapUsed, keep: typeof authorizer }));
`;

describe('embedded engine: interned names and the tuples file (#17)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-names-memory-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Loads `lines` after 40 MB of comment; the engine's answer, ignored objects and heap once collected. */
  async function load(name: string, lines: string, invalidTuples: 'error' | 'ignore') {
    if (!existsSync(MODULE)) throw new Error(`${MODULE} is missing: run \`npm run build\` (npm test does this first)`);
    const model = join(dir, 'model.fga');
    writeFileSync(model, 'model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user]\n');
    const tuples = join(dir, `${name}.yaml`);
    writeFileSync(tuples, `# ${'x'.repeat(PADDING)}\n` + lines);
    const { stdout } = await run(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', LOAD, pathToFileURL(MODULE).href, model, tuples, invalidTuples],
      { maxBuffer: 1024 * 1024 },
    );
    return JSON.parse(stdout) as { allowed: boolean; ignored: string[]; heapUsed: number };
  }

  it('a loaded engine does not keep the tuples file text alive through the names it interned', async () => {
    // Long names (views into the text when read), and a comment that makes the text big.
    const out = await load(
      'interned',
      '- { user: "user:someone-with-a-long-name", relation: member, object: "group:everyone-in-the-company" }\n' +
        '- { user: "user:another-long-user-name", relation: member, object: "group:another-long-group-name" }\n',
      'error',
    );
    expect(out.allowed).toBe(true);
    // Keeping the text: > 40 MB. Without it: the modules and a tiny index (~10 MB).
    expect(out.heapUsed).toBeLessThan(PADDING / 2);
  }, 60_000);

  it('nor through the tuples it ignored (invalid_tuples: ignore), which it keeps for logs and validate', async () => {
    const out = await load(
      'ignored',
      '- { user: "user:someone-with-a-long-name", relation: member, object: "group:everyone-in-the-company" }\n' +
        '- { user: "user:another-long-user-name", relation: owner, object: "group:a-group-without-owners" }\n',
      'ignore',
    );
    expect(out.allowed).toBe(true);
    expect(out.ignored).toEqual(['group:a-group-without-owners']);
    expect(out.heapUsed).toBeLessThan(PADDING / 2);
  }, 60_000);
});
