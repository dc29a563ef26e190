/**
 * `warden validate` warns when the embedded engine's tuples file is beyond the
 * size it should hold (EMBEDDED_TUPLES_WARN), counting tuples without parsing.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countTupleLines, EMBEDDED_TUPLES_WARN, embeddedSizeWarning } from '../../src/authz/embedded/size.js';
import { parseTuplesWithLines } from '../../src/authz/model.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-embedded-size-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('embedded engine size warning', () => {
  it('counts the tuples the readers read: YAML items (block or flow), JSON Lines', () => {
    const yaml = [
      '# comment',
      '- { user: user:a, relation: member, object: group:a }',
      '- user: user:b',
      '  relation: member',
      '  object: group:a',
      '',
      '- { user: "user:*", relation: viewer, object: doc:1 }',
    ].join('\n');
    expect(countTupleLines(yaml, false)).toBe(parseTuplesWithLines(yaml, 't.yaml').tuples.length);
    expect(countTupleLines(yaml, false)).toBe(3);
    const jsonl = '{"user":"user:a","relation":"member","object":"group:a"}\n\n{"user":"user:b","relation":"member","object":"group:a"}\n';
    expect(countTupleLines(jsonl, true)).toBe(parseTuplesWithLines(jsonl, 't.jsonl').tuples.length);
  });

  it('warns above the threshold, naming the count and the OpenFGA engine; not at it', async () => {
    const line = '- { user: user:a, relation: member, object: group:a }\n';
    writeFileSync(join(dir, 'at.yaml'), line.repeat(EMBEDDED_TUPLES_WARN));
    writeFileSync(join(dir, 'over.yaml'), line.repeat(EMBEDDED_TUPLES_WARN + 1));
    expect(await embeddedSizeWarning({ engine: 'embedded', tuples: 'at.yaml' }, dir)).toBeUndefined();
    const warning = await embeddedSizeWarning({ engine: 'embedded', tuples: 'over.yaml' }, dir);
    expect(warning?.path).toBe('authz.tuples');
    expect(warning?.message).toContain((EMBEDDED_TUPLES_WARN + 1).toLocaleString('en-US'));
    expect(warning?.message).toContain('authz.engine: openfga');
    // The OpenFGA engine keeps tuples on the server: no warning whatever the file.
    expect(await embeddedSizeWarning({ engine: 'openfga', tuples: 'over.yaml' }, dir)).toBeUndefined();
  });
});
