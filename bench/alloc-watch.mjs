/**
 * Where a served process's allocation per request comes from, by allocation
 * site: loaded into it with `--import` (the harness passes NODE_OPTIONS on to
 * every row it starts), it runs V8's sampling heap profiler over a window of
 * requests (every node:http server's `request` events counted), objects the
 * young and old collections freed included, and appends to a file the sites
 * that allocated most, as bytes per request:
 *
 *   ALLOC_WATCH_OUT=/tmp/g4.txt NODE_OPTIONS="--import ./bench/alloc-watch.mjs" \
 *     node bench/run.mjs --variants G4 --rounds 1 --duration 12 --no-micro
 *
 * Counts of bytes do not move with a busy host the way times do, so two builds
 * can be compared on one that is too noisy for a throughput A/B. Sites are
 * V8's: an allocation in a function inlined into its caller is counted under
 * the caller; samples vary by a few percent between runs. Sampling slows the
 * process several times: the row's throughput while it runs means nothing.
 *
 *   ALLOC_WATCH_START     requests served before the window opens (default 2000)
 *   ALLOC_WATCH_COUNT     requests in the window (default 8000)
 *   ALLOC_WATCH_INTERVAL  mean bytes between samples (default 256)
 *   ALLOC_WATCH_TOP       sites listed (default 40)
 *   ALLOC_WATCH_SURVIVORS 1: leave out what the young generation's scavenges
 *                         freed, so the sites listed are those of objects that
 *                         outlived a scavenge (moved to the old generation,
 *                         where only a full collection frees them: what makes
 *                         the heap, and RSS, climb between full collections)
 *
 * A diagnostic, not part of any measured row (see CONTRIBUTING, Profiling).
 */

import { Session } from 'node:inspector';
import { appendFileSync } from 'node:fs';
import { onEachRequest } from './lib/count-requests.mjs';

const out = process.env.ALLOC_WATCH_OUT ?? `/tmp/alloc-watch-${process.pid}.txt`;
const start = Number(process.env.ALLOC_WATCH_START ?? 2000);
const count = Number(process.env.ALLOC_WATCH_COUNT ?? 8000);
const interval = Number(process.env.ALLOC_WATCH_INTERVAL ?? 256);
const top = Number(process.env.ALLOC_WATCH_TOP ?? 40);
const survivorsOnly = process.env.ALLOC_WATCH_SURVIVORS === '1';

let requests = 0;
/** 0 before the window, 1 sampling, 2 done. */
let phase = 0;
let session = null;

onEachRequest(() => {
  requests++;
  if (phase === 0 && requests === start) begin();
  else if (phase === 1 && requests === start + count) end();
});

function begin() {
  phase = 1;
  session = new Session();
  session.connect();
  session.post('HeapProfiler.enable', () =>
    session.post('HeapProfiler.startSampling', {
      samplingInterval: interval,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: !survivorsOnly,
    }),
  );
}

function end() {
  phase = 2;
  session.post('HeapProfiler.stopSampling', (err, result) => {
    session.disconnect();
    if (err) {
      appendFileSync(out, `${process.pid} alloc-watch failed: ${err.message}\n`);
      return;
    }
    const bySite = new Map();
    const walk = (node) => {
      const f = node.callFrame;
      // Paths from the repository's and Node's roots: src/…, node_modules/…, node:….
      const file = f.url.replace(/^.*?\/(src|dist\/src|node_modules)\//, '$1/').replace(/^file:\/\//, '');
      const site = `${f.functionName || '(anonymous)'} ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
      if (node.selfSize) bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      for (const child of node.children) walk(child);
    };
    walk(result.profile.head);
    const total = [...bySite.values()].reduce((a, b) => a + b, 0);
    let text = `${process.pid} ${process.argv.slice(1).join(' ')}\n  ${(total / count).toFixed(0)} B/req in all${survivorsOnly ? ' that outlived a scavenge' : ''}, over ${count} requests\n`;
    for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      text += `  ${(bytes / count).toFixed(0).padStart(7)} B/req  ${site}\n`;
    }
    appendFileSync(out, text);
  });
}
