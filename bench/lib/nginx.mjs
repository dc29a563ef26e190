/**
 * nginx configurations of the harness: the static upstream every variant
 * talks to (1 KB of JSON from memory, never the bottleneck), and the N / NC
 * reverse proxies (the native ceiling). Each instance gets its own prefix
 * directory so nothing touches the system nginx.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForHttp } from './system.mjs';

/** The 1 KB JSON document the upstream serves (exactly 1024 bytes). */
export function upstreamJson() {
  const base = { id: 42, name: 'bench item', owner: 'bench', tags: ['a', 'b', 'c'], pad: '' };
  const size = Buffer.byteLength(JSON.stringify(base));
  base.pad = 'x'.repeat(1024 - size);
  return JSON.stringify(base);
}

/** The JSON-RPC answer of the MCP upstream to any tools/call. */
export function mcpCallResult() {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: upstreamJson().slice(0, 900) }], isError: false } });
}

/** The tools/list answer used once to pin the tool before G4 runs. */
export function mcpListResult() {
  return JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    result: {
      tools: [{ name: 'read_file', description: 'Read an item', inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } }],
    },
  });
}

// nginx string literal: single-quoted, with \ and ' escaped.
const lit = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function common(prefix, workers) {
  for (const d of ['logs', 'tmp']) mkdirSync(join(prefix, d), { recursive: true });
  return `
worker_processes ${workers};
daemon off;
pid ${join(prefix, 'nginx.pid')};
error_log ${join(prefix, 'logs', 'error.log')} warn;
${process.getuid?.() === 0 ? 'user root root;' : ''}
events { worker_connections 4096; }
`;
}

const httpCommon = (prefix) => `
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  client_body_temp_path ${join(prefix, 'tmp', 'body')};
  proxy_temp_path ${join(prefix, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(prefix, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(prefix, 'tmp', 'scgi')};
`;

/**
 * The upstream: `/` answers the 1 KB JSON; `/items/auth` echoes the
 * Authorization header it received (the harness checks the credential swap
 * with it); `/mcp` answers a fixed JSON-RPC tools/call result (with the Authorization it saw in
 * `x-bench-auth` when asked with `x-bench-check: 1`: the probe's check of the swap), or the tools list
 * when asked with `x-bench-list: 1` (pinning before G4). `/__bench/status`
 * (stub_status) lets the harness count upstream connections per variant: a
 * proxy whose keep-alive works opens a handful, not one per request.
 */
export function writeUpstreamConf(prefix, port) {
  const conf = `${common(prefix, 1)}
http {
${httpCommon(prefix)}
  # The echo of /mcp: the Authorization seen, only when the probe asks (an empty value adds no header).
  map $http_x_bench_check $bench_auth { "" ""; default $http_authorization; }
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    default_type application/json;
    location = /__bench/status { stub_status; }
    # The OTLP/HTTP sink of the tracing rows (G3T*): accepts every export with an empty ExportTraceServiceResponse.
    location = /v1/traces { return 200 ""; }
    location = /items/auth { return 200 "$http_authorization"; }
    location = /items/identity { return 200 "$http_warden_identity"; }
    location = /mcp {
      # A measured answer carries no header G3's answer lacks.
      add_header x-bench-auth $bench_auth always;
      if ($http_x_bench_list) { return 200 ${lit(mcpListResult())}; }
      return 200 ${lit(mcpCallResult())};
    }
    location / { return 200 ${lit(upstreamJson())}; }
  }
}
`;
  const file = join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  return file;
}

/** nginx as a plain reverse proxy with upstream keep-alive (N: 1 worker; NC: 2). */
export function writeProxyConf(prefix, port, upstreamPort, workers) {
  const conf = `${common(prefix, workers)}
http {
${httpCommon(prefix)}
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $proxy_host;
      proxy_buffering on;
    }
  }
}
`;
  const file = join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  return file;
}

/** Start the static upstream under `workDir` on a free port, pinned to `cpus`; resolves once it answers. */
export async function startUpstream(tracker, workDir, cpus) {
  const port = await freePort();
  const prefix = join(workDir, 'upstream');
  const proc = tracker.start('upstream', 'nginx', ['-c', writeUpstreamConf(prefix, port), '-p', prefix], {
    cpus,
    logFile: join(workDir, 'logs', 'upstream.log'),
  });
  const origin = `http://127.0.0.1:${port}`;
  await waitForHttp(`${origin}/`, { proc });
  return { proc, port, origin };
}
