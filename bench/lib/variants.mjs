/**
 * The systems under test, side by side. Each entry says what it measures,
 * what it needs (Redis, OpenFGA), how it is started and what one request
 * looks like. The run order alternates between rounds (see run.mjs).
 */

import { fileURLToPath } from 'node:url';
import { mcpCallResult, upstreamJson } from './nginx.mjs';

/** Objects G2m and F0 spread their checks over (`item:0` … `item:99999`, all readable by the bench user). */
export const OBJECTS = 100_000;

/** A GET through every variant lands on the same upstream path (`/items/42`). */
const API_PATH = '/api/items/42';
/** G4's request body: one tools/call (bench/micro.mjs times the MCP checks on it). */
export const MCP_BODY = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'read_file', arguments: { id: '42' } } });

const get = (auth) => ({ method: 'GET', path: API_PATH, headers: auth ? { authorization: `Bearer ${auth}` } : {}, expect: upstreamJson() });

/**
 * The Node flags the bin runs with (src/cli/node-flags.ts; a test keeps the two
 * equal): a fixed 8 MiB young-generation semi-space, and the old generation
 * collected once it has grown 20 % past the last full collection. Warden rows
 * run the bin as shipped (its shebang gives node these flags); R and F are
 * started with the same flags so the comparison is like for like. Variant G3d
 * measures V8's defaults, G3g V8's own old-generation growth.
 */
export const WARDEN_NODE_FLAGS = '--min-semi-space-size=8 --max-semi-space-size=8 --heap-growing-percent=20';

/**
 * kind: direct | nginx | node | fastify | warden.
 * warden: options for wardenYaml() (level, tokenCache, authz, cacheTtl, redis, mcp, workers).
 * auth: the request carries a dev-issuer token. pinned: false for the cluster pair.
 * swap: the upstream must receive the vault token, not the agent's (checked before measuring).
 * post: the row sends G4's MCP POST without being an MCP gateway (RP, RPb: the Node floor for it).
 * args: extra arguments for a node proxy (RPb: --buffer-body).
 * nodeFlags: Node flags for this Warden variant instead of --node-flags (node runs cli.js with them: no shebang, no relay).
 * optIn: runs only when named in --variants.
 */
export const VARIANTS = [
  { id: 'D', what: 'direct to the upstream nginx (no proxy)', kind: 'direct' },
  { id: 'N', what: 'nginx reverse proxy, 1 worker, upstream keep-alive (native ceiling)', kind: 'nginx', workers: 1 },
  { id: 'R', what: 'minimal Node proxy: node:http + one undici Pool (Node ceiling)', kind: 'node' },
  {
    id: 'RP',
    what: 'extra: R driven with G4’s request (the tools/call JSON POST, body streamed to undici): what Node and undici charge for a small POST (compare G4 / RP with G3 / R)',
    kind: 'node',
    post: true,
  },
  {
    id: 'RPb',
    what: 'extra: RP with the body read whole and sent to undici as one Buffer, as Warden sends a body it parsed: the cheapest way Node forwards G4’s POST (G3 + (RPb − R) bounds G4)',
    kind: 'node',
    post: true,
    args: ['--buffer-body'],
  },
  { id: 'F', what: 'fastify + @fastify/http-proxy', kind: 'fastify' },
  { id: 'G0', what: 'Warden public route: canonicalize, match, proxy', kind: 'warden', warden: { level: 0 } },
  {
    id: 'G0q',
    what: 'extra: G0 with WARDEN_LOG_LEVEL=warn (no per-request log lines; like for like with the run before the redesign)',
    kind: 'warden',
    warden: { level: 0 },
    logLevel: 'warn',
  },
  { id: 'G0-2k1', what: 'G0 with 2,000 routes, the measured route first', kind: 'warden', warden: { level: 0, manyRoutes: 'first' } },
  {
    id: 'G0-2kN',
    what: 'G0 with 2,000 routes, the measured route last (compiled route table: ≈ G0-2k1)',
    kind: 'warden',
    warden: { level: 0, manyRoutes: 'last' },
  },
  { id: 'G1', what: 'G0 + JWT verification (verified-token cache on)', kind: 'warden', warden: { level: 1 }, auth: true },
  { id: 'G1u', what: 'G1 with token_cache_size: 0 (signature verified every request)', kind: 'warden', warden: { level: 1, tokenCache: false }, auth: true },
  { id: 'G2', what: 'G1 + one check on the embedded engine (decision cache 5s)', kind: 'warden', warden: { level: 2 }, auth: true },
  {
    id: 'G2Lm',
    what: 'G2 + the rate limit and budget of G3L on the in-memory store (the embedded default; compare with G2)',
    kind: 'warden',
    warden: { level: 2, limits: true },
    auth: true,
  },
  {
    id: 'G2e1m',
    what: 'G2 with 1,000,000 tuples on the embedded engine (users in groups in folders in documents, bench/gen-tuples.mjs), a check on a different document per request (decision-cache misses); load time = spawn → healthz',
    kind: 'warden',
    warden: { level: 2, tuples: 1_000_000 },
    auth: true,
    // wrk asks for /api/items/{id} with a random id over the generated documents (doc:0 … doc:449999).
    spread: 450_000,
  },
  {
    id: 'G2o',
    what: 'G2 on a real OpenFGA server, decision cache off (cache_ttl: 0)',
    kind: 'warden',
    warden: { level: 2, authz: 'openfga', cacheTtl: '0' },
    auth: true,
    needs: ['openfga'],
  },
  {
    id: 'G2oc',
    what: 'G2 on a real OpenFGA server, decision cache on (5s)',
    kind: 'warden',
    warden: { level: 2, authz: 'openfga', cacheTtl: '5s' },
    auth: true,
    needs: ['openfga'],
  },
  {
    id: 'G2m',
    what: `G2 on a real OpenFGA server, decision cache on (5s), a different object per request (random of ${OBJECTS / 1000}k objects: mostly misses)`,
    kind: 'warden',
    warden: { level: 2, authz: 'openfga', cacheTtl: '5s' },
    auth: true,
    needs: ['openfga'],
    spread: OBJECTS,
  },
  {
    id: 'F0',
    what: `OpenFGA's own HTTP check endpoint driven directly by wrk, G2m's object spread (OpenFGA pinned as in G2m: the load CPU)`,
    kind: 'openfga',
    needs: ['openfga'],
    spread: OBJECTS,
  },
  {
    id: 'G3',
    what: 'G2 + vault credential swap on the Redis store (full warm chain)',
    kind: 'warden',
    warden: { level: 3, redis: true },
    auth: true,
    needs: ['redis'],
    swap: true,
  },
  {
    id: 'G3L',
    what: 'G3 + a rate limit and a budget (reserve, commit) on the Redis store',
    kind: 'warden',
    warden: { level: 3, redis: true, limits: true },
    auth: true,
    needs: ['redis'],
    swap: true,
  },
  {
    id: 'G5',
    what: 'G3 + a signed identity assertion (Warden-Identity) on every request, reused per principal and route',
    kind: 'warden',
    warden: { level: 3, redis: true, assertion: 'per_assertion' },
    auth: true,
    needs: ['redis'],
    swap: true,
    assertion: true,
  },
  {
    id: 'G5r',
    what: 'G5 with jti: per_request (one ES256 signature per request)',
    kind: 'warden',
    warden: { level: 3, redis: true, assertion: 'per_request' },
    auth: true,
    needs: ['redis'],
    swap: true,
    assertion: true,
  },
  {
    id: 'G3d',
    what: "extra: G3 on V8's default heap sizing (no semi-space flags, WARDEN_NODE_FLAGS_APPLIED=off)",
    kind: 'warden',
    warden: { level: 3, redis: true },
    auth: true,
    needs: ['redis'],
    swap: true,
    defaultHeap: true,
  },
  {
    id: 'G3D',
    what: 'audit on: G3 + the decision log (audit.decisions: file sink, hash chain, signed checkpoints, the production setting; its record replaces the info audit line)',
    kind: 'warden',
    warden: { level: 3, redis: true, decisions: true },
    auth: true,
    needs: ['redis'],
    swap: true,
  },
  {
    id: 'G3T',
    what: 'extra: G3 + OpenTelemetry traces at sampling 0.01 (observability.tracing, OTLP/HTTP to a local sink)',
    kind: 'warden',
    warden: { level: 3, redis: true, tracing: { sampling: 0.01 } },
    auth: true,
    needs: ['redis'],
    swap: true,
  },
  {
    id: 'G3T1',
    what: 'extra: G3 + OpenTelemetry traces at sampling 1 (every request: a server span, 5 stage spans, an upstream span)',
    kind: 'warden',
    warden: { level: 3, redis: true, tracing: { sampling: 1 } },
    auth: true,
    needs: ['redis'],
    swap: true,
  },
  {
    id: 'G3m0',
    what: 'G3 with metrics off too (observability.metrics.enabled: false; tracing is off in G3): G3 / G3m0 is what metrics cost',
    kind: 'warden',
    warden: { level: 3, redis: true, metricsOff: true },
    auth: true,
    needs: ['redis'],
    swap: true,
  },
  {
    id: 'G3s4',
    what: 'extra, opt-in: G3 with a 4 MiB semi-space instead of the shipped 8 MiB (node flags on the command line; docs/performance.md, "Memory")',
    kind: 'warden',
    warden: { level: 3, redis: true },
    auth: true,
    needs: ['redis'],
    swap: true,
    nodeFlags: ['--min-semi-space-size=4', '--max-semi-space-size=4', '--heap-growing-percent=20'],
    optIn: true,
  },
  {
    id: 'G3g',
    what: 'extra, opt-in: G3 with the semi-space flags only, the old generation growing as V8 decides (up to 4x past the last full collection) instead of the shipped 20 % (docs/performance.md, "Memory")',
    kind: 'warden',
    warden: { level: 3, redis: true },
    auth: true,
    needs: ['redis'],
    swap: true,
    nodeFlags: ['--min-semi-space-size=8', '--max-semi-space-size=8'],
    optIn: true,
  },
  {
    id: 'G3q',
    what: 'extra: G3 with WARDEN_LOG_LEVEL=warn (no per-request log lines)',
    kind: 'warden',
    warden: { level: 3, redis: true },
    auth: true,
    needs: ['redis'],
    swap: true,
    logLevel: 'warn',
  },
  {
    id: 'G4',
    what: 'full chain on an MCP tools/call (JSON-RPC parse, tool rule, check, vault)',
    kind: 'warden',
    warden: { level: 3, redis: true, mcp: true },
    auth: true,
    needs: ['redis'],
    mcp: true,
  },
  {
    id: 'G4q',
    what: 'extra: G4 with WARDEN_LOG_LEVEL=warn (no per-request log lines)',
    kind: 'warden',
    warden: { level: 3, redis: true, mcp: true },
    auth: true,
    needs: ['redis'],
    mcp: true,
    logLevel: 'warn',
  },
  { id: 'NC', what: 'nginx reverse proxy, 2 workers, unpinned', kind: 'nginx', workers: 2, pinned: false, cluster: true },
  {
    id: 'GC',
    what: 'Warden G3 with server.workers: 2, unpinned',
    kind: 'warden',
    warden: { level: 3, redis: true, workers: 2 },
    auth: true,
    needs: ['redis'],
    swap: true,
    pinned: false,
    cluster: true,
  },
];

/**
 * The request one variant is measured with (token filled in for auth variants).
 * With `spread`, `{id}` in the path or body is a random object id per request (see load.mjs).
 * F0 needs the OpenFGA store (`openfga`: apiUrl, storeId, modelId).
 */
export function requestFor(variant, token, openfga) {
  if (variant.kind === 'openfga') {
    return {
      method: 'POST',
      path: `/stores/${openfga.storeId}/check`,
      headers: { 'content-type': 'application/json' },
      body: `{"tuple_key":{"user":"user:bench","relation":"can_read","object":"item:{id}"},"authorization_model_id":"${openfga.modelId}"}`,
      spread: variant.spread,
      expect: null,
    };
  }
  if (variant.spread) return { ...get(token), path: '/api/items/{id}', spread: variant.spread };
  if (variant.mcp || variant.post) {
    return {
      method: 'POST',
      path: '/mcp',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: MCP_BODY,
      expect: mcpCallResult(),
    };
  }
  return get(variant.auth ? token : null);
}

/** R, RP, RPb and F: node's arguments after its flags (their server in bench/servers/, its port, the upstream, the row's own). */
export function proxyServerArgs(variant, port, upstreamOrigin) {
  const server = variant.kind === 'fastify' ? 'fastify-proxy.mjs' : 'node-proxy.mjs';
  return [fileURLToPath(new URL(`../servers/${server}`, import.meta.url)), String(port), upstreamOrigin, ...(variant.args ?? [])];
}

/** Default set for `npm run bench`. */
export const DEFAULT_VARIANTS = VARIANTS.filter((v) => !v.optIn).map((v) => v.id);
/** The headline rows (Warden as shipped): the slowest of them sets the fixed latency rate. */
export const HEADLINE_VARIANTS = ['G0', 'G1', 'G2', 'G3', 'G4'];
/** `--quick`: the variants behind the targets. */
export const QUICK_VARIANTS = ['D', 'N', 'R', 'F', 'G0', 'G3'];
