/**
 * Runs OpenFGA model tests in the `fga model test` store-file format
 * (`*.fga.yaml`: `model`/`model_file`, `tuples`/`tuple_file`/`tuple_files`,
 * `tests[]` with `check` and `list_objects` assertions) against any
 * `Authorizer`, so the same file tests the embedded engine and a real server.
 */

import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Authorizer, TupleKey } from '../../src/authz/authorizer.js';
import { loadModel, parseModelDsl, parseTuples, type AuthorizationModel } from '../../src/authz/model.js';

/** One `check` entry of a test. */
export interface StoreFileCheck {
  user?: string;
  users?: string[];
  object?: string;
  objects?: string[];
  context?: Record<string, unknown>;
  assertions: Record<string, boolean>;
}

/** One `list_objects` entry of a test. */
export interface StoreFileListObjects {
  user: string;
  type: string;
  context?: Record<string, unknown>;
  assertions: Record<string, string[] | null>;
}

/** One named test of a store file. */
export interface StoreFileTest {
  name: string;
  description?: string;
  tuples: TupleKey[];
  check: StoreFileCheck[];
  listObjects: StoreFileListObjects[];
}

/** A parsed store file with its model and tuples resolved. */
export interface StoreFile {
  name: string;
  path: string;
  model: AuthorizationModel;
  tuples: TupleKey[];
  tests: StoreFileTest[];
}

/** The outcome of one assertion. */
export interface ModelTestResult {
  test: string;
  kind: 'check' | 'list_objects';
  /** e.g. `user:alice can_read doc:1` or `user:alice can_read doc`. */
  query: string;
  expected: unknown;
  actual: unknown;
  passed: boolean;
}

const TOP_KEYS = new Set(['name', 'model', 'model_file', 'tuples', 'tuple_file', 'tuple_files', 'tests']);
const TEST_KEYS = new Set(['name', 'description', 'tuples', 'tuple_file', 'tuple_files', 'check', 'list_objects', 'list_users']);

function fail(path: string, message: string): never {
  throw new Error(`${path}: ${message}`);
}

async function readTupleFile(storePath: string, file: string): Promise<TupleKey[]> {
  const path = resolve(dirname(storePath), file);
  const text = await readFile(path, 'utf8');
  if (extname(path) === '.json') return (JSON.parse(text) as TupleKey[]) ?? [];
  if (extname(path) === '.csv') fail(path, 'CSV tuple files are not supported here; use YAML or JSON');
  return parseTuples(text, path);
}

async function collectTuples(storePath: string, node: Record<string, unknown>, where: string): Promise<TupleKey[]> {
  const out: TupleKey[] = [];
  if (node.tuple_file !== undefined) out.push(...(await readTupleFile(storePath, String(node.tuple_file))));
  if (node.tuple_files !== undefined) {
    if (!Array.isArray(node.tuple_files)) fail(storePath, `${where}.tuple_files must be a list`);
    for (const f of node.tuple_files) out.push(...(await readTupleFile(storePath, String(f))));
  }
  if (node.tuples !== undefined && node.tuples !== null) {
    if (!Array.isArray(node.tuples)) fail(storePath, `${where}.tuples must be a list`);
    out.push(...(node.tuples as TupleKey[]));
  }
  return out;
}

/** Reads a store file and everything it references (paths relative to the file). */
export async function loadStoreFile(path: string): Promise<StoreFile> {
  const doc = parseYaml(await readFile(path, 'utf8')) as Record<string, unknown>;
  if (!doc || typeof doc !== 'object') fail(path, 'not a store file');
  for (const key of Object.keys(doc)) if (!TOP_KEYS.has(key)) fail(path, `unknown key "${key}"`);
  let model: AuthorizationModel;
  if (typeof doc.model_file === 'string') model = await loadModel(resolve(dirname(path), doc.model_file));
  else if (typeof doc.model === 'string') model = parseModelDsl(doc.model, path);
  else fail(path, 'needs model or model_file');
  const tuples = await collectTuples(path, doc, 'store');
  if (!Array.isArray(doc.tests)) fail(path, 'needs a tests list');
  const tests: StoreFileTest[] = [];
  for (const [i, raw] of (doc.tests as Record<string, unknown>[]).entries()) {
    const where = `tests[${i}]`;
    for (const key of Object.keys(raw)) if (!TEST_KEYS.has(key)) fail(path, `${where}: unknown key "${key}"`);
    if (raw.list_users !== undefined) fail(path, `${where}: list_users assertions are not supported (Warden's Authorizer has no listUsers)`);
    const check = (raw.check ?? []) as StoreFileCheck[];
    const listObjects = (raw.list_objects ?? []) as StoreFileListObjects[];
    check.forEach((c, j) => {
      if ((!c.user && !c.users?.length) || (!c.object && !c.objects?.length) || !c.assertions)
        fail(path, `${where}.check[${j}] needs user(s), object(s) and assertions`);
    });
    listObjects.forEach((l, j) => {
      if (!l.user || !l.type || !l.assertions) fail(path, `${where}.list_objects[${j}] needs user, type and assertions`);
    });
    tests.push({
      name: String(raw.name ?? where),
      description: raw.description === undefined ? undefined : String(raw.description),
      tuples: await collectTuples(path, raw, where),
      check,
      listObjects,
    });
  }
  return { name: String(doc.name ?? path), path, model, tuples, tests };
}

/**
 * Builds an authorizer for one test (store tuples plus the test's own tuples).
 * The embedded runner creates an engine; a server runner writes a fresh store.
 */
export type AuthorizerFactory = (model: AuthorizationModel, tuples: TupleKey[]) => Promise<Authorizer>;

function errorText(err: unknown): string {
  const e = err as { message?: string; reason?: string; cause?: { message?: string } };
  return `error: ${e.message ?? String(err)}${e.reason ? ` [${e.reason}]` : ''}${e.cause?.message ? ` (${e.cause.message})` : ''}`;
}

/** Runs every assertion of every test; never throws for a failed assertion (inspect `passed`). */
export async function runModelTests(store: StoreFile, makeAuthorizer: AuthorizerFactory): Promise<ModelTestResult[]> {
  const results: ModelTestResult[] = [];
  for (const test of store.tests) {
    const authorizer = await makeAuthorizer(store.model, [...store.tuples, ...test.tuples]);
    try {
      for (const c of test.check) {
        for (const user of c.users ?? [c.user as string]) {
          for (const object of c.objects ?? [c.object as string]) {
            for (const [relation, expected] of Object.entries(c.assertions)) {
              let actual: unknown;
              try {
                actual = await authorizer.check({ user, relation, object, context: c.context });
              } catch (err) {
                actual = errorText(err);
              }
              results.push({ test: test.name, kind: 'check', query: `${user} ${relation} ${object}`, expected, actual, passed: actual === expected });
            }
          }
        }
      }
      for (const l of test.listObjects) {
        for (const [relation, expectedRaw] of Object.entries(l.assertions)) {
          const expected = [...(expectedRaw ?? [])].sort();
          let actual: unknown;
          try {
            actual = (await authorizer.listObjects({ user: l.user, relation, type: l.type, context: l.context })).sort();
          } catch (err) {
            actual = errorText(err);
          }
          results.push({
            test: test.name,
            kind: 'list_objects',
            query: `${l.user} ${relation} ${l.type}`,
            expected,
            actual,
            passed: JSON.stringify(actual) === JSON.stringify(expected),
          });
        }
      }
    } finally {
      await authorizer.close();
    }
  }
  return results;
}

/** Human-readable lines for the failed results (empty when all passed). */
export function failedModelTests(results: ModelTestResult[]): string[] {
  return results
    .filter((r) => !r.passed)
    .map((r) => `${r.test}: ${r.kind} ${r.query}: expected ${JSON.stringify(r.expected)}, got ${JSON.stringify(r.actual)}`);
}
