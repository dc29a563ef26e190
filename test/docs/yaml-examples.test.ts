/**
 * Every ```yaml example of README.md, CONTRIBUTING.md and docs/*.md is read
 * as what it shows: a gateway.yaml (whole, or a fragment such as one section
 * or one route) against the config schema, complete configs also through
 * every cross-check; a tuples file and a model-test file with the readers
 * Warden uses for them. A renamed key, a wrong type or an invalid enum value
 * in an example fails here with the page, the line and the key path.
 */

import { describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, stringify } from 'yaml';
import type { z } from 'zod';
import { parseTuples } from '../../src/authz/model.js';
import { ConfigError, formatPath, parsePath } from '../../src/config/issues.js';
import { configSchema, routeSchema } from '../../src/config/schema.js';
import { parseConfig } from '../../src/gateway/config.js';
import { readPolicyTestFile } from '../../src/gateway/policy-tests.js';
import { REPO_ROOT } from '../support/gateway.js';

/**
 * Blocks that are no file Warden reads, each named by its page and first
 * line. They must still be valid YAML. Every entry must match one block.
 */
const NOT_CHECKED = [
  { page: 'docs/observability.md', first: '# prometheus.yml', reason: "Prometheus's own scrape config, not a file Warden reads" },
  {
    page: 'docs/configuration.md',
    first: '# yaml-language-server: $schema=./gateway.schema.json',
    reason: 'the editor modeline alone (generated page; config-reference.test.ts checks it)',
  },
];

const PAGES = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

type Path = Array<string | number>;

/** One fenced block: `lines[i]` is line `fence + 1 + i` of the page. */
interface Block {
  page: string;
  fence: number;
  lines: string[];
  /** It had a `...` / `…` line standing for left-out keys: a fragment, never complete. */
  elided: boolean;
}

const at = (block: Block, lineInBlock: number) => `${block.page}:${block.fence + lineInBlock}`;

/** The ```yaml blocks of a page, dedented, with `...` / `…` lines blanked. */
function yamlBlocks(page: string): Block[] {
  const lines = readFileSync(join(REPO_ROOT, page), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*(`{3,}|~{3,})\s*([^\s`~]*)/.exec(lines[i]);
    if (!open) continue;
    const [, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !(lines[end].trim().startsWith(fence) && /^(`+|~+)$/.test(lines[end].trim()))) end++;
    if (/^ya?ml$/i.test(lang)) {
      let body = lines.slice(i + 1, end);
      const indent = Math.min(...body.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
      body = body.map((l) => l.slice(Math.min(indent, /^ */.exec(l)![0].length)));
      const ellipsis = /^\s*(\.\.\.|…)\s*(#.*)?$/;
      out.push({ page, fence: i + 1, lines: body.map((l) => (ellipsis.test(l) ? '' : l)), elided: body.some((l) => ellipsis.test(l)) });
    }
    i = end;
  }
  return out;
}

const BLOCKS = PAGES.flatMap(yamlBlocks);

/** A YAML document of block text with the page line of any path in it. */
function yamlDocument(block: Block, text = block.lines.join('\n')) {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const lineOfOffset = (offset: number) => counter.linePos(offset).line;
  /** The line of the key (or list item) a path ends at; else of the nearest enclosing one. */
  const lineOf = (path: Path): number => {
    for (let len = path.length; len > 0; len--) {
      const parent = doc.getIn(path.slice(0, len - 1), true);
      const last = path[len - 1];
      if (isMap(parent)) {
        const pair = parent.items.find((p) => String((p.key as { value?: unknown })?.value ?? p.key) === String(last));
        const node = pair?.key as { range?: [number, number] } | undefined;
        if (node?.range) return lineOfOffset(node.range[0]);
      }
      if (isSeq(parent) && typeof last === 'number') {
        const node = parent.items[last] as { range?: [number, number] } | undefined;
        if (node?.range) return lineOfOffset(node.range[0]);
      }
    }
    return 1;
  };
  return { doc, lineOf, errors: doc.errors.map((e) => ({ line: lineOfOffset(e.pos[0]), message: e.message.split('\n')[0] })) };
}

const MISSING = Symbol('missing');
/** The raw value at `path`, or MISSING when its parent lacks the key. */
function valueAt(raw: unknown, path: Path): unknown {
  let node = raw;
  for (const key of path) {
    if (!node || typeof node !== 'object' || !(key in node)) return MISSING;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

/** `${VAR}` (set at load time) or an ellipsis: the example does not say the value, so its type is not judged. */
const isPlaceholder = (v: unknown) => typeof v === 'string' && (/\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}/.test(v) || /^\s*(\.\.\.|…)\s*$/.test(v));

interface Problem {
  path: Path;
  message: string;
}

/**
 * The schema's complaints that the example is to blame for: unknown keys,
 * wrong types, invalid values. A required key the fragment leaves out
 * (`fragment`) and a placeholder value are not. A union counts as matched
 * when one branch has nothing left; otherwise its closest branch is reported.
 */
function schemaProblems(issues: readonly z.core.$ZodIssue[], base: Path, input: unknown, fragment: boolean): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path.filter((p): p is string | number => typeof p !== 'symbol')];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...path, key], message: 'unknown key' });
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length) {
      const branches = issue.errors.map((errors) => ({ errors, problems: schemaProblems(errors, path, input, fragment) }));
      if (branches.some((b) => b.problems.length === 0)) continue;
      const depth = (errors: readonly z.core.$ZodIssue[]) => Math.max(...errors.map((e) => e.path.length));
      branches.sort((a, b) => a.errors.length - b.errors.length || depth(b.errors) - depth(a.errors));
      out.push(...branches[0].problems);
      continue;
    }
    const value = valueAt(input, path);
    if (isPlaceholder(value)) continue;
    if (fragment && issue.code === 'invalid_type' && value === MISSING) continue;
    out.push({ path, message: issue.message });
  }
  return out;
}

const ROOT_KEYS = new Set(Object.keys(configSchema.shape));
const ROUTE_KEYS = new Set(Object.keys(routeSchema.shape));

/** A stand-in for every `${VAR}` of a complete config: URL-shaped and long, so it passes most string checks. */
const standInEnv = (text: string): NodeJS.ProcessEnv =>
  Object.fromEntries([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => [m[1], `https://placeholder.example/${m[1].toLowerCase()}`]));

/**
 * A complete block with what it leaves to other pages filled in, so that the
 * cross-checks judge what the block shows and not what it omits: how callers
 * authenticate (the dev issuer, as in the quick start) when it shows neither
 * `identity.issuers` nor `identity.dev_issuer`, and when it has no `vault:`
 * at all, a stand-in for each provider its routes name. Nothing the block
 * shows is changed. (Lines are taken from the block itself, by key path.)
 */
function withOtherPages(text: string): string {
  const doc = parseDocument(text);
  if (!doc.hasIn(['identity', 'issuers']) && !doc.hasIn(['identity', 'dev_issuer'])) doc.setIn(['identity', 'dev_issuer'], true);
  const providers = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        const vault = (value as { vault?: unknown } | null)?.vault;
        if (key === 'credentials' && typeof vault === 'string') providers.add(vault);
        walk(value);
      }
    }
  };
  walk((doc.toJS() as Record<string, unknown>).routes);
  if (!doc.has('vault') && providers.size) {
    doc.setIn(['vault', 'keys'], [{ id: 'k1', key: Buffer.alloc(32, 7).toString('base64') }]);
    for (const p of providers) {
      doc.setIn(['vault', 'providers', p], { authorization_url: `https://${p}.example/authorize`, token_url: `https://${p}.example/token`, client_id: 'docs' });
    }
  }
  return String(doc);
}

/**
 * Problems of one gateway.yaml block (or of a variant of its text), as
 * `page:line path: message`. A block whose top-level keys are a route's
 * (`authorize:`, `budget:`) is checked inside a route. A block with `routes:`
 * and nothing left out is a complete config: required keys count, and
 * every cross-check of `warden validate` runs too (over the block and what
 * `withOtherPages` adds).
 */
function configProblems(block: Block, text: string, complete: boolean): Array<{ line: number; text: string }> {
  const { doc, lineOf, errors } = yamlDocument(block, text);
  if (errors.length) return errors.map((e) => ({ line: e.line, text: `${at(block, e.line)}: invalid YAML: ${e.message}` }));
  const raw: unknown = doc.toJS();
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return [{ line: 1, text: `${at(block, 1)}: not a mapping (a gateway.yaml is one)` }];
  const keys = Object.keys(raw);
  const inRoute = !keys.some((k) => ROOT_KEYS.has(k)) && keys.some((k) => ROUTE_KEYS.has(k));
  const input = inRoute ? { routes: [raw] } : raw;
  const shown = (path: Path) => (inRoute ? path.slice(2) : path);
  const report = (path: Path, message: string) => {
    const line = lineOf(shown(path));
    return { line, text: `${at(block, line)} ${inRoute ? '(in a route) ' : ''}${formatPath(shown(path)) || '(root)'}: ${message}` };
  };

  const parsed = configSchema.safeParse(input);
  const problems = parsed.success ? [] : schemaProblems(parsed.error.issues, [], input, !complete);
  if (problems.length || !complete) return problems.map((p) => report(p.path, p.message));

  // Complete and schema-valid: the cross-checks, with a stand-in for each ${VAR} (what they say of it is not judged).
  try {
    parseConfig(withOtherPages(text), { file: block.page, env: standInEnv(text), baseDir: REPO_ROOT });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const judged = err.issues.filter((i) => !isPlaceholder(valueAt(raw, parsePath(i.path))));
    const out = judged.map((i) => report(parsePath(i.path), i.message));
    if (!err.partial) out.push({ line: 1, text: `${at(block, 1)}: the cross-checks did not run (a \${VAR} stand-in does not fit the schema): ${err.message}` });
    return out;
  }
}

/**
 * Keys shown commented out (`# jti: per_request`, `# ciba:` with its commented
 * children) are examples too: each group is uncommented on its own, in place
 * of a live key of the same name beside it, and checked as a fragment. A
 * commented value `a | b | c` lists alternatives: each is checked.
 */
function commentedVariants(block: Block): Array<{ from: number; to: number; text: string }> {
  const commented = /^(\s*)# ?(\s*)([a-z_][a-z0-9_]*):(\s|$)/;
  const column = (m: RegExpExecArray) => m[1].length + m[2].length;
  const lines = block.lines;
  const out: Array<{ from: number; to: number; text: string }> = [];
  for (let i = 0; i < lines.length; i++) {
    const head = commented.exec(lines[i]);
    if (!head) continue;
    let end = i + 1;
    for (let m; end < lines.length && (m = commented.exec(lines[end])) && column(m) > column(head);) end++;
    const variant = [...lines];
    for (let j = i; j < end; j++) variant[j] = lines[j].replace(/^(\s*)# ?/, '$1');
    // A live key of the same name among the siblings: the commented one is its alternative.
    const sibling = new RegExp(`^ {${column(head)}}${head[3]}:`);
    const live = lines.findIndex(
      (l, j) =>
        sibling.test(l) &&
        lines.slice(Math.min(i, j) + 1, Math.max(i, j)).every((x) => !x.trim() || x.trim().startsWith('#') || /^ */.exec(x)![0].length >= column(head)),
    );
    if (live >= 0) {
      variant[live] = '';
      for (let j = live + 1; j < lines.length && (!lines[j].trim() || /^ */.exec(lines[j])![0].length > column(head)); j++) variant[j] = '';
    }
    const value = /:\s*([^#'"]*?)\s*(#.*)?$/.exec(variant[i])?.[1] ?? '';
    const alternatives = end === i + 1 && /\S \| \S/.test(value) ? value.split('|').map((v) => v.trim()) : [undefined];
    for (const alternative of alternatives) {
      const text = [...variant];
      if (alternative !== undefined) text[i] = `${' '.repeat(column(head))}${head[3]}: ${alternative}`;
      out.push({ from: i + 1, to: end, text: text.join('\n') });
    }
    i = end - 1;
  }
  return out;
}

/** Problems of a gateway.yaml block, its commented-out keys included. */
function gatewayBlockProblems(block: Block): string[] {
  const text = block.lines.join('\n');
  const raw = (yamlDocument(block).doc.toJS() ?? {}) as Record<string, unknown>;
  const complete = !block.elided && 'routes' in raw;
  const out = configProblems(block, text, complete).map((p) => p.text);
  for (const variant of commentedVariants(block)) {
    for (const p of configProblems(block, variant.text, false)) {
      if (p.line >= variant.from && p.line <= variant.to) out.push(`${p.text} (commented-out example)`);
    }
  }
  return [...new Set(out)];
}

/** What a block is: a file of a kind Warden reads, judged by its shape. */
function kindOf(block: Block): 'not-checked' | 'tuples' | 'model-tests' | 'gateway.yaml' {
  const first = block.lines.find((l) => l.trim())?.trim();
  if (NOT_CHECKED.some((s) => s.page === block.page && s.first === first)) return 'not-checked';
  const root = yamlDocument(block).doc.contents;
  if (isSeq(root)) return 'tuples';
  if (isMap(root) && root.has('tests')) return 'model-tests';
  return 'gateway.yaml';
}

/** Problems of a block as what it is. */
function problemsOf(block: Block): string[] {
  const { errors } = yamlDocument(block);
  if (errors.length) return errors.map((e) => `${at(block, e.line)}: invalid YAML: ${e.message}`);
  const kind = kindOf(block);
  const text = block.lines.join('\n');
  try {
    if (kind === 'tuples') parseTuples(text, 'tuples.yaml');
    if (kind === 'model-tests') {
      const dir = mkdtempSync(join(tmpdir(), 'warden-docs-'));
      try {
        writeFileSync(join(dir, 'example.test.yaml'), text);
        const file = readPolicyTestFile(join(dir, 'example.test.yaml'));
        // Its extra tuples are read as a tuples file (no line: they are re-serialized first).
        if (file.tuples.length) parseTuples(stringify(file.tuples), 'tuples');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } catch (err) {
    // ModelError and PolicyTestFileError: "<file>[:line]: message", the line counted in the block.
    const { line, message } = err as { line?: number; message: string };
    return [`${at(block, line ?? 0)} (${kind}): ${message.slice(message.indexOf(': ') + 2)}`];
  }
  return kind === 'gateway.yaml' ? gatewayBlockProblems(block) : [];
}

describe('yaml examples in the documentation', () => {
  it('finds the examples, of every kind', () => {
    const kinds = BLOCKS.map(kindOf);
    expect(BLOCKS.length).toBeGreaterThan(20);
    for (const kind of ['gateway.yaml', 'tuples', 'model-tests', 'not-checked'] as const) expect(kinds, kind).toContain(kind);
    expect(
      BLOCKS.filter((b) => !b.elided && kindOf(b) === 'gateway.yaml' && 'routes' in ((yamlDocument(b).doc.toJS() ?? {}) as object)).length,
    ).toBeGreaterThan(3);
  });

  it('each block left unchecked is named once, with a reason', () => {
    for (const skip of NOT_CHECKED) {
      const matching = BLOCKS.filter((b) => b.page === skip.page && b.lines.find((l) => l.trim())?.trim() === skip.first);
      expect(matching.length, `${skip.page} "${skip.first}" (${skip.reason})`).toBe(1);
    }
  });

  for (const block of BLOCKS) {
    it(`${block.page}:${block.fence}`, () => {
      expect(problemsOf(block).join('\n')).toBe('');
    });
  }
});
