/**
 * Connections to an upstream, end to end: a held stream (an SSE answer, as an
 * MCP GET stream is) keeps its upstream connection while it is open, so a
 * fixed cap per origin turns many listening agents into timeouts for everyone
 * else (found by bench/streams.mjs: with the old cap of 256, the 257th stream
 * and every request after it waited for the route timeout). There is no cap
 * unless `server.limits.upstream_connections` sets one.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { request, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { startWarden, startWardenWithUpstream, closeAll, type WardenHandle } from '../support/gateway.js';
import type { Upstream } from '../support/upstream.js';
import { devPolicyYaml, publicRouteYaml } from '../support/config.js';
import { until } from '../support/eventually.js';

const config = (extra: string) => (up: string) => `
server:
  listen: 127.0.0.1:0
  limits: { request_timeout: 1s${extra} }
${devPolicyYaml('test/core/fixtures')}
routes:
${publicRouteYaml(up)}
`;

let warden: WardenHandle | undefined;
let upstream: Upstream | undefined;
let clients: ClientRequest[] = [];
let tickers: NodeJS.Timeout[] = [];
/** The upstream's streams still open. */
const held = new Set<ServerResponse>();

afterEach(async () => {
  for (const t of tickers) clearInterval(t);
  tickers = [];
  for (const c of clients) c.destroy();
  clients = [];
  await closeAll(warden, upstream);
  warden = upstream = undefined;
  held.clear();
});

/**
 * /stream: an event stream that stays open, a comment every 250 ms (a stream
 * silent for the route timeout is cut, as an answer would be); anything else: 200 "ok".
 */
function streamingUpstream(u: Upstream): void {
  const ticker = setInterval(() => {
    for (const res of held) res.write(':\n\n');
  }, 250);
  tickers.push(ticker);
  u.setHandler((req, res) => {
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(':\n\n');
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
}

/** GET /public/stream on a connection of its own; resolves with the status of its head. */
function openStream(base: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/public/stream`, { agent: false, headers: { accept: 'text/event-stream' } });
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
    clients.push(req);
  });
}

describe('connections to an upstream', () => {
  it('holds more streams to one upstream than the old cap of 256, and still forwards every other request', async () => {
    ({ warden, upstream } = await startWardenWithUpstream(config('')));
    streamingUpstream(upstream);
    const statuses: number[] = [];
    // 300 streams, 50 at a time (each waits for its head).
    for (let i = 0; i < 300; i += 50) statuses.push(...(await Promise.all(Array.from({ length: 50 }, () => openStream(warden!.url)))));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(held.size).toBe(300);
    // Nothing waits behind the held streams (with a cap of 256 this waited for the timeout, then 504).
    const res = await fetch(`${warden.url}/public/ok`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(held.size).toBe(300);
    // The agents leave: every upstream stream ends with them.
    for (const c of clients) c.destroy();
    await until(() => held.size === 0, { timeoutMs: 5_000, what: 'every upstream stream closed' });
  });

  it('server.limits.upstream_connections caps them: a request beyond the cap waits within its timeout, then goes when one frees', async () => {
    ({ warden, upstream } = await startWardenWithUpstream(config(', upstream_connections: 2')));
    streamingUpstream(upstream);
    expect(await openStream(warden.url)).toBe(200);
    expect(await openStream(warden.url)).toBe(200);
    const seen = upstream.requests.length;
    const t0 = Date.now();
    const waited = await fetch(`${warden.url}/public/ok`);
    expect(waited.status).toBe(504);
    expect(((await waited.json()) as { code: string }).code).toBe('upstream_unavailable');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
    // It never reached the upstream: both connections were held.
    expect(upstream.requests.length).toBe(seen);
    clients[0].destroy();
    await until(() => held.size === 1, { timeoutMs: 5_000, what: 'one upstream stream closed' });
    const res = await fetch(`${warden.url}/public/ok`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  it('refuses a cap that is not a positive integer', async () => {
    for (const bad of ['0', '-1', '1.5', '"many"']) {
      await expect(startWarden({ config: config(`, upstream_connections: ${bad}`)('http://127.0.0.1:1') })).rejects.toThrow(/upstream_connections/);
    }
  });
});
