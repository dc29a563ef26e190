/**
 * The shape of src/ as a test: no import cycle between modules (type-only
 * imports included), and the infrastructure folders import no feature folder.
 * Reads the import graph straight from the sources (no bundler, no madge).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/gateway.js';

const SRC = join(REPO_ROOT, 'src');
/** Folders that own a feature (and its stage). */
const FEATURES = ['identity', 'authz', 'mcp', 'approvals', 'vault', 'limits'];
/** Folders every feature builds on; they must not reach back up into a feature. */
const INFRASTRUCTURE = ['config', 'pipeline', 'http', 'store', 'proxy'];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** Module (path relative to src/, .ts) → the modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = (m[1] ?? m[2]).replace(/\.js$/, '.ts');
      deps.push(relative(SRC, resolve(dirname(file), spec)));
    }
    graph.set(relative(SRC, file), deps);
  }
  return graph;
}

/** Every cycle (as a strongly connected component of more than one module, or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const folderOf = (module: string) => module.split('/')[0];

describe('src/ import graph', () => {
  const graph = importGraph();

  it('is read from the sources (sanity: the pipeline imports its stage contract)', () => {
    expect(graph.get('pipeline/pipeline.ts')).toContain('pipeline/stage.ts');
    expect(graph.size).toBeGreaterThan(50);
  });

  it('has no import cycle', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('keeps config/, pipeline/, http/, store/ and proxy/ free of feature imports', () => {
    const offending: string[] = [];
    for (const [module, deps] of graph) {
      if (!INFRASTRUCTURE.includes(folderOf(module))) continue;
      for (const d of deps) if (FEATURES.includes(folderOf(d))) offending.push(`${module} → ${d}`);
    }
    expect(offending).toEqual([]);
  });

  it('keeps entry points only at the root of src/', () => {
    const root = [...graph.keys()].filter((m) => !m.includes('/'));
    expect(root.sort()).toEqual(['cli.ts', 'healthcheck.ts']);
  });
});
