/**
 * The agents of bench/streams.mjs, in a process of their own (pinned to the
 * load CPU): opens N MCP GET streams through the system under test and holds
 * them, as N agents listening for their servers' messages would.
 *
 *   node bench/lib/stream-client.mjs <origin> <streams> [<token>]
 *
 * Each stream is an MCP session: `initialize` (POST on a connection of its own, the upstream creates the
 * session, the gateway binds it to the caller), then GET with its
 * Mcp-Session-Id on a connection of its own, held open. Reports on stdout, one
 * JSON object per line:
 *   {"open": N, "ms": …}                     every stream answered 200 text/event-stream
 *   {"event": k, "streams": N, "ms": …}      every stream has received its k-th event
 *                                             (ms since the first stream got it)
 *   {"error": "…"}                           a stream failed or closed early (then exits 1)
 * SIGTERM closes every stream and exits.
 */

import { request } from 'node:http';

const [origin, countText, token] = process.argv.slice(2);
const count = Number(countText);
const url = new URL('/mcp', origin);
const auth = token ? { authorization: `Bearer ${token}` } : {};
const OPENING = 64;

const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (message) => {
  say({ error: message });
  process.exit(1);
};

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench-streams', version: '1.0.0' } },
});

/** initialize: the session id the upstream created (the gateway bound it to this caller). */
function initialize() {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        // A connection per initialize: a kept-alive one left idle while its stream opens (slow on a busy host) can
        // meet the gateway's keep-alive timeout just as the next request goes out ("socket hang up").
        agent: false,
        headers: {
          ...auth,
          connection: 'close',
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'content-length': Buffer.byteLength(INITIALIZE),
        },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const session = res.headers['mcp-session-id'];
          if (res.statusCode !== 200 || typeof session !== 'string')
            reject(new Error(`initialize answered ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`));
          else resolve(session);
        });
      },
    );
    req.on('error', reject);
    req.end(INITIALIZE);
  });
}

const streams = [];
/** How many streams have received at least k events (index k), and when the first of them did. */
const reached = [0];
const firstAt = [0];
let closing = false;

/** GET the session's stream on a connection of its own; resolves at its head. */
function open(session) {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'GET',
      agent: false,
      headers: { ...auth, accept: 'text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
    });
    req.on('response', (res) => {
      const type = String(res.headers['content-type'] ?? '');
      if (res.statusCode !== 200 || !type.startsWith('text/event-stream')) {
        res.resume();
        reject(new Error(`GET answered ${res.statusCode} ${type}`));
        return;
      }
      let events = 0;
      let tail = '';
      res.setEncoding('utf8');
      res.on('data', (text) => {
        // Events end with a blank line; count the complete ones that carry data.
        const all = tail + text;
        const parts = all.split('\n\n');
        tail = parts.pop();
        for (const part of parts) {
          if (!/^data:/m.test(part)) continue;
          events++;
          if (reached[events] === undefined) {
            reached[events] = 0;
            firstAt[events] = performance.now();
          }
          if (++reached[events] === count) say({ event: events, streams: count, ms: +(performance.now() - firstAt[events]).toFixed(1) });
        }
      });
      res.on('close', () => {
        if (!closing) fail(`a stream closed early (after ${events} events)`);
      });
      streams.push(req);
      resolve();
    });
    req.on('error', (err) => {
      if (!closing) reject(err);
    });
    req.end();
  });
}

process.on('SIGTERM', () => {
  closing = true;
  for (const req of streams) req.destroy();
  process.exit(0);
});

const started = performance.now();
let next = 0;
async function worker() {
  while (next < count) {
    next++;
    await open(await initialize());
  }
}
try {
  await Promise.all(Array.from({ length: Math.min(OPENING, count) }, worker));
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
}
say({ open: count, ms: Math.round(performance.now() - started) });
// Held until SIGTERM (the open sockets keep the process alive).
