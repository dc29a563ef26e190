/**
 * `warden test`: gateway-level policy test cases in YAML (who calls, what
 * request, what the gateway must answer), decided offline by the evaluator
 * against a config with the embedded engine. Every failure names the case's
 * file and line.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { LineCounter, isMap, isSeq, parseDocument, stringify, type Node } from 'yaml';
import type { LoadedConfig } from '../config/load.js';
import { createEvaluator, type EvaluationRequest, type EvaluationResult, type Evaluator } from './evaluator.js';

/** One test case as written. */
export interface PolicyCase {
  file: string;
  line: number;
  name: string;
  request: EvaluationRequest;
  expect: { outcome: 'allow' | 'hold' | 'deny' | 'error'; code?: string; status?: number };
}

/** One test file: its cases, an optional config of its own, extra tuples. */
export interface PolicyTestFile {
  file: string;
  config?: string;
  tuples: unknown[];
  cases: Array<Omit<PolicyCase, 'request'> & { raw: Record<string, unknown> }>;
}

/** A file that cannot be read as test cases (exit 2). */
export class PolicyTestFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    message: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${message}`);
    this.name = 'PolicyTestFileError';
  }
}

const CASE_KEYS = new Set([
  'name',
  'agent',
  'user',
  'scope',
  'act',
  'claims',
  'token',
  'request',
  'method',
  'path',
  'headers',
  'body',
  'tool',
  'args',
  'mcp_method',
  'expect',
  'code',
  'status',
]);
const FILE_KEYS = new Set(['config', 'tuples', 'tests']);
const OUTCOMES = new Set(['allow', 'hold', 'deny', 'error']);

/** Read one test file (YAML), with the line of every case. */
export function readPolicyTestFile(file: string): PolicyTestFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PolicyTestFileError(file, undefined, `cannot read: ${(err as Error).message}`);
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (n: Node | null | undefined) => (n?.range ? counter.linePos(n.range[0]).line : undefined);
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new PolicyTestFileError(file, e.linePos?.[0].line, e.message.split('\n')[0]);
  }
  const root = doc.contents;
  if (!isMap(root)) throw new PolicyTestFileError(file, 1, 'expected a mapping with `tests:` (and optionally `config:`, `tuples:`)');
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (!FILE_KEYS.has(key)) throw new PolicyTestFileError(file, lineOf(pair.key as Node), `unknown key ${key} (config, tuples, tests)`);
  }
  const tests = root.get('tests', true);
  if (!isSeq(tests)) throw new PolicyTestFileError(file, lineOf(root), '`tests:` must be a list of cases');
  const data = doc.toJS() as { config?: unknown; tuples?: unknown; tests: unknown[] };
  if (data.config !== undefined && typeof data.config !== 'string')
    throw new PolicyTestFileError(file, lineOf(root.get('config', true) as Node), '`config:` must be a path');
  if (data.tuples !== undefined && !Array.isArray(data.tuples))
    throw new PolicyTestFileError(file, lineOf(root.get('tuples', true) as Node), '`tuples:` must be a list');
  const cases = tests.items.map((node, i) => {
    const line = lineOf(node as Node) ?? 0;
    const raw = data.tests[i];
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyTestFileError(file, line, 'a case must be a mapping');
    const c = raw as Record<string, unknown>;
    for (const k of Object.keys(c))
      if (!CASE_KEYS.has(k)) throw new PolicyTestFileError(file, line, `unknown key ${k} in a case (${[...CASE_KEYS].join(', ')})`);
    return { file, line, name: typeof c.name === 'string' ? c.name : `case ${i + 1}`, expect: parseExpect(c, file, line), raw: c };
  });
  return {
    file,
    config: data.config === undefined ? undefined : isAbsolute(data.config as string) ? (data.config as string) : resolve(dirname(file), data.config as string),
    tuples: (data.tuples as unknown[] | undefined) ?? [],
    cases,
  };
}

function parseExpect(c: Record<string, unknown>, file: string, line: number): PolicyCase['expect'] {
  if (typeof c.expect !== 'string') throw new PolicyTestFileError(file, line, '`expect:` is required: allow, hold, deny [code] or error [code]');
  const [outcome, code, ...rest] = c.expect.trim().split(/\s+/);
  if (!OUTCOMES.has(outcome) || rest.length)
    throw new PolicyTestFileError(file, line, `expect: ${JSON.stringify(c.expect)} is not allow, hold, deny [code] or error [code]`);
  if (code !== undefined && c.code !== undefined) throw new PolicyTestFileError(file, line, 'give the code in `expect:` or in `code:`, not both');
  if (c.code !== undefined && typeof c.code !== 'string') throw new PolicyTestFileError(file, line, '`code:` must be a string');
  if (c.status !== undefined && (typeof c.status !== 'number' || !Number.isInteger(c.status)))
    throw new PolicyTestFileError(file, line, '`status:` must be an integer');
  return { outcome: outcome as PolicyCase['expect']['outcome'], code: code ?? (c.code as string | undefined), status: c.status as number | undefined };
}

/** The request of a case, with its principal from the evaluator's claim rules. */
function caseRequest(c: Record<string, unknown>, evaluator: Evaluator, file: string, line: number): EvaluationRequest {
  const str = (k: string) => {
    const v = c[k];
    if (v !== undefined && typeof v !== 'string') throw new PolicyTestFileError(file, line, `\`${k}:\` must be a string`);
    return v as string | undefined;
  };
  let method = str('method');
  let path = str('path');
  const request = str('request');
  if (request !== undefined) {
    const m = /^([A-Za-z]+)\s+(\S+)$/.exec(request.trim());
    if (!m) throw new PolicyTestFileError(file, line, '`request:` must be "METHOD /path"');
    method = m[1];
    path = m[2];
  }
  if (path === undefined) throw new PolicyTestFileError(file, line, 'a case needs `request: "METHOD /path"` (or `path:`)');
  const tool = str('tool');
  const mcpMethod = str('mcp_method') ?? (tool !== undefined ? 'tools/call' : undefined);
  method = (method ?? (mcpMethod !== undefined ? 'POST' : 'GET')).toUpperCase();

  let principal;
  if (c.token !== 'none') {
    if (c.token !== undefined) throw new PolicyTestFileError(file, line, '`token:` can only be `none` (a request without a token)');
    const claims: Record<string, unknown> = {};
    if (c.claims !== undefined) {
      if (!c.claims || typeof c.claims !== 'object' || Array.isArray(c.claims)) throw new PolicyTestFileError(file, line, '`claims:` must be a mapping');
      Object.assign(claims, c.claims);
    }
    const agent = str('agent');
    const user = str('user');
    if (agent !== undefined) claims.azp ??= agent;
    if (user !== undefined) claims.sub ??= user;
    else if (agent !== undefined) claims.sub ??= agent; // a machine token: the agent acting as itself
    if (c.scope !== undefined) claims.scope = Array.isArray(c.scope) ? c.scope.join(' ') : c.scope;
    if (c.act !== undefined) {
      const chain = Array.isArray(c.act) ? c.act : [c.act];
      let act: Record<string, unknown> | undefined;
      for (const sub of [...chain].reverse()) act = { sub, ...(act ? { act } : {}) };
      claims.act = act;
    }
    try {
      principal = evaluator.principal(claims);
    } catch (err) {
      throw new PolicyTestFileError(file, line, `the token's claims are not accepted: ${(err as Error).message} (give agent:, or token: none)`);
    }
  }
  const headers: Record<string, string> = {};
  if (c.headers !== undefined) {
    if (!c.headers || typeof c.headers !== 'object') throw new PolicyTestFileError(file, line, '`headers:` must be a mapping');
    for (const [k, v] of Object.entries(c.headers)) headers[k.toLowerCase()] = String(v);
  }
  return {
    method,
    target: path,
    headers,
    principal,
    body: c.body,
    mcp: mcpMethod !== undefined ? { method: mcpMethod, tool, args: c.args } : undefined,
  };
}

/** One case's verdict. */
export interface CaseResult {
  file: string;
  line: number;
  name: string;
  passed: boolean;
  expected: PolicyCase['expect'];
  got: EvaluationResult;
}

function matches(expected: PolicyCase['expect'], got: EvaluationResult): boolean {
  if (expected.outcome !== got.outcome) return false;
  if (expected.code !== undefined && expected.code !== got.code) return false;
  if (expected.status !== undefined && expected.status !== got.status) return false;
  return true;
}

/** Options of runPolicyTests. */
export interface RunOptions {
  /** The config every file without its own `config:` runs against. */
  load: (file: string) => LoadedConfig;
  configFile: string;
  env?: NodeJS.ProcessEnv;
}

/** Run every case of every file; files with extra tuples get an evaluator of their own. */
export async function runPolicyTests(files: readonly PolicyTestFile[], options: RunOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const shared = new Map<string, Evaluator>();
  const tmp = mkdtempSync(join(tmpdir(), 'warden-test-'));
  try {
    for (const f of files) {
      const configFile = f.config ?? options.configFile;
      const loaded = options.load(configFile);
      let evaluator: Evaluator;
      let own = false;
      if (f.tuples.length) {
        const tuples = join(tmp, `tuples-${results.length}-${relative(process.cwd(), f.file).replace(/[^A-Za-z0-9]/g, '_')}.yaml`);
        const base = loaded.config.authz.tuples ? resolve(loaded.baseDir, loaded.config.authz.tuples) : undefined;
        const existing = base ? ((parseDocument(readFileSync(base, 'utf8')).toJS() as unknown[] | null) ?? []) : [];
        writeFileSync(tuples, stringify([...existing, ...f.tuples]));
        evaluator = await createEvaluator({ loaded, authz: { engine: 'embedded', tuples }, env: options.env });
        own = true;
      } else {
        evaluator = shared.get(configFile) ?? (await createEvaluator({ loaded, authz: { engine: 'embedded' }, env: options.env }));
        shared.set(configFile, evaluator);
      }
      try {
        for (const c of f.cases) {
          const request = caseRequest(c.raw, evaluator, c.file, c.line);
          const got = await evaluator.evaluate(request);
          results.push({ file: c.file, line: c.line, name: c.name, passed: matches(c.expect, got), expected: c.expect, got });
        }
      } finally {
        if (own) await evaluator.close();
      }
    }
  } finally {
    for (const e of shared.values()) await e.close();
    rmSync(tmp, { recursive: true, force: true });
  }
  return results;
}

/** `allow`, `deny forbidden (403)`, `hold (202)`. */
export function describeOutcome(o: { outcome: string; code?: string; status?: number }, withStatus = true): string {
  return `${o.outcome}${o.code && o.outcome !== 'hold' ? ` ${o.code}` : ''}${withStatus && o.status !== undefined && o.outcome !== 'allow' ? ` (${o.status})` : ''}`;
}

/** Readable report lines of failures, then the summary line. */
export function formatResults(results: readonly CaseResult[], verbose: boolean): string {
  const lines: string[] = [];
  for (const r of results) {
    if (r.passed) {
      if (verbose) lines.push(`PASS ${r.file}:${r.line} ${r.name}`);
      continue;
    }
    lines.push(`FAIL ${r.file}:${r.line} ${r.name}`);
    lines.push(`     expected ${describeOutcome(r.expected)}, got ${describeOutcome(r.got)}${r.got.route ? ` on route ${r.got.route}` : ''}`);
    if (r.got.decisive) lines.push(`     decided by: ${r.got.decisive}`);
    else if (r.got.outcome === 'allow' && r.got.checks.length)
      lines.push(`     checks: ${r.got.checks.map((c) => `${c.user} ${c.relation} ${c.object} = ${c.allowed}`).join('; ')}`);
  }
  const failed = results.filter((r) => !r.passed).length;
  const files = new Set(results.map((r) => r.file)).size;
  lines.push(`${failed ? 'FAIL' : 'OK'} ${results.length - failed} passed, ${failed} failed (${results.length} case(s) in ${files} file(s))`);
  return lines.join('\n') + '\n';
}
