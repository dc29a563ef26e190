/**
 * The clients of bench/bodies.mjs, in a process of their own (pinned to the
 * load CPU).
 *
 *   node bench/lib/body-client.mjs load <url> <GET|POST> <bytes> <connections> <seconds>
 *     `connections` requests in flight for `seconds` (closed loop, keep-alive):
 *     GET reads each answer to the end, POST sends `bytes` of body. Prints
 *     {"requests": n, "bytes": b, "seconds": s, "errors": e} (bytes: body bytes moved).
 *   node bench/lib/body-client.mjs slow <url> <readers> <bytesPerSecond> <seconds>
 *     `readers` downloads of a large answer, each read at `bytesPerSecond`:
 *     agents slower than the upstream. Prints {"open": n} once every reader has
 *     its head, {"read": b} after `seconds`, then closes them all and exits.
 */

import { Agent, request } from 'node:http';

const [mode, url, ...rest] = process.argv.slice(2);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');

if (mode === 'load') {
  const [method, bytesText, connectionsText, secondsText] = rest;
  const bytes = Number(bytesText);
  const connections = Number(connectionsText);
  const seconds = Number(secondsText);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const body = method === 'POST' ? Buffer.alloc(bytes, 'u') : null;
  const until = performance.now() + seconds * 1000;
  let requests = 0;
  let moved = 0;
  let errors = 0;
  const one = () =>
    new Promise((resolve) => {
      const req = request(
        url,
        { method, agent, headers: body ? { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } : {} },
        (res) => {
          let got = 0;
          res.on('data', (c) => (got += c.length));
          res.on('end', () => {
            if (res.statusCode !== 200) errors++;
            else {
              requests++;
              moved += body ? body.length : got;
            }
            resolve();
          });
          res.on('error', () => (errors++, resolve()));
        },
      );
      req.on('error', () => (errors++, resolve()));
      req.end(body ?? undefined);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) await one();
    }),
  );
  say({ requests, bytes: moved, seconds: (performance.now() - started) / 1000, errors });
  agent.destroy();
} else if (mode === 'slow') {
  const [readersText, rateText, secondsText] = rest;
  const readers = Number(readersText);
  const rate = Number(rateText);
  const seconds = Number(secondsText);
  const open = [];
  let read = 0;
  await Promise.all(
    Array.from(
      { length: readers },
      () =>
        new Promise((resolve, reject) => {
          const req = request(url, { agent: false }, (res) => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
            open.push(req);
            // Read in 10 steps a second: take what is there, then pause until the rate allows more.
            let budget = 0;
            const tick = setInterval(() => {
              budget = rate / 10;
              res.resume();
            }, 100);
            res.on('data', (c) => {
              read += c.length;
              budget -= c.length;
              if (budget <= 0) res.pause();
            });
            res.on('close', () => clearInterval(tick));
            res.pause();
            resolve();
          });
          req.on('error', (err) => (open.includes(req) ? undefined : reject(err)));
          req.end();
        }),
    ),
  );
  say({ open: open.length });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  say({ read });
  for (const req of open) req.destroy();
  process.exit(0);
} else {
  process.stderr.write('usage: body-client.mjs load <url> <GET|POST> <bytes> <connections> <seconds> | slow <url> <readers> <bytesPerSecond> <seconds>\n');
  process.exit(2);
}
