/**
 * The upstream of bench/bodies.mjs: answers of any size, and a sink for
 * uploads.
 *
 *   node bench/servers/body-upstream.mjs <port>
 *
 * GET /items/<n>: n bytes (application/octet-stream, with Content-Length),
 * written from one preallocated megabyte with backpressure.
 * POST (or PUT) /items/<anything>: reads the body and answers its length as text.
 */

import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const BLOCK = Buffer.alloc(1 << 20, 'w');

createServer((req, res) => {
  if (req.method === 'GET') {
    const n = Number((req.url ?? '').slice('/items/'.length));
    if (!Number.isSafeInteger(n) || n < 0) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) });
    let left = n;
    const pump = () => {
      while (left > 0) {
        const chunk = left >= BLOCK.length ? BLOCK : BLOCK.subarray(0, left);
        left -= chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    return;
  }
  let size = 0;
  req.on('data', (c) => (size += c.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(String(size)));
}).listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
