/**
 * Loads OpenFGA authorization models (`model.fga` DSL, modular `fga.mod`, or
 * the JSON API shape) and relationship tuples (`tuples.yaml`) from disk. Both
 * engines consume the same JSON `AuthorizationModel`, so what the embedded
 * evaluator answers from is exactly what `warden fga push` writes.
 */

import { readFile } from 'node:fs/promises';
import { dirname, resolve, basename, extname } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import syntaxTransformer from '@openfga/syntax-transformer';
import type { TupleKey } from './authorizer.js';
import { fastYamlTuples, isJsonLinesPath, jsonLinesTuples, tupleFromValue } from './tuple-file.js';

const { transformer, validator } = syntaxTransformer;

/** A type restriction such as `user`, `user:*`, `group#member` or `user with cond`. */
export interface RelationReference {
  type: string;
  relation?: string;
  wildcard?: Record<string, never>;
  condition?: string;
}

/** A relation's rewrite, in OpenFGA's JSON API shape (exactly one member is set). */
export interface Userset {
  this?: Record<string, never>;
  computedUserset?: { object?: string; relation: string };
  tupleToUserset?: { tupleset: { object?: string; relation: string }; computedUserset: { object?: string; relation: string } };
  union?: { child: Userset[] };
  intersection?: { child: Userset[] };
  difference?: { base: Userset; subtract: Userset };
}

/** One `type` block of a model. */
export interface TypeDefinition {
  type: string;
  relations?: Record<string, Userset>;
  metadata?: {
    relations?: Record<string, { directly_related_user_types?: RelationReference[]; module?: string }> | null;
    module?: string;
    source_info?: unknown;
  } | null;
}

/** A condition parameter type: `int`, `list<string>`, `map<int>`, `ipaddress`, ... */
export interface ConditionParamTypeRef {
  type_name: string;
  generic_types?: ConditionParamTypeRef[];
}

/** A named CEL condition of the model. */
export interface ConditionDefinition {
  name: string;
  expression: string;
  parameters?: Record<string, ConditionParamTypeRef>;
  metadata?: unknown;
}

/** An authorization model as OpenFGA's `WriteAuthorizationModel` API takes it. */
export interface AuthorizationModel {
  schema_version: string;
  type_definitions: TypeDefinition[];
  conditions?: Record<string, ConditionDefinition>;
}

/** A model or tuples file that cannot be used; carries the file and, where known, the 1-based line. */
export class ModelError extends Error {
  readonly file: string;
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(file: string, message: string, position: { line?: number; column?: number } = {}, cause?: unknown) {
    const where = position.line === undefined ? file : `${file}:${position.line}${position.column === undefined ? '' : `:${position.column}`}`;
    super(`${where}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'ModelError';
    this.file = file;
    this.line = position.line;
    this.column = position.column;
  }
}

interface TransformerErrorShape {
  message?: string;
  errors?: Array<{ msg?: string; message?: string; line?: { start: number }; column?: { start: number }; file?: string }>;
  line?: { start: number };
  column?: { start: number };
}

/** Turns the syntax transformer's (zero-based) error positions into a ModelError. */
function transformerError(file: string, err: unknown): ModelError {
  const e = err as TransformerErrorShape;
  const first = e?.errors?.[0] ?? e;
  const msgs = e?.errors?.length ? e.errors.map((x) => x.msg ?? x.message ?? String(x)) : [String(e?.message ?? err)];
  const line = first?.line?.start;
  const column = first?.column?.start;
  const inFile = (first as { file?: string })?.file;
  return new ModelError(
    inFile ? resolve(dirname(file), inFile) : file,
    msgs.join('; '),
    { line: typeof line === 'number' ? line + 1 : undefined, column: typeof column === 'number' ? column + 1 : undefined },
    err,
  );
}

/** Errors the validator raises on purpose; anything else is a crash inside the validator itself. */
function isValidationError(err: unknown): boolean {
  const name = (err as { constructor?: { name?: string } })?.constructor?.name ?? '';
  return /Validation|Syntax|Transformation/.test(name);
}

/**
 * Parses a model in the FGA DSL. Semantic validation uses the transformer's
 * validator; a crash inside the validator (it throws TypeError on some valid
 * models, e.g. conditioned tuple-to-userset parents) is not taken as a verdict —
 * the embedded engine checks the references it needs when it compiles the model.
 */
export function parseModelDsl(dsl: string, file = '<inline>'): AuthorizationModel {
  let model: AuthorizationModel;
  try {
    model = transformer.transformDSLToJSONObject(dsl) as unknown as AuthorizationModel;
  } catch (err) {
    throw transformerError(file, err);
  }
  try {
    validator.validateDSL(dsl);
  } catch (err) {
    if (isValidationError(err)) throw transformerError(file, err);
  }
  return normalizeModel(model);
}

/** Parses an `fga.mod` manifest and its module files (paths relative to the manifest). */
export async function loadModularModel(modPath: string): Promise<AuthorizationModel> {
  const text = await readText(modPath);
  let mod: ReturnType<typeof transformer.transformModFileToJSON>;
  try {
    mod = transformer.transformModFileToJSON(text);
  } catch (err) {
    throw transformerError(modPath, err);
  }
  const dir = dirname(modPath);
  const files = await Promise.all(mod.contents.value.map(async (entry) => ({ name: entry.value, contents: await readText(resolve(dir, entry.value)) })));
  try {
    return normalizeModel(transformer.transformModuleFilesToModel(files, mod.schema.value) as unknown as AuthorizationModel);
  } catch (err) {
    throw transformerError(modPath, err);
  }
}

/** `fga.mod` (or any `*.mod`): a modular model's manifest. */
function isManifest(path: string): boolean {
  return basename(path) === 'fga.mod' || extname(path) === '.mod';
}

/**
 * The files a model is read from: the file itself and, for an `fga.mod`, its
 * module files (what `server.watch` watches). A manifest that cannot be read
 * or parsed names only itself: fixing it is the change to watch for.
 */
export async function modelFiles(path: string): Promise<string[]> {
  if (!isManifest(path)) return [path];
  try {
    const mod = transformer.transformModFileToJSON(await readText(path));
    return [path, ...mod.contents.value.map((entry) => resolve(dirname(path), entry.value))];
  } catch {
    return [path];
  }
}

/**
 * Loads a model by file name: `fga.mod` (or any `*.mod`) is a modular model,
 * `*.json` is the API's JSON shape, anything else is DSL.
 */
export async function loadModel(path: string): Promise<AuthorizationModel> {
  if (isManifest(path)) return loadModularModel(path);
  const text = await readText(path);
  if (extname(path) === '.json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ModelError(path, `invalid JSON: ${(err as Error).message}`, {}, err);
    }
    const model = parsed as AuthorizationModel;
    if (!model || typeof model !== 'object' || !Array.isArray(model.type_definitions)) {
      throw new ModelError(path, 'not an authorization model (type_definitions missing)');
    }
    return normalizeModel({ schema_version: model.schema_version ?? '1.1', type_definitions: model.type_definitions, conditions: model.conditions });
  }
  return parseModelDsl(text, path);
}

/** Drops empty members the transformer emits (`metadata: null`, empty conditions) so both engines see one shape. */
function normalizeModel(model: AuthorizationModel): AuthorizationModel {
  const out: AuthorizationModel = {
    schema_version: model.schema_version,
    type_definitions: model.type_definitions.map((td) => {
      const def: TypeDefinition = { type: td.type, relations: td.relations ?? {} };
      if (td.metadata) def.metadata = td.metadata;
      return def;
    }),
  };
  if (model.conditions && Object.keys(model.conditions).length > 0) out.conditions = model.conditions;
  return out;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {}, err);
  }
}

/**
 * Parses `tuples.yaml`: a YAML list of `{user, relation, object, condition?:
 * {name, context?}}`. Every problem is reported with its line; the first one
 * is thrown (the model decides later whether a well-formed tuple is allowed).
 * A `file` ending in `.jsonl`/`.ndjson` is read as JSON Lines instead (one
 * such object per line; see tuple-file.ts).
 */
export function parseTuples(text: string, file = '<inline>'): TupleKey[] {
  return parseTuplesWithLines(text, file).tuples;
}

/** Like `parseTuples`, also returning each tuple's 1-based line (for error messages). */
export function parseTuplesWithLines(text: string, file = '<inline>'): { tuples: TupleKey[]; lines: (number | undefined)[] } {
  if (isJsonLinesPath(file)) {
    return jsonLinesTuples(text, (message, line) => {
      throw new ModelError(file, message, { line });
    });
  }
  // One flow map per line (large generated files): read without building a YAML document.
  return fastYamlTuples(text) ?? parseTuplesYaml(text, file);
}

/** The YAML parser's reading of a tuples file (what `fastYamlTuples` must agree with, line for line). */
export function parseTuplesYaml(text: string, file = '<inline>'): { tuples: TupleKey[]; lines: (number | undefined)[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  const lineOf = (node: YamlNode | null | undefined): number | undefined => (node?.range ? lineCounter.linePos(node.range[0]).line : undefined);
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new ModelError(file, e.message.split('\n')[0], { line: e.linePos?.[0]?.line, column: e.linePos?.[0]?.col });
  }
  const root = doc.contents;
  if (root === null || root === undefined) return { tuples: [], lines: [] };
  if (!isSeq(root)) throw new ModelError(file, 'expected a YAML list of tuples', { line: lineOf(root as YamlNode) });
  const out: TupleKey[] = [];
  const lines: (number | undefined)[] = [];
  root.items.forEach((item, index) => {
    const line = lineOf(item as YamlNode);
    lines.push(line);
    const fail = (msg: string): never => {
      throw new ModelError(file, `tuple ${index + 1}: ${msg}`, { line });
    };
    if (!isMap(item)) fail('expected a map with user, relation, object');
    out.push(tupleFromValue((item as YamlNode).toJSON() as Record<string, unknown>, fail));
  });
  return { tuples: out, lines };
}

/** Reads and parses a `tuples.yaml` file (see `parseTuples`). */
export async function loadTuples(path: string): Promise<TupleKey[]> {
  return parseTuples(await readText(path), path);
}

/** The types of a model and the relations each defines (for load-time validation of routes). */
export function modelRelations(model: AuthorizationModel): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const td of model.type_definitions) out.set(td.type, new Set(Object.keys(td.relations ?? {})));
  return out;
}

/** Reads `tuples.yaml` keeping each tuple's line, so later model errors can point at it. */
export async function loadTuplesWithLines(path: string): Promise<{ tuples: TupleKey[]; lines: (number | undefined)[] }> {
  return parseTuplesWithLines(await readText(path), path);
}
