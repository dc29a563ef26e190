/**
 * Reads gateway.yaml: YAML → `${VAR}` substitution in string values → strict
 * schema → the checks the caller passes (gateway/config.ts passes the config's
 * own and every feature's). Every problem is collected with its YAML path and
 * line, and reported at once (`ConfigError`). Imports no feature.
 */

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { ConfigError, formatPath, parsePath, type ConfigCheck, type ConfigIssue } from './issues.js';
import { applyEnvOverrides } from './env-overrides.js';
import { closest, decisionLogHints, keysAt, routeHints } from './hints.js';
import { gatewayJsonSchema } from './reference.js';

/** A loaded configuration and where it came from. */
export interface LoadedConfig {
  readonly config: Config;
  readonly file: string;
  /** Directory relative paths in the config (policies, tuples) resolve against. */
  readonly baseDir: string;
  /** Line of a YAML path, for later checks that need to point at the file. */
  lineOf(path: ReadonlyArray<string | number>): number | undefined;
}

const VAR = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replace `${VAR}` in every string value of `doc`; an unset variable is an issue at its path. */
export function substitute(doc: Document, env: NodeJS.ProcessEnv, issues: ConfigIssue[], lineOf: (n: Node) => number | undefined) {
  const walk = (node: unknown, path: Array<string | number>) => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      node.value = node.value.replace(VAR, (whole, name: string | undefined, fallback: string | undefined) => {
        if (whole === '$${') return '${';
        const value = env[name as string];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        issues.push({ path: formatPath(path), line: lineOf(node), message: `environment variable ${name} is not set` });
        return '';
      });
    }
  };
  walk(doc.contents, []);
}

export interface ParseOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  baseDir?: string;
  /** Checks over the schema-valid config (cross-field and per feature). */
  checks?: readonly ConfigCheck[];
}

/** Parse and validate config text. Throws ConfigError with every problem. */
export function parseConfig(text: string, options: ParseOptions = {}): LoadedConfig {
  const file = options.file ?? 'gateway.yaml';
  const env = options.env ?? process.env;
  const { doc, lineAt, lineOfNode, lineOf } = lineTools(text);

  const issues: ConfigIssue[] = yamlSyntaxIssues(doc.errors, lineAt, text);
  if (issues.length) throw new ConfigError(file, issues);

  substitute(doc, env, issues, lineOfNode);
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(file, [{ path: '', message: 'the file must be a YAML mapping' }]);
  applyEnvOverrides(raw, env, issues);
  for (const hint of [...routeHints(raw), ...decisionLogHints(raw)]) issues.push({ ...hint, line: lineOf(parsePath(hint.path)) });

  const baseDir = options.baseDir ?? dirname(resolve(file));
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    // One problem per path: a missing variable or a hint already explains what the schema would repeat.
    const explained = new Set(issues.map((i) => i.path));
    for (const issue of zodIssues(parsed.error, lineOf)) {
      if (explained.has(issue.path)) continue;
      explained.add(issue.path);
      issues.push(issue);
    }
    // Every problem in one run: the cross-checks also run, over the config
    // with the offending values left out (when that makes it schema-valid);
    // what they say about a path already reported, or under or above one, is dropped.
    const partial = withoutInvalid(raw, parsed.error);
    if (!partial) throw new ConfigError(file, issues);
    const reported = issues.map((i) => i.path);
    for (const check of options.checks ?? []) {
      for (const issue of check(partial, env)) {
        if (!related(reported, issue.path)) issues.push({ ...issue, line: issue.line ?? lineOf(parsePath(issue.path)) });
      }
    }
    const error = new ConfigError(file, issues);
    error.partial = { config: deepFreeze(partial), baseDir, lineOf };
    throw error;
  }
  const config = parsed.data as Config;
  // Problems found before the schema (unset variables, hints) do not stop the cross-checks either.
  const reported = issues.map((i) => i.path);
  for (const check of options.checks ?? []) {
    for (const issue of check(config, env)) {
      if (!related(reported, issue.path)) issues.push({ ...issue, line: issue.line ?? lineOf(parsePath(issue.path)) });
    }
  }
  if (issues.length) {
    // Schema-valid: `warden validate` checks the policies against it, also when
    // only the cross-checks failed (one run reports everything).
    const error = new ConfigError(file, issues);
    error.partial = { config: deepFreeze(config), baseDir, lineOf };
    throw error;
  }
  // The loaded config outlives this call (a whole config generation): it must not hold the YAML document.
  return { config: deepFreeze(config), file, baseDir, lineOf: lazyLineOf(text) };
}

/** The YAML document of `text` and the lines of its nodes and paths. */
function lineTools(text: string) {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : counter.linePos(offset).line);
  const lineOfNode = (n: Node) => lineAt(n.range?.[0]);
  const lineOf = (path: ReadonlyArray<string | number>) => {
    for (let len = path.length; len >= 0; len--) {
      const node = doc.getIn(path.slice(0, len), true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node) return lineOfNode(node);
    }
    return undefined;
  };
  return { doc, lineAt, lineOfNode, lineOf };
}

/**
 * `lineOf` for a config that loaded, without keeping its YAML document: the
 * document (every node, pair and range of the file: ~2.5 KB per route, 5 MB
 * for 2,000 routes, #17) is parsed again from the text when a line is asked
 * for (only on error paths: a policy name the model lacks, `warden validate`)
 * and then held weakly. Same lines: `${VAR}` substitution changes values, not
 * keys or positions.
 */
function lazyLineOf(text: string): LoadedConfig['lineOf'] {
  let held: WeakRef<LoadedConfig['lineOf']> | undefined;
  return (path) => {
    let lineOf = held?.deref();
    if (!lineOf) {
      lineOf = lineTools(text).lineOf;
      held = new WeakRef(lineOf);
    }
    return lineOf(path);
  };
}

/** Whether `path` is one of `reported`, or inside or around one (then its problem is already said). */
function related(reported: readonly string[], path: string): boolean {
  const inside = (a: string, b: string) => a.startsWith(b + '.') || a.startsWith(b + '[');
  return reported.some((r) => r === path || inside(path, r) || inside(r, path) || r === '');
}

/**
 * `raw` with what the schema refused left out: unknown keys dropped, invalid
 * values removed (so their defaults apply; an element of a list of values
 * takes its whole list). A few rounds, since leaving one thing out can expose
 * another. Undefined when that does not give a schema-valid config, e.g. when
 * a required key is missing or a whole route would have to go.
 */
function withoutInvalid(raw: object, first: z.ZodError): Config | undefined {
  const copy = structuredClone(raw) as Record<string, unknown>;
  let error = first;
  for (let round = 0; round < 5; round++) {
    let changed = false;
    for (const issue of error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) changed = remove(copy, [...path, key]) || changed;
        continue;
      }
      // An invalid list element: leave the whole list out (indices elsewhere stay right).
      let at = path;
      while (at.length && typeof at[at.length - 1] === 'number') at = at.slice(0, -1);
      // Never leave out a whole route (or the routes list): later paths would name the wrong one.
      if (at.length <= 2 && at[0] === 'routes') return undefined;
      changed = remove(copy, at) || changed;
    }
    if (!changed) return undefined;
    const again = configSchema.safeParse(copy);
    if (again.success) return again.data as Config;
    error = again.error;
  }
  return undefined;
}

/** Delete the value at `path` in `obj`; false when there was none. */
function remove(obj: Record<string, unknown>, path: ReadonlyArray<string | number>): boolean {
  if (path.length === 0) return false;
  let node: unknown = obj;
  for (const p of path.slice(0, -1)) {
    if (!node || typeof node !== 'object') return false;
    node = (node as Record<string | number, unknown>)[p];
  }
  const last = path[path.length - 1];
  if (!node || typeof node !== 'object' || !(last in (node as object))) return false;
  if (Array.isArray(node) && typeof last === 'number') node.splice(last, 1);
  else delete (node as Record<string | number, unknown>)[last];
  return true;
}

/** Read and validate a gateway.yaml file. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, checks?: readonly ConfigCheck[]): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  return parseConfig(text, { file, env, baseDir: dirname(resolve(file)), checks });
}

function zodIssues(error: z.ZodError, lineOf: (p: ReadonlyArray<string | number>) => number | undefined): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: formatPath([...path, key]), line: lineOf([...path, key]), message: unknownKey(path, key) });
      continue;
    }
    if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors)) {
      // Report the branch that got furthest rather than "invalid input".
      const branches = (issue.errors as Array<Array<{ path: PropertyKey[]; message: string; code: string; keys?: string[] }>>)
        .map((b) => b)
        .sort((a, b) => a.length - b.length);
      const best = branches.find((b) => b.every((x) => x.code !== 'invalid_type' || x.path.length > 0)) ?? branches[0];
      if (best && best.length) {
        for (const sub of best) {
          const full = [...path, ...sub.path.filter((p): p is string | number => typeof p !== 'symbol')];
          if (sub.code === 'unrecognized_keys' && sub.keys) {
            for (const key of sub.keys) out.push({ path: formatPath([...full, key]), line: lineOf([...full, key]), message: unknownKey(full, key) });
          } else out.push({ path: formatPath(full), line: lineOf(full), message: sub.message });
        }
        continue;
      }
    }
    out.push({ path: formatPath(path), line: lineOf(path), message: issue.message });
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

let jsonSchema: Record<string, unknown> | undefined;
/** "unknown key", with the closest allowed key at that place when it looks like a typo. */
function unknownKey(path: ReadonlyArray<string | number>, key: string): string {
  jsonSchema ??= gatewayJsonSchema() as Record<string, unknown>;
  const allowed = keysAt(jsonSchema, path);
  const suggestion = closest(key, allowed);
  return suggestion ? `unknown key — did you mean ${suggestion}?` : 'unknown key';
}

/**
 * YAML syntax errors with the line a person must fix: for a key indented
 * deeper than its siblings the parser reports the line above, where the
 * implicit key started, so point at the end of the multi-line key instead and
 * drop the duplicate report of the same place.
 */
function yamlSyntaxIssues(
  errors: ReadonlyArray<{ code: string; pos: [number, number]; message: string }>,
  lineAt: (offset: number | undefined) => number | undefined,
  text: string,
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const multiline = new Set(errors.filter((e) => e.code === 'MULTILINE_IMPLICIT_KEY').map((e) => e.pos[0]));
  const lines = text.split('\n');
  const explained = new Set<number>();
  for (const e of errors) {
    const line = lineAt(e.pos?.[0]);
    // `{ secret: ${X} }`: the `{` of `${` ends a plain scalar in a flow collection; one issue saying so, not the parser's cascade.
    if (line !== undefined && unquotedVariableInFlow(lines[line - 1] ?? '')) {
      if (!explained.has(line)) {
        explained.add(line);
        out.push({ path: '', line, message: 'a ${VAR} inside { … } or [ … ] must be quoted ("${VAR}"): YAML reads its braces as the collection’s own' });
      }
      continue;
    }
    const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    if (e.code === 'BLOCK_AS_IMPLICIT_KEY' && multiline.has(e.pos[0])) continue;
    if (e.code === 'MULTILINE_IMPLICIT_KEY') {
      out.push({
        path: '',
        line: lineAt(e.pos[1]),
        message: `${message}: this line is indented deeper than the key above it (YAML reads it as part of that value)`,
      });
      continue;
    }
    out.push({ path: '', line, message });
  }
  return out;
}

/** Whether `line` has an unquoted `${` after a `{` or `[` (quoted strings left out). */
function unquotedVariableInFlow(line: string): boolean {
  const bare = line.replace(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'/g, '""').replace(/\s#.*$/, '');
  const flow = bare.search(/[{[]/);
  return flow >= 0 && bare.indexOf('${', flow) > flow;
}
