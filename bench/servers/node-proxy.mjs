/**
 * Variant R: the smallest honest Node reverse proxy — a `node:http` server and
 * one undici Pool, hop-by-hop headers stripped both ways, bodies streamed,
 * nothing else. It is the Node ceiling the gateway is compared with.
 *
 * Usage: node bench/servers/node-proxy.mjs <listenPort> <upstreamOrigin> [--buffer-body]
 *
 * --buffer-body (row RPb): a request body is read whole and sent to undici as
 * one Buffer with its Content-Length, as Warden sends a body it has parsed
 * (an MCP POST). It is the cheapest way Node and undici forward a small POST.
 */

import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, origin] = [Number(process.argv[2]), process.argv[3]];
const bufferBody = process.argv.includes('--buffer-body');
const upstreamHost = new URL(origin).host;
// No cap on connections, as Warden has none by default: a held stream (SSE) keeps one (bench/streams.mjs).
const pool = new Pool(origin, { keepAliveTimeout: 4_000 });
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
  'host',
]);

const server = createServer((req, res) => {
  const headers = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (!HOP.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
  headers.push('host', upstreamHost);
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  if (!hasBody || !bufferBody) {
    relay(req, res, headers, hasBody ? req : null);
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('error', () => res.destroy());
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    // The header list now says how long the body is (no transfer-encoding: stripped above as hop-by-hop).
    for (let i = 0; i < headers.length; i += 2) if (headers[i].toLowerCase() === 'content-length') headers[i + 1] = String(body.length);
    relay(req, res, headers, body);
  });
});

function relay(req, res, headers, body) {
  pool.request({ method: req.method, path: req.url, headers, body }, (err, up) => {
    if (err) {
      res.writeHead(502).end();
      return;
    }
    const out = {};
    for (const name in up.headers) if (!HOP.has(name)) out[name] = up.headers[name];
    res.writeHead(up.statusCode, out);
    // pipe() rather than stream.pipeline(): pipeline allocates an AbortController and,
    // on every finish, a DOMException — measurable at this rate. A ceiling should not pay it.
    up.body.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) up.body.destroy();
    });
    up.body.pipe(res);
  });
}
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
