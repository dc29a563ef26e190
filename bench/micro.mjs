#!/usr/bin/env node
/**
 * Microbenchmarks of the hot path's pieces, against the built `dist/`:
 * canonicalization, route match, JWT verification (cached and not), the
 * embedded check (engine and decision cache), a vault hit (store read +
 * AES-GCM open + JSON parse), the synchronous cache peeks the pipeline uses
 * on warm requests, and upstream header hygiene.
 *
 *   node bench/micro.mjs [--json] [--quick] [--dist DIR] [--filter TEXT]
 *
 * Each case is timed by mitata (`measure`, about 1 s of CPU per case, 0.3 s
 * with --quick); the result is the median ns/op of its samples.
 */

import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { measure } from 'mitata';
import { MCP_ANSWER, MCP_PARSE } from './lib/report.mjs';
import { MCP_BODY } from './lib/variants.mjs';
import { mcpCallResult } from './lib/nginx.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: { json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false }, dist: { type: 'string' }, filter: { type: 'string' } },
});
const dist = resolve(opt.dist ?? process.env.WARDEN_BENCH_DIST ?? join(REPO, 'dist'));
const mod = (p) => import(pathToFileURL(join(dist, 'src', p)).href);
const BUDGET_MS = opt.quick ? 300 : 1000;

/**
 * One case through mitata's `measure` (warm-up, batching, JIT-safe loop; an
 * async function is awaited per iteration): the median time per operation,
 * plus the mean and p99 of its samples.
 */
async function bench(name, fn) {
  if (opt.filter && !name.includes(opt.filter)) return null;
  const stats = await measure(fn, { min_cpu_time: BUDGET_MS * 1e6 });
  return { name, ns_per_op: stats.p50, avg_ns: stats.avg, p99_ns: stats.p99, samples: stats.samples.length };
}

const { canonicalize } = await mod('pipeline/canonical.js');
const { compilePattern } = await mod('pipeline/routes.js');
const { createAuthenticator } = await mod('identity/verifier.js');
const { loadDevIssuer } = await mod('identity/dev-issuer.js');
const { createLogger } = await mod('observability/logger.js');
const { parseModelDsl } = await mod('authz/model.js');
const { createEmbeddedAuthorizer } = await mod('authz/embedded/index.js');
const { withDecisionCache } = await mod('authz/cache.js');
const { createMemoryStore } = await mod('store/memory.js');
const { createVaultCipher } = await mod('vault/crypto.js');
const { createConnectionRepository } = await mod('vault/records.js');
const { withConnectionCache } = await mod('vault/read-cache.js');
const { upstreamHeaders } = await mod('proxy/headers.js');
const { trustedProxies } = await mod('proxy/trust.js');
const { compileRouteTable, findRouteLinear } = await mod('pipeline/route-table.js');

const results = [];
const add = (r) => r && results.push(r);
let sink = 0;

// -------------------------------------------------------------- canonicalization
add(await bench('canonicalize /api/items/42', () => (sink += canonicalize('/api/items/42').path.length)));
add(
  await bench(
    'canonicalize /github/repos/o/r/contents/a%20b/c.txt?ref=main&x=1',
    () => (sink += canonicalize('/github/repos/o/r/contents/a%20b/c.txt?ref=main&x=1').path.length),
  ),
);

// -------------------------------------------------------------- route match
const patterns = [
  '/health/live',
  '/admin/:section',
  '/billing/invoices/:id',
  '/github/repos/:owner/:repo/issues/**',
  '/github/repos/:owner/:repo/pulls/**',
  '/slack/chat/*',
  '/mcp/files',
  '/mcp/tickets',
  '/jira/:project/**',
  '/api/items/:id',
].map(compilePattern);
const target = canonicalize('/api/items/42');
const matchFirst = (segments) => {
  for (const p of patterns) {
    const m = p.match(segments);
    if (m) return m;
  }
  return null;
};
add(await bench('route match, 10 routes, last wins (canonical segments)', () => (sink += matchFirst(target.segments) ? 1 : 0)));
// What pipeline.ts matchRoute does today: re-split and re-decode the canonical path per request.
add(
  await bench('route match, 10 routes, re-splitting the path per request (the pipeline before it reused canonical segments)', () => {
    const segs = target.path.slice(1).replace(/\/$/, '').split('/').map(decodeURIComponent);
    sink += matchFirst(segs) ? 1 : 0;
  }),
);

// -------------------------------------------------------------- JWT
// A 2,000-route table (#17): the compiled trie costs the same for the first and the last route; the linear scan does not.
const bigRoutes = Array.from({ length: 2000 }, (_, index) => ({ index, pattern: compilePattern(`/svc${index}/items/:id`), methods: null }));
const bigTable = compileRouteTable(bigRoutes);
const firstSegs = canonicalize('/svc0/items/42').segments;
const lastSegs = canonicalize('/svc1999/items/42').segments;
add(await bench('route table 2,000 routes, first route (compiled)', () => (sink += bigTable.find(firstSegs, 'GET').route.index)));
add(await bench('route table 2,000 routes, last route (compiled)', () => (sink += bigTable.find(lastSegs, 'GET').route.index)));
add(await bench('route table 2,000 routes, last route (linear scan, before #17)', () => (sink += findRouteLinear(bigRoutes, lastSegs, 'GET').route.index)));

const logger = createLogger({ destination: { write: () => {} } });
const dataDir = mkdtempSync(join(tmpdir(), 'warden-micro-'));
const publicUrl = 'http://127.0.0.1:8080';
const devIssuer = await loadDevIssuer({ dataDir, publicUrl });
const token = await devIssuer.issue({ agent: 'bench-agent', user: 'bench', scopes: ['read'], ttlSeconds: 3600 });
const identity = (size) => ({ issuers: [], dev_issuer: true, clock_tolerance: 30_000, token_cache_size: size });
const cachedAuth = await createAuthenticator(identity(10_000), { devIssuer, logger });
const uncachedAuth = await createAuthenticator(identity(0), { devIssuer, logger });
add(await bench('JWT verify, token cache hit', () => cachedAuth.authenticate(token)));
add(await bench('JWT verify, no cache (signature every time)', () => uncachedAuth.authenticate(token)));
// What the pipeline calls first: the cache hit without a promise.
add(await bench('JWT, token cache peek (sync hit, what the pipeline does)', () => (sink += cachedAuth.peek(token) ? 1 : 0)));

// -------------------------------------------------------------- embedded check
const model = parseModelDsl(`model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type item
  relations
    define owner: [user]
    define viewer: [user, group#member] or owner
    define can_read: viewer
`);
const tuples = [
  { user: 'user:bench', relation: 'owner', object: 'item:42' },
  { user: 'group:eng#member', relation: 'viewer', object: 'item:7' },
  { user: 'user:anne', relation: 'member', object: 'group:eng' },
];
for (let i = 0; i < 5_000; i++) tuples.push({ user: `user:u${i}`, relation: 'viewer', object: `item:${i}` });
const engine = createEmbeddedAuthorizer({ model, tuples });
const cachedEngine = withDecisionCache(engine, { ttlMs: 5_000, maxEntries: 10_000 });
const direct = { user: 'user:bench', relation: 'can_read', object: 'item:42' };
const viaGroup = { user: 'user:anne', relation: 'can_read', object: 'item:7' };
add(await bench('embedded check, computed owner → can_read (no cache)', () => engine.check(direct)));
add(await bench('embedded check, via group userset (no cache)', () => engine.check(viaGroup)));
add(await bench('embedded batchCheck ×1 behind the decision cache (hit)', () => cachedEngine.batchCheck([direct])));
add(await bench('decision cache peekBatch ×1 (sync hit, what the pipeline does)', () => (sink += cachedEngine.peekBatch([direct]) ? 1 : 0)));

// -------------------------------------------------------------- vault hit
const store = createMemoryStore();
const cipher = createVaultCipher([{ id: 'k1', key: randomBytes(32).toString('base64') }]);
const repo = createConnectionRepository(store, cipher);
await repo.put({
  user: 'bench',
  provider: 'github',
  accessToken: 'gho_' + 'x'.repeat(36),
  refreshToken: 'r'.repeat(40),
  scopes: ['repo'],
  expiresAt: Date.now() + 3_600_000,
});
add(await bench('vault hit: memory store get + AES-GCM open + JSON parse', () => repo.get('bench', 'github')));
const connections = await withConnectionCache(repo, { store, ttlMs: 60_000, logger });
await connections.cachedGet('bench', 'github');
add(await bench('vault hit, connection cache peek (sync, what the pipeline does)', () => (sink += connections.peek('bench', 'github') ? 1 : 0)));

// -------------------------------------------------------------- header hygiene
const raw = [
  'Host',
  '127.0.0.1:8080',
  'User-Agent',
  'agent/1.0',
  'Accept',
  'application/json',
  'Authorization',
  `Bearer ${token}`,
  'X-Request-Id',
  'abc',
  'Connection',
  'keep-alive',
];
const trusted = trustedProxies([]);
const info = {
  clientIp: '127.0.0.1',
  host: '127.0.0.1:8080',
  proto: 'http',
  requestId: 'abc',
  traceparent: '00-' + '1'.repeat(32) + '-' + '2'.repeat(16) + '-01',
  upstreamHost: 'api.example.com',
};
add(await bench('upstream header hygiene (6 headers)', () => (sink += upstreamHeaders(raw, info, trusted, [], 'Bearer vault').length)));

// -------------------------------------------------------------- tracing (observability.tracing)
// Per request: off = the traceparent Warden always sends; on = the server span's start (sampler, W3C parse),
// the upstream context, and, when sampled, 1 server + 5 stage + 1 upstream span ended into the bounded queue.
// The endpoint is a closed loopback port: exports fail in the background and their spans are dropped (counted).
const { createTraceparent } = await mod('observability/trace-context.js');
const { createTracing } = await mod('observability/tracing.js');
const { createMetrics } = await mod('observability/metrics.js');
const inbound = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const traceparent = createTraceparent();
add(await bench('tracing off: upstream traceparent (what every request pays today)', () => (sink += traceparent(inbound).length)));
const tracingFor = (sampling) =>
  createTracing(
    {
      endpoint: 'http://127.0.0.1:9/v1/traces',
      headers: {},
      serviceName: 'bench',
      sampling,
      parentBased: false,
      timeoutMs: 1000,
      maxQueue: 2048,
      maxBatch: 512,
      flushIntervalMs: 5000,
    },
    { logger, metrics: createMetrics() },
  );
const reqState = {
  id: 'abc',
  method: 'GET',
  path: '/api/items/42',
  clientIp: '127.0.0.1',
  route: { name: 'api', match: { path: '/api/items/:id' } },
  status: 200,
  decision: 'allow',
};
const stageNames = ['authenticate', 'authorize', 'approve', 'credentials', 'assertion'];
const traced = (tracing) => () => {
  const t = tracing.start({ traceparent: inbound }, reqState);
  if (t.recording) for (const n of stageNames) t.stage(n).end();
  const up = t.upstream('GET', 'http://127.0.0.1:8081', '/items/42');
  up.end(200);
  t.end(reqState);
  sink += up.traceparent.length;
};
const unsampled = tracingFor(0);
add(await bench('tracing on, request not sampled (sampling 0.01 → 99% of requests)', traced(unsampled)));
const sampled = tracingFor(1);
add(await bench('tracing on, request sampled: 7 spans recorded and queued', traced(sampled)));
await Promise.allSettled([unsampled.shutdown(), sampled.shutdown()]);

// -------------------------------------------------------------- MCP tools/call (G4): the checks every call needs
// The MCP layer's floor: the strict parse of G4's request body (the body stage; the MCP stage reads its result)
// and the check that G4's answer may pass unchanged (one scan of its bytes + UTF-8). Hot loop, so a lower bound
// of what they cost in the server; the targets table sets it against the budget G4 / G3 ≥ 0.85 leaves.
const { parseStrictJson } = await mod('http/strict-json.js');
const { passesUnchanged } = await mod('mcp/response-hook.js');
const mcpBody = Buffer.from(MCP_BODY);
const mcpAnswer = Buffer.from(mcpCallResult());
add(await bench(MCP_PARSE, () => (sink += parseStrictJson(mcpBody) ? 1 : 0)));
add(await bench(MCP_ANSWER, () => (sink += passesUnchanged(mcpAnswer) ? 1 : 0)));

await Promise.allSettled([cachedAuth.close?.(), uncachedAuth.close?.(), engine.close?.(), connections.close(), store.close?.()]);
rmSync(dataDir, { recursive: true, force: true });

if (opt.json) process.stdout.write(JSON.stringify(results) + '\n');
else {
  const w = Math.max(...results.map((r) => r.name.length));
  for (const r of results)
    process.stdout.write(
      `${r.name.padEnd(w)}  ${r.ns_per_op.toFixed(0).padStart(9)} ns/op  ${Math.round(1e9 / r.ns_per_op)
        .toLocaleString('en-US')
        .padStart(12)} ops/s\n`,
    );
}
if (sink === -1) process.stdout.write('');
process.exit(0);
