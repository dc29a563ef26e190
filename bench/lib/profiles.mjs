/**
 * Reading V8 CPU profiles (`node --cpu-prof`, as `bench/run.mjs --profile`
 * writes them into bench/profiles/): one profile summarized, and two rows'
 * profiles compared per request (bench/profile-summary.mjs prints both).
 */

/** A profile's call-frame URL, short: `src/…` for Warden, `npm:…` for a package, `node:…` for Node's own. */
export const shortUrl = (url) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, 'npm:')
    .replace(/^.*\/\.?dist[^/]*\/src\//, 'src/')
    .replace(/^\/.*?\/bench\//, 'bench/');

/**
 * Self and inclusive time per function (keyed by name and location), leaving
 * out the first `skipUs` microseconds (start-up). Shares are of busy time
 * (idle left out).
 */
export function summarize(profile, skipUs = 0) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map();
  const deltas = profile.timeDeltas;
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += deltas[i] ?? 0;
    const dt = deltas[i + 1] ?? 0;
    if (at < skipUs) continue;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const keyOf = (n) => {
    const cf = n.callFrame;
    return `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  };
  const self = new Map();
  const incl = new Map();
  for (const [id, us] of selfUs) {
    const n = nodes.get(id);
    self.set(keyOf(n), (self.get(keyOf(n)) ?? 0) + us);
    // Inclusive: charge every distinct frame on the stack once.
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(nodes.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const idle = [...self].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
  const busy = total - idle;
  const rows = (m) => [...m].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(root)')).sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    self: rows(self).map(([k, v]) => ({ fn: k, ms: v / 1000, pct: (100 * v) / busy })),
    inclusive: rows(incl).map(([k, v]) => ({ fn: k, ms: v / 1000, pct: (100 * v) / busy })),
  };
}

/** Where a function's time is charged in a comparison, from its key (summarize's `fn`). */
export function partOf(fn) {
  const at = fn.slice(fn.lastIndexOf(' ') + 1);
  if (at.startsWith('src/')) return 'Warden (src/)';
  if (at.startsWith('npm:undici/') || at.startsWith('wasm://')) return 'undici (and its llhttp)';
  if (at.startsWith('npm:')) return 'other packages';
  if (at.startsWith('node:')) return "Node's JavaScript";
  if (at.startsWith('bench/')) return "the row's own script (bench/servers)";
  return 'V8, native code and the kernel (GC, writev, JSON.parse…)';
}

/** The order parts are listed in. */
export const PARTS = [
  'Warden (src/)',
  "the row's own script (bench/servers)",
  'undici (and its llhttp)',
  'other packages',
  "Node's JavaScript",
  'V8, native code and the kernel (GC, writev, JSON.parse…)',
];

/**
 * Two rows' summaries per request: each function's share of its profile's
 * busy time times the row's CPU time per request (µs, as the harness measured
 * it over the same run), so that a function both rows run compares in µs even
 * when one row is slower overall. `functions` is sorted by how much more B
 * spends (B − A, largest first); `parts` sums them by where the code lives.
 */
export function comparePerRequest(a, b, cpuA, cpuB) {
  if (!(cpuA > 0) || !(cpuB > 0)) throw new Error('comparePerRequest needs both rows’ CPU µs per request (> 0)');
  const perRequest = (s, cpu) => new Map(s.self.map((r) => [r.fn, (r.pct / 100) * cpu]));
  const ua = perRequest(a, cpuA);
  const ub = perRequest(b, cpuB);
  const functions = [];
  for (const fn of new Set([...ua.keys(), ...ub.keys()])) {
    const x = ua.get(fn) ?? 0;
    const y = ub.get(fn) ?? 0;
    functions.push({ fn, a: x, b: y, delta: y - x });
  }
  functions.sort((p, q) => q.delta - p.delta || p.fn.localeCompare(q.fn));
  const sums = new Map(PARTS.map((p) => [p, { part: p, a: 0, b: 0, delta: 0 }]));
  for (const f of functions) {
    const s = sums.get(partOf(f.fn));
    s.a += f.a;
    s.b += f.b;
    s.delta += f.delta;
  }
  return { cpuA, cpuB, parts: [...sums.values()].filter((s) => s.a > 0 || s.b > 0), functions };
}
