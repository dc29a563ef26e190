/**
 * Tuple files at size: the line reader of one-flow-map-per-line `tuples.yaml`
 * must read exactly what the YAML parser reads (or step aside for it), JSON
 * Lines files carry the same tuples with the same checks, and the embedded
 * engine answers the same from either.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseTuplesWithLines, parseTuplesYaml } from '../../src/authz/model.js';
import { fastYamlTuples, jsonLinesTuples } from '../../src/authz/tuple-file.js';
import { loadEmbeddedAuthorizer } from '../../src/authz/embedded/index.js';
import { isWardenError } from '../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-tuple-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const model = join(dir, 'model.fga');
writeFileSync(
  model,
  'model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user, group#member]\ntype doc\n  relations\n    define viewer: [user, group#member]\n',
);

/** What the YAML parser makes of `text`: the tuples and lines, or the error message. */
function viaYaml(text: string): unknown {
  try {
    return parseTuplesYaml(text, 't.yaml');
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function viaReader(text: string): unknown {
  try {
    return parseTuplesWithLines(text, 't.yaml');
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('one-flow-map-per-line tuples.yaml', () => {
  const simple = [
    '# header comment',
    '',
    '- { user: user:alice, relation: member, object: group:team }',
    '- { user: "user:*", relation: viewer, object: "doc:1" }   # public',
    "- { object: 'doc:2', user: group:team#member, relation: editor }",
    '   # indented comment',
    '- {user: folder:f1,  relation: parent,object: doc:3}',
    '- { user: "user:émile", relation: owner, object: doc:ü }',
    '- { user: user:a-b.c_d@example.com, relation: owner, object: doc:x/y }',
  ].join('\n');

  it('reads the same tuples and lines as the YAML parser', () => {
    const fast = fastYamlTuples(simple);
    expect(fast).not.toBeNull();
    expect(fast).toEqual(parseTuplesYaml(simple));
    expect(fast?.lines).toEqual([3, 4, 5, 7, 8, 9]);
  });

  it('reads CRLF files the same as the YAML parser', () => {
    const crlf = simple.replaceAll('\n', '\r\n');
    expect(fastYamlTuples(crlf)).toEqual(parseTuplesYaml(crlf));
  });

  it('an empty or comment-only file is no tuples, as in YAML', () => {
    for (const text of ['', '\n\n', '# nothing yet\n']) {
      expect(fastYamlTuples(text)).toEqual({ tuples: [], lines: [] });
      expect(parseTuplesYaml(text)).toEqual({ tuples: [], lines: [] });
    }
  });

  // Every line here is one the line reader does not take: the file is then parsed as YAML, so the result
  // (tuples or the error) is the YAML parser's, whatever the line means.
  const stepsAside: [string, string][] = [
    ['a boolean user', '- { user: true, relation: member, object: group:a }'],
    ['a null relation', '- { user: user:a, relation: null, object: group:a }'],
    ['a number', '- { user: user:a, relation: member, object: 12 }'],
    ['an escape', '- { user: "user:\\u0061", relation: member, object: group:a }'],
    ['an empty string', '- { user: "", relation: member, object: group:a }'],
    ['a repeated key', '- { user: user:a, user: user:b, object: group:a }'],
    ['a condition', '- { user: user:a, relation: member, object: group:a, condition: { name: c1 } }'],
    ['a trailing comma', '- { user: user:a, relation: member, object: group:a, }'],
    ['a value ending in a colon', '- { user: user:a:, relation: member, object: group:a }'],
    ['block style', '- user: user:a\n  relation: member\n  object: group:a'],
    ['an indented sequence', '  - { user: user:a, relation: member, object: group:a }'],
    ['a tab', '- {\tuser: user:a, relation: member, object: group:a }'],
    ['a document marker', '---\n- { user: user:a, relation: member, object: group:a }'],
    ['an alias', '- { user: *a, relation: member, object: group:a }'],
    ['an unknown key', '- { user: user:a, relation: member, objekt: group:a }'],
    ['a map instead of a list', 'user: user:a'],
  ];
  for (const [what, line] of stepsAside) {
    it(`steps aside for ${what}, and the result is the YAML parser's`, () => {
      const text = `- { user: user:z, relation: member, object: group:z }\n${line}\n`;
      expect(fastYamlTuples(text)).toBeNull();
      expect(viaReader(text)).toEqual(viaYaml(text));
    });
  }

  it('agrees with the YAML parser on generated lines of every quoting style', () => {
    const values = ['user:a', 'group:g#member', 'user:*', 'doc:1', 'doc:a#b', 'x', 'True', 'yes', 'on', '~x', 'a b'];
    const quote = (v: string, i: number): string => (i % 3 === 0 ? v : i % 3 === 1 ? JSON.stringify(v) : `'${v}'`);
    let i = 0;
    for (const u of values)
      for (const r of ['member', 'viewer', 'NULL', 'false'])
        for (const o of values) {
          const text = `- { user: ${quote(u, i++)}, relation: ${quote(r, i++)}, object: ${quote(o, i++)} }\n`;
          expect(viaReader(text), text).toEqual(viaYaml(text));
        }
  });
});

describe('JSON Lines tuples', () => {
  const fail = (message: string, line: number): never => {
    throw new Error(`line ${line}: ${message}`);
  };

  it('reads one object per line (blank lines skipped), with conditions', () => {
    const text = [
      '{"user":"user:alice","relation":"member","object":"group:team"}',
      '',
      '{"user":"user:bob","relation":"spender","object":"account:a","condition":{"name":"within_limit","context":{"limit":10}}}',
    ].join('\n');
    expect(jsonLinesTuples(text, fail)).toEqual({
      tuples: [
        { user: 'user:alice', relation: 'member', object: 'group:team' },
        { user: 'user:bob', relation: 'spender', object: 'account:a', condition: { name: 'within_limit', context: { limit: 10 } } },
      ],
      lines: [1, 3],
    });
  });

  it('refuses what tuples.yaml refuses, naming the line', () => {
    const cases: [string, RegExp][] = [
      ['{"user":"user:a","relation":"member"', /line 2: tuple 2: not JSON/],
      ['["user:a","member","group:a"]', /line 2: tuple 2: expected a JSON object/],
      ['{"user":"user:a","relation":"member","object":"group:a","extra":1}', /line 2: tuple 2: unknown key "extra"/],
      ['{"user":"user:a","relation":"","object":"group:a"}', /line 2: tuple 2: "relation" must be a non-empty string/],
      ['{"user":"user:a","relation":"m","object":"group:a","condition":{"nam":"c"}}', /line 2: tuple 2: unknown condition key "nam"/],
    ];
    for (const [line, error] of cases) {
      expect(() => jsonLinesTuples(`{"user":"user:z","relation":"member","object":"group:z"}\n${line}\n`, fail)).toThrow(error);
    }
  });

  it('a .jsonl tuples file loads into the embedded engine with the same answers as the YAML file', async () => {
    const tuples = [
      { user: 'user:alice', relation: 'member', object: 'group:a' },
      { user: 'group:a#member', relation: 'member', object: 'group:b' },
      { user: 'group:b#member', relation: 'viewer', object: 'doc:1' },
    ];
    writeFileSync(join(dir, 't.jsonl'), tuples.map((t) => JSON.stringify(t)).join('\n') + '\n');
    writeFileSync(join(dir, 't.yaml'), tuples.map((t) => `- { user: ${t.user}, relation: ${t.relation}, object: ${t.object} }`).join('\n') + '\n');
    const fromJsonl = await loadEmbeddedAuthorizer({ modelPath: model, tuplesPath: join(dir, 't.jsonl') });
    const fromYaml = await loadEmbeddedAuthorizer({ modelPath: model, tuplesPath: join(dir, 't.yaml') });
    expect(fromJsonl.modelId).toBe(fromYaml.modelId);
    for (const user of ['user:alice', 'user:bob', 'group:a#member'])
      expect(await fromJsonl.check({ user, relation: 'viewer', object: 'doc:1' })).toBe(await fromYaml.check({ user, relation: 'viewer', object: 'doc:1' }));
    expect(await fromJsonl.check({ user: 'user:alice', relation: 'viewer', object: 'doc:1' })).toBe(true);
  });

  it('a tuple the model refuses in a .jsonl file is reported with its line', async () => {
    writeFileSync(
      join(dir, 'bad.jsonl'),
      '{"user":"user:a","relation":"member","object":"group:a"}\n\n{"user":"user:a","relation":"owner","object":"group:a"}\n',
    );
    const err = await loadEmbeddedAuthorizer({ modelPath: model, tuplesPath: join(dir, 'bad.jsonl') }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isWardenError(err) || err instanceof Error).toBe(true);
    expect(String((err as Error).message) + JSON.stringify((err as { issues?: unknown }).issues ?? '')).toMatch(/bad\.jsonl:3/);
  });
});
