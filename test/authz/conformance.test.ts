/**
 * OpenFGA's own conformance suite against the embedded engine. The YAML files
 * are read at run time from the Go module cache of the installed OpenFGA
 * v1.18.1 (never copied into this repository). Like upstream
 * (`tests/check/check.go`, `tests/listobjects/listobjects.go`): the stages of a
 * test share one store whose tuples accumulate, and every single-stage test is
 * replayed with all its tuples sent as contextual tuples instead.
 *
 * Any assertion that fails must be listed in EXCLUDED with its reason, and an
 * excluded assertion that starts passing fails the suite too.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { TupleKey } from '../../src/authz/authorizer.js';
import { parseModelDsl } from '../../src/authz/model.js';
import { createEmbeddedEngine, fgaCodeOf, type EmbeddedEngine } from '../../src/authz/embedded/index.js';

const OPENFGA_VERSION = 'v1.18.1';

interface YamlTuple {
  user: string;
  relation: string;
  object: string;
  condition?: { name: string; context?: Record<string, unknown> };
}
interface CheckAssertion {
  tuple: YamlTuple;
  expectation?: boolean;
  errorCode?: number;
  context?: Record<string, unknown>;
  contextualTuples?: YamlTuple[];
}
interface ListObjectsAssertion {
  request: { user: string; type: string; relation: string };
  expectation?: string[] | null;
  errorCode?: number;
  context?: Record<string, unknown>;
  contextualTuples?: YamlTuple[];
}
interface Stage {
  model: string;
  tuples?: YamlTuple[] | null;
  checkAssertions?: CheckAssertion[] | null;
  listObjectsAssertions?: ListObjectsAssertion[] | null;
}
interface ConformanceTest {
  name: string;
  stages: Stage[];
}

/** Assertions known not to pass, by id, with the reason. Empty on purpose: all pass. */
const EXCLUDED: Record<string, string> = {};

interface Outcome {
  id: string;
  kind: 'check' | 'list_objects';
  passed: boolean;
  detail: string;
}

function assetsDir(): string {
  let modCache: string;
  try {
    modCache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
  } catch (err) {
    throw new Error(`cannot run \`go env GOMODCACHE\` (install Go and OpenFGA ${OPENFGA_VERSION}): ${(err as Error).message}`);
  }
  return join(modCache, `github.com/openfga/openfga@${OPENFGA_VERSION}`, 'assets', 'tests');
}

function loadSuite(file: string): ConformanceTest[] {
  const path = join(assetsDir(), file);
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: run \`GOTOOLCHAIN=local go install github.com/openfga/openfga/cmd/openfga@${OPENFGA_VERSION}\``);
  }
  return (parseYaml(readFileSync(path, 'utf8')) as { tests: ConformanceTest[] }).tests;
}

const toTuple = (t: YamlTuple): TupleKey => {
  const out: TupleKey = { user: t.user, relation: t.relation, object: t.object };
  if (t.condition) out.condition = t.condition.context ? { name: t.condition.name, context: t.condition.context } : { name: t.condition.name };
  return out;
};

function describeResult(run: () => unknown): { ok: true; value: unknown } | { ok: false; code: number | undefined; message: string } {
  try {
    return { ok: true, value: run() };
  } catch (err) {
    return { ok: false, code: fgaCodeOf(err), message: (err as Error).message };
  }
}

/**
 * Runs one conformance file; `contextual` replays single-stage tests with their tuples as contextual tuples.
 * `smallBucket` 0 puts every object#relation of the tuple index in its large layout (a Map by user and separate
 * userset and wildcard lists) instead of the small arrays most of these tests' objects fit in.
 */
function runSuite(tests: ConformanceTest[], contextual: boolean, smallBucket?: number): Outcome[] {
  const outcomes: Outcome[] = [];
  for (const test of tests) {
    if (contextual && test.stages.length > 1) continue; // upstream skips these too
    const stored: TupleKey[] = [];
    test.stages.forEach((stage, stageIndex) => {
      const stageTuples = (stage.tuples ?? []).map(toTuple);
      if (contextual && stageTuples.length > 100) return; // upstream: at most 100 contextual tuples
      const prefix = `${contextual ? 'ctx' : 'stored'}/${test.name}/stage${stageIndex}`;
      let engine: EmbeddedEngine;
      let setupError: string | undefined;
      try {
        const model = parseModelDsl(stage.model, `${test.name}.fga`);
        // Upstream writes each stage's tuples through Write, which validates them against that stage's model.
        createEmbeddedEngine({ model, tuples: contextual ? [] : stageTuples, invalidTuples: 'error' });
        if (!contextual) stored.push(...stageTuples);
        // Tuples written under earlier models stay in the store; those the new model rejects are ignored.
        engine = createEmbeddedEngine({ model, tuples: contextual ? [] : stored, invalidTuples: 'ignore', smallBucket });
      } catch (err) {
        setupError = (err as Error).message;
        engine = undefined as unknown as EmbeddedEngine;
      }
      const extra = contextual ? stageTuples : [];

      (stage.checkAssertions ?? []).forEach((a, i) => {
        const id = `${prefix}/check${i}`;
        if (setupError) return outcomes.push({ id, kind: 'check', passed: false, detail: `setup: ${setupError}` });
        const contextualTuples = [...(a.contextualTuples ?? []).map(toTuple), ...extra];
        const r = describeResult(() =>
          engine.check({ user: a.tuple.user, relation: a.tuple.relation, object: a.tuple.object, context: a.context ?? undefined, contextualTuples }),
        );
        let passed: boolean;
        if (a.errorCode) passed = !r.ok && r.code === a.errorCode;
        else passed = r.ok && r.value === (a.expectation ?? false);
        outcomes.push({
          id,
          kind: 'check',
          passed,
          detail: `${a.tuple.object}#${a.tuple.relation}@${a.tuple.user} expected ${a.errorCode ? `error ${a.errorCode}` : a.expectation} got ${r.ok ? r.value : `error ${r.code}: ${r.message}`}`,
        });
      });

      (stage.listObjectsAssertions ?? []).forEach((a, i) => {
        const id = `${prefix}/list_objects${i}`;
        if (setupError) return outcomes.push({ id, kind: 'list_objects', passed: false, detail: `setup: ${setupError}` });
        const contextualTuples = [...(a.contextualTuples ?? []).map(toTuple), ...extra];
        const req = { user: a.request.user, relation: a.request.relation, type: a.request.type, context: a.context ?? undefined, contextualTuples };
        const r = describeResult(() => engine.listObjects(req));
        const expected = [...(a.expectation ?? [])].sort();
        let passed: boolean;
        let got: string;
        if (r.ok) {
          const objects = [...(r.value as string[])].sort();
          got = JSON.stringify(objects);
          passed = !a.errorCode && JSON.stringify(objects) === JSON.stringify(expected);
          // Upstream also requires every listed object to check as allowed.
          if (passed) {
            for (const object of objects) {
              const c = describeResult(() => engine.check({ user: req.user, relation: req.relation, object, context: req.context, contextualTuples }));
              if (!c.ok || c.value !== true) {
                passed = false;
                got += ` (check of ${object} gave ${c.ok ? c.value : `error ${c.code}`})`;
              }
            }
          }
        } else {
          got = `error ${r.code}: ${r.message}`;
          passed = a.errorCode !== undefined && r.code === a.errorCode;
        }
        outcomes.push({
          id,
          kind: 'list_objects',
          passed,
          detail: `${req.type}#${req.relation}@${req.user} expected ${a.errorCode ? `error ${a.errorCode}` : JSON.stringify(expected)} got ${got}`,
        });
      });
    });
  }
  return outcomes;
}

function summarize(label: string, outcomes: Outcome[]): void {
  const line = (kind: Outcome['kind']): string => {
    const all = outcomes.filter((o) => o.kind === kind);
    const excluded = all.filter((o) => EXCLUDED[o.id] !== undefined).length;
    const passed = all.filter((o) => o.passed).length;
    return `${kind}: run ${all.length}, passed ${passed}, failed ${all.length - passed - excluded}, excluded ${excluded}`;
  };
  console.log(`[conformance] ${label} — ${line('check')}; ${line('list_objects')}`);
}

function assertOutcomes(outcomes: Outcome[]): void {
  const unexpectedFailures = outcomes.filter((o) => !o.passed && EXCLUDED[o.id] === undefined).map((o) => `${o.id}: ${o.detail}`);
  const unexpectedPasses = outcomes.filter((o) => o.passed && EXCLUDED[o.id] !== undefined).map((o) => `${o.id} passes now: remove it from EXCLUDED`);
  expect(unexpectedFailures).toEqual([]);
  expect(unexpectedPasses).toEqual([]);
}

for (const file of ['consolidated_1_1_tests.yaml', 'abac_tests.yaml']) {
  describe(`OpenFGA ${OPENFGA_VERSION} conformance: ${file}`, () => {
    const tests = loadSuite(file);

    it('has the expected shape (the file was found and parsed)', () => {
      expect(tests.length).toBeGreaterThan(10);
    });

    it('passes every check and list-objects assertion with stored tuples', () => {
      const outcomes = runSuite(tests, false);
      summarize(`${file} stored tuples`, outcomes);
      expect(outcomes.length).toBeGreaterThan(100);
      assertOutcomes(outcomes);
    });

    it('passes the same with every tuple-index bucket in its large layout (Map by user)', () => {
      const outcomes = [...runSuite(tests, false, 0), ...runSuite(tests, true, 0)];
      expect(outcomes.length).toBeGreaterThan(150);
      assertOutcomes(outcomes);
    });

    it('passes every assertion of single-stage tests with all tuples sent as contextual tuples', () => {
      const outcomes = runSuite(tests, true);
      summarize(`${file} contextual tuples`, outcomes);
      expect(outcomes.length).toBeGreaterThan(50);
      assertOutcomes(outcomes);
    });
  });
}
