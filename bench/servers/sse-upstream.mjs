/**
 * The MCP upstream of bench/streams.mjs: a Streamable HTTP endpoint that
 * holds GET streams open, as an MCP server does for its own messages to the
 * client.
 *
 *   node bench/servers/sse-upstream.mjs <port>
 *
 * POST /mcp: an `initialize` request is answered with a new Mcp-Session-Id;
 * any other message with 202 (nothing to say).
 * GET /mcp: a `text/event-stream` answer that stays open until the client
 * leaves, silent after one comment.
 * POST /__streams/broadcast: one JSON-RPC notification (a log message) as an
 * event on every open stream; answers how many streams it was written to.
 * GET /__streams: how many streams are open, as JSON.
 */

import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';

const port = Number(process.argv[2]);
const streams = new Set();
let sent = 0;

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url === '/__streams' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ open: streams.size }));
    return;
  }
  if (url === '/__streams/broadcast' && req.method === 'POST') {
    req.resume();
    const data = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: `event ${++sent}` } });
    const event = `id: ${sent}\nevent: message\ndata: ${data}\n\n`;
    for (const s of streams) s.write(event);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ written: streams.size, id: sent }));
    return;
  }
  if (!url.startsWith('/mcp')) {
    res.writeHead(404).end();
    return;
  }
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    // A comment first, as servers do to open a stream: a proxy that sends its head with the first bytes (R) sends it now.
    res.write(':\n\n');
    streams.add(res);
    res.on('close', () => streams.delete(res));
    return;
  }
  if (req.method === 'POST') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let message;
      try {
        message = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (message?.method !== 'initialize') {
        res.writeHead(202).end();
        return;
      }
      const result = { protocolVersion: '2025-06-18', capabilities: { logging: {} }, serverInfo: { name: 'bench-streams', version: '1.0.0' } };
      res
        .writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': randomUUID() })
        .end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
    });
    return;
  }
  if (req.method === 'DELETE') {
    res.writeHead(200).end();
    return;
  }
  res.writeHead(405).end();
});
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
