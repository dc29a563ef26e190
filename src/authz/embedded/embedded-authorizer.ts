/**
 * `authz.engine: embedded` — the in-process OpenFGA evaluator behind the
 * `Authorizer` interface. Policy files are read and compiled once per config
 * generation (a reload builds a new authorizer); a check then touches only
 * in-memory indexes, so a warm check costs microseconds.
 */

import { createHash, type Hash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { WardenError } from '../../core/errors.js';
import type { Authorizer, CheckOptions, CheckRequest, ListObjectsRequest, TupleKey } from '../authorizer.js';
import { loadModel, modelRelations, ModelError, parseTuplesYaml, type AuthorizationModel } from '../model.js';
import { fastYamlTupleStream, isJsonLinesPath, jsonLinesTupleStream, NotSimpleYaml } from '../tuple-file.js';
import { createEmbeddedEngine, InvalidStoredTupleError, type EmbeddedEngine } from './engine.js';
import { ConfigError } from '../../config/issues.js';
import { FgaError } from './errors.js';
import { KnownAnswers } from './known-answers.js';

/**
 * Resolution steps (object#relation visits) up to which a check is answered
 * without the decision cache: such a check costs about as much CPU as building
 * a cache key and storing an entry (~2–5 µs at a million tuples), and storing
 * one answer per distinct object fills the young generation with entries that
 * live just long enough to be promoted. Costlier checks (deep or wide graphs)
 * are cached as before. See docs/authorization.md (decision cache).
 */
export const CHEAP_CHECK_STEPS = 32;

/**
 * Cheap answers the authorizer remembers (`checkIfKnown`): at most this many,
 * forgotten all at once when full. Small on purpose: a repeated check (the same
 * agent, route and object on every request) is answered by one table lookup and
 * no evaluation, while a stream of one-off checks (a different document per
 * request) keeps only young, short-lived entries (known-answers.ts: no hash
 * table is replaced, so none is promoted). See docs/authorization.md.
 */
export const KNOWN_ANSWERS = 256;

/** Options of `createEmbeddedAuthorizer`. */
export interface EmbeddedAuthorizerOptions {
  model: AuthorizationModel;
  /** An array, or a reader's stream (consumed once: the tuples go straight into the index). */
  tuples?: Iterable<TupleKey>;
  /** Resolution depth limit; default 25 (OpenFGA's `--resolve-node-limit`). */
  maxDepth?: number;
  /** See `EmbeddedEngineOptions.invalidTuples`; default `error`. */
  invalidTuples?: 'error' | 'ignore';
}

/** The embedded authorizer; `engine` exposes the synchronous evaluator (tests, `warden explain`). */
export interface EmbeddedAuthorizer extends Authorizer {
  readonly engine: 'embedded';
  readonly evaluator: EmbeddedEngine;
  /** A digest of the model and tuples (`sha256:…`, 16 hex digits): names this policy generation in logs and cache keys. */
  readonly modelId: string;
  /** Evaluates in-process: no promise. */
  batchCheckSync(requests: CheckRequest[], options?: CheckOptions): boolean[];
  /**
   * The answer when it takes at most `CHEAP_CHECK_STEPS` resolution steps, else
   * undefined. Always evaluates; an answer of a check without context or
   * contextual tuples is remembered for `checkIfKnown`.
   */
  checkIfCheap(request: CheckRequest): boolean | undefined;
  /** A remembered `checkIfCheap` answer to the same check (no evaluation), else undefined. */
  checkIfKnown(request: CheckRequest): boolean | undefined;
}

/**
 * The fields `checkIfKnown` files an answer under (user, relation, object), or
 * undefined for a check that is never remembered: one with context or
 * contextual tuples, or with a field that is not a string. Only answered checks
 * are stored, and the table compares each field on its own, so a malformed
 * request can never borrow a valid check's answer.
 */
function plainFields(request: CheckRequest): boolean {
  if (request.context !== undefined || request.contextualTuples !== undefined) return false;
  return typeof request.user === 'string' && typeof request.relation === 'string' && typeof request.object === 'string';
}

/**
 * Turns an evaluation failure into the pipeline's error. Every failure fails
 * closed as 503 `authz_unavailable`, like the OpenFGA engine does for a request
 * the server refuses; the OpenFGA code travels in `reason` and `cause`, and the
 * detail stays generic so no policy content reaches the client.
 */
function toWardenError(err: unknown): WardenError {
  if (err instanceof WardenError) return err;
  const reason = err instanceof FgaError ? `fga_${err.code}` : 'fga_internal';
  return new WardenError('authz_unavailable', 'The authorization engine could not evaluate the request', { cause: err, reason });
}

/**
 * Passes `tuples` through, hashing them into `hash` on the way for the policy
 * digest: `object#relation@user[ condition-json]` lines, 64K characters at a
 * time (one JSON string of a million tuples would cost a hundred megabytes at
 * start, and a stream can be read only once).
 */
function* digesting(tuples: Iterable<TupleKey>, hash: Hash): Generator<TupleKey, void, undefined> {
  let chunk = '';
  for (const t of tuples) {
    chunk += `${t.object}#${t.relation}@${t.user}${t.condition ? ' ' + JSON.stringify(t.condition) : ''}\n`;
    if (chunk.length > 65_536) {
      hash.update(chunk);
      chunk = '';
    }
    yield t;
  }
  hash.update(chunk);
}

/**
 * Builds the embedded authorizer from an already-loaded model and tuples.
 * Throws WardenError `config_invalid` when the model does not compile or a
 * tuple is not allowed by the model.
 */
export function createEmbeddedAuthorizer(options: EmbeddedAuthorizerOptions): EmbeddedAuthorizer {
  let evaluator: EmbeddedEngine;
  // `sha256:` and 16 hex digits naming the model and its tuples.
  const hash = createHash('sha256').update(JSON.stringify(options.model));
  try {
    evaluator = createEmbeddedEngine({
      model: options.model,
      tuples: digesting(options.tuples ?? [], hash),
      maxDepth: options.maxDepth,
      invalidTuples: options.invalidTuples,
    });
  } catch (err) {
    // A reader's own errors (a malformed line; a YAML file the line reader cannot read) are the caller's to report.
    if (err instanceof ModelError || err instanceof NotSimpleYaml) throw err;
    throw new WardenError('config_invalid', `authz: ${(err as Error).message}`, { cause: err });
  }
  const relations = modelRelations(options.model);
  const modelId = `sha256:${hash.digest('hex').slice(0, 16)}`;
  let closed = false;
  // Answers of this generation never change (tuples and model are fixed until a reload builds a new authorizer).
  const known = new KnownAnswers(KNOWN_ANSWERS);
  const ensureOpen = (): void => {
    if (closed) throw new WardenError('authz_unavailable', 'The authorization engine is closed', { reason: 'fga_closed' });
  };

  const checkAll = (requests: CheckRequest[]): boolean[] => {
    ensureOpen();
    const out = new Array<boolean>(requests.length);
    try {
      for (let i = 0; i < requests.length; i++) out[i] = evaluator.check(requests[i]);
    } catch (err) {
      throw toWardenError(err);
    }
    return out;
  };

  return {
    engine: 'embedded',
    evaluator,
    modelId,
    async check(request: CheckRequest, _options?: CheckOptions): Promise<boolean> {
      ensureOpen();
      try {
        return evaluator.check(request);
      } catch (err) {
        throw toWardenError(err);
      }
    },
    async batchCheck(requests: CheckRequest[], _options?: CheckOptions): Promise<boolean[]> {
      return checkAll(requests);
    },
    batchCheckSync: (requests: CheckRequest[], _options?: CheckOptions): boolean[] => checkAll(requests),
    checkIfCheap(request: CheckRequest): boolean | undefined {
      ensureOpen();
      let answer: boolean | undefined;
      try {
        answer = evaluator.checkWithin(request, CHEAP_CHECK_STEPS);
      } catch (err) {
        throw toWardenError(err);
      }
      if (answer !== undefined && plainFields(request)) known.set(request.user, request.relation, request.object, answer);
      return answer;
    },
    checkIfKnown(request: CheckRequest): boolean | undefined {
      if (closed) return undefined; // checkIfCheap then fails closed
      return plainFields(request) ? known.get(request.user, request.relation, request.object) : undefined;
    },
    async listObjects(request: ListObjectsRequest, _options?: CheckOptions): Promise<string[]> {
      ensureOpen();
      try {
        return evaluator.listObjects(request);
      } catch (err) {
        throw toWardenError(err);
      }
    },
    relations: () => relations,
    async ready(): Promise<void> {
      ensureOpen();
    },
    async close(): Promise<void> {
      closed = true;
      known.clear();
    },
  };
}

/** Files of the embedded engine, as `authz.model` / `authz.tuples` name them. */
export interface EmbeddedPolicyFiles {
  /** `authz.invalid_tuples`: refuse the files (default) or skip tuples the model does not allow. */
  invalidTuples?: 'error' | 'ignore';
  /** `model.fga`, `fga.mod` or a JSON model. */
  modelPath: string;
  /** `tuples.yaml`; optional (a model with no stored tuples is valid). */
  tuplesPath?: string;
  maxDepth?: number;
}

/**
 * Loads `policies/` and builds the authorizer. Errors are WardenError
 * `config_invalid` naming the file and line (model syntax and validation
 * errors, malformed tuples, tuples the model does not allow).
 */
export async function loadEmbeddedAuthorizer(files: EmbeddedPolicyFiles): Promise<EmbeddedAuthorizer> {
  let model: AuthorizationModel;
  let text = '';
  try {
    model = await loadModel(files.modelPath);
    if (files.tuplesPath) text = await readTuplesText(files.tuplesPath);
  } catch (err) {
    throw fromModelError(err);
  }
  const tuplesPath = files.tuplesPath;
  const build = (tuples: Iterable<TupleKey>, lines: readonly (number | undefined)[]): EmbeddedAuthorizer => {
    try {
      return createEmbeddedAuthorizer({ model, tuples, maxDepth: files.maxDepth, invalidTuples: files.invalidTuples });
    } catch (err) {
      throw located(err, files.modelPath, tuplesPath, lines);
    }
  };
  if (!tuplesPath) return build([], []);
  // Tuples go from the file's lines straight into the index (no array of a million tuple objects).
  const lines: number[] = [];
  try {
    if (isJsonLinesPath(tuplesPath)) {
      const fail = (message: string, line: number): never => {
        throw new ModelError(tuplesPath, message, { line });
      };
      return build(jsonLinesTupleStream(text, fail, lines), lines);
    }
    return build(fastYamlTupleStream(text, lines), lines);
  } catch (err) {
    if (err instanceof ModelError) throw fromModelError(err);
    if (!(err instanceof NotSimpleYaml)) throw err;
  }
  // Not one flow map per line: the YAML parser reads the file (what the line reader must agree with).
  let parsed: { tuples: TupleKey[]; lines: (number | undefined)[] };
  try {
    parsed = parseTuplesYaml(text, tuplesPath);
  } catch (err) {
    throw fromModelError(err);
  }
  return build(parsed.tuples, parsed.lines);
}

async function readTuplesText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ModelError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {}, err);
  }
}

/** A model or tuples file error as `config_invalid` naming the file and line. */
function fromModelError(err: unknown): unknown {
  if (err instanceof ModelError) return new WardenError('config_invalid', `authz: ${err.message}`, { cause: err, extra: { file: err.file, line: err.line } });
  return err;
}

/** An error of building the authorizer, with every refused tuple's line in the tuples file. */
function located(err: unknown, modelPath: string, tuplesPath: string | undefined, lines: readonly (number | undefined)[]): unknown {
  if (err instanceof ModelError || err instanceof NotSimpleYaml) return err;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof InvalidStoredTupleError && tuplesPath) {
    // Every refused tuple, each with its line in the tuples file.
    const at = (e: InvalidStoredTupleError) => {
      const line = lines[e.index];
      return `${line === undefined ? tuplesPath : `${tuplesPath}:${line}`}: ${e.message}`;
    };
    const error = new ConfigError(
      tuplesPath,
      [cause, ...cause.more].map((e) => ({ path: 'authz.tuples', message: at(e) })),
    );
    return Object.assign(error, { cause });
  }
  if (err instanceof WardenError) {
    return new WardenError('config_invalid', `authz: ${modelPath}: ${(cause as Error)?.message ?? err.message}`, { cause: err });
  }
  return err;
}
