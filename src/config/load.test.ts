/**
 * A loaded config's `lineOf` (#17): the lines are the YAML document's, and the
 * document itself is not kept alive by the loaded config (a whole config
 * generation holds it; with 2,000 routes the document is ~5 MB of nodes).
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { LineCounter, parseDocument, type Node } from 'yaml';
import { parseConfig } from './load.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function routesYaml(n: number): string {
  let text = 'identity: { dev_issuer: true }\nroutes:\n';
  for (let i = 0; i < n; i++)
    text += `  - name: svc${i}\n    match: { path: "/svc${i}/items/:id" }\n    upstream: { url: "http://127.0.0.1:9", strip_prefix: /svc${i} }\n    public: true\n`;
  return text;
}

/** Heap in use after full collections (a few: finalization and weak references settle over more than one). */
function heapUsed(): number {
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage().heapUsed;
}

describe('loaded config', () => {
  it('lineOf answers the lines of the YAML document, also once the document it parsed was collected', () => {
    const text = routesYaml(30);
    const counter = new LineCounter();
    const doc = parseDocument(text, { lineCounter: counter });
    const want = (path: Array<string | number>) => counter.linePos((doc.getIn(path, true) as Node).range![0]).line;
    const loaded = parseConfig(text, { env: {} });
    const paths: Array<Array<string | number>> = [
      ['routes'],
      ['routes', 0],
      ['routes', 17, 'match', 'path'],
      ['routes', 29, 'upstream', 'strip_prefix'],
      ['identity'],
    ];
    for (const p of paths) expect(loaded.lineOf(p)).toBe(want(p));
    heapUsed();
    for (const p of paths) expect(loaded.lineOf(p)).toBe(want(p));
    // A path below a scalar, or one the file lacks: the line of the nearest node above it.
    expect(loaded.lineOf(['routes', 3, 'public', 'x'])).toBe(want(['routes', 3, 'public']));
    expect(loaded.lineOf(['routes', 3, 'credentials'])).toBe(want(['routes', 3]));
  });

  it('does not keep the YAML document of 2,000 routes alive', () => {
    const text = routesYaml(2000);
    const before = heapUsed();
    let loaded: ReturnType<typeof parseConfig> | undefined = parseConfig(text, { env: {} });
    const withLoaded = heapUsed() - before;
    const config = loaded.config;
    loaded = undefined;
    const configOnly = heapUsed() - before;
    expect(config.routes).toHaveLength(2000);
    // The document alone is ~5 MB here; the config objects stay either way.
    expect(withLoaded - configOnly).toBeLessThan(1_000_000);
  });
});
