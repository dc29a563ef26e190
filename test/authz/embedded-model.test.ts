/**
 * Loading policies for the embedded engine: DSL, modular `fga.mod` and JSON
 * models, `tuples.yaml`, and errors that name the file and line.
 */

import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, loadTuples, modelRelations, ModelError, parseModelDsl, parseTuples } from '../../src/authz/model.js';
import { loadEmbeddedAuthorizer } from '../../src/authz/embedded/index.js';

const POLICIES = fileURLToPath(new URL('../../policies/', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-model-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function thrown(fn: () => unknown): ModelError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ModelError);
    return err as ModelError;
  }
  throw new Error('expected a ModelError');
}

describe('models', () => {
  it('parses the DSL into the OpenFGA JSON shape', () => {
    const model = parseModelDsl('model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n');
    expect(model.schema_version).toBe('1.1');
    expect(model.type_definitions.map((t) => t.type)).toEqual(['user', 'doc']);
    expect(model.type_definitions[1].relations?.viewer).toEqual({ this: {} });
    expect(model.type_definitions[1].metadata?.relations?.viewer.directly_related_user_types).toEqual([{ type: 'user' }]);
  });

  it('reports syntax and validation errors with the file and a 1-based line', () => {
    const syntax = thrown(() => parseModelDsl('model\n  schema 1.1\ntype user\n  relations\n    define x: [user] or\n', 'policies/model.fga'));
    expect(syntax.file).toBe('policies/model.fga');
    expect(syntax.line).toBe(5);
    expect(syntax.message).toMatch(/^policies\/model\.fga:5:\d+: /);
    const semantic = thrown(() => parseModelDsl('model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [usr]\n', 'm.fga'));
    expect(semantic.line).toBe(6);
    expect(semantic.message).toMatch(/usr/);
  });

  it('loads a modular model from fga.mod, with errors pointing into the module file', async () => {
    await mkdir(join(dir, 'mod', 'docs'), { recursive: true });
    await writeFile(join(dir, 'mod', 'fga.mod'), 'schema: "1.2"\ncontents:\n  - core.fga\n  - docs/docs.fga\n');
    await writeFile(join(dir, 'mod', 'core.fga'), 'module core\n\ntype user\n\ntype group\n  relations\n    define member: [user]\n');
    await writeFile(
      join(dir, 'mod', 'docs', 'docs.fga'),
      'module docs\n\ntype doc\n  relations\n    define viewer: [user, group#member]\n\nextend type group\n  relations\n    define admin: [user]\n',
    );
    const model = await loadModel(join(dir, 'mod', 'fga.mod'));
    expect(modelRelations(model)).toEqual(
      new Map([
        ['user', new Set()],
        ['group', new Set(['member', 'admin'])],
        ['doc', new Set(['viewer'])],
      ]),
    );
    await writeFile(join(dir, 'mod', 'core.fga'), 'module core\n\ntype user\n\ntype group\n  relations\n    define member: [user]\n    define x: [nope]\n');
    const err = await loadModel(join(dir, 'mod', 'fga.mod')).catch((e: unknown) => e as ModelError);
    expect(err).toBeInstanceOf(ModelError);
    expect((err as ModelError).file).toBe(join(dir, 'mod', 'core.fga'));
    expect((err as ModelError).line).toBe(8);
  });

  it('loads a JSON model and refuses files that are not models', async () => {
    const json = parseModelDsl('model\n  schema 1.1\ntype user\n');
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    expect(await loadModel(join(dir, 'model.json'))).toEqual(json);
    await writeFile(join(dir, 'bad.json'), '{"hello": 1}');
    await expect(loadModel(join(dir, 'bad.json'))).rejects.toThrow(/not an authorization model/);
    await expect(loadModel(join(dir, 'missing.fga'))).rejects.toThrow(/missing\.fga: cannot read: ENOENT/);
  });
});

describe('tuples.yaml', () => {
  it('parses tuples with optional conditions', () => {
    const tuples = parseTuples(
      '- { user: user:a, relation: viewer, object: doc:1 }\n- user: user:b\n  relation: viewer\n  object: doc:2\n  condition: { name: c1, context: { x: 1 } }\n',
    );
    expect(tuples).toEqual([
      { user: 'user:a', relation: 'viewer', object: 'doc:1' },
      { user: 'user:b', relation: 'viewer', object: 'doc:2', condition: { name: 'c1', context: { x: 1 } } },
    ]);
    expect(parseTuples('')).toEqual([]);
    expect(parseTuples('# only a comment\n')).toEqual([]);
  });

  it('reports the line of a malformed tuple', () => {
    const err = thrown(() => parseTuples('- { user: user:a, relation: viewer, object: doc:1 }\n\n- { user: user:a, relation: viewer }\n', 't.yaml'));
    expect(err.message).toBe('t.yaml:3: tuple 2: "object" must be a non-empty string');
    expect(thrown(() => parseTuples('- { user: user:a, relation: viewer, object: doc:1, extra: 1 }\n', 't.yaml')).message).toMatch(/unknown key "extra"/);
    expect(thrown(() => parseTuples('user: x\n', 't.yaml')).message).toMatch(/expected a YAML list/);
    expect(thrown(() => parseTuples('- [unclosed\n', 't.yaml')).line).toBeDefined();
  });

  it('loads the demo policies, and names the line of a tuple the model refuses', async () => {
    const authorizer = await loadEmbeddedAuthorizer({ modelPath: join(POLICIES, 'model.fga'), tuplesPath: join(POLICIES, 'tuples.yaml') });
    expect(await authorizer.check({ user: 'agent:demo-agent', relation: 'can_call', object: 'api:notes' })).toBe(true);
    expect((await loadTuples(join(POLICIES, 'tuples.yaml'))).length).toBeGreaterThan(10);

    await writeFile(
      join(dir, 'tuples.yaml'),
      '- { user: user:alice, relation: owner, object: doc:1 }\n- { user: group:team, relation: owner, object: doc:1 }\n',
    );
    const err = await loadEmbeddedAuthorizer({ modelPath: join(POLICIES, 'model.fga'), tuplesPath: join(dir, 'tuples.yaml') }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'config_invalid' });
    expect((err as Error).message).toContain(
      `${join(dir, 'tuples.yaml')}:2: tuple 2 (doc:1#owner@group:team): type 'group' is not an allowed type restriction`,
    );
  });
});
