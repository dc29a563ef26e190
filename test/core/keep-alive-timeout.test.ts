/**
 * server.limits.keep_alive_timeout: how long the agent listener keeps an idle
 * keep-alive connection. Behind a load balancer it must outlast the
 * balancer's idle timeout, or the balancer sends on a connection Warden is
 * closing (a 502); the default is 5 s.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { startWardenWithUpstream, closeAll, type WardenHandle } from '../support/gateway.js';
import type { Upstream } from '../support/upstream.js';
import { parseConfig } from '../../src/config/load.js';

const config = (timeout: string | undefined) => (up: string) => `
server: { ${timeout ? `limits: { keep_alive_timeout: ${timeout} }` : ''} }
routes:
  - { name: open, match: { path: "/open/**" }, upstream: { url: "${up}" }, public: true }
`;

/** One request on a raw connection; resolves with the answer's head and when the server closed the connection (ms after the answer). */
function oneRequest(url: string): Promise<{ head: string; closedAfterMs: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = '';
    let answeredAt = 0;
    socket.on('data', (c) => {
      data += c.toString('latin1');
      if (!answeredAt && data.includes('\r\n\r\n')) answeredAt = Date.now();
    });
    socket.on('close', () => resolve({ head: data.slice(0, data.indexOf('\r\n\r\n')), closedAfterMs: Date.now() - answeredAt }));
    socket.on('error', reject);
    socket.write(`GET /open/x HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`);
  });
}

describe('server.limits.keep_alive_timeout', () => {
  let short: { warden: WardenHandle; upstream: Upstream };
  let long: { warden: WardenHandle; upstream: Upstream };
  beforeAll(async () => {
    short = await startWardenWithUpstream(config('1s'));
    long = await startWardenWithUpstream(config('65s'));
  });
  afterAll(async () => {
    await closeAll(short?.warden, short?.upstream, long?.warden, long?.upstream);
  });

  it('an idle connection is closed after it, and the answer says so (Keep-Alive: timeout)', async () => {
    const { head, closedAfterMs } = await oneRequest(short.warden.url);
    expect(head).toMatch(/^HTTP\/1\.1 200 /);
    expect(head).toMatch(/\r\nkeep-alive: timeout=1(\r\n|$)/i);
    expect(closedAfterMs).toBeGreaterThanOrEqual(900);
    expect(closedAfterMs).toBeLessThan(4_000);
  });

  it('a balancer-length timeout is announced as configured (the default would close after 5 s)', async () => {
    const res = await fetch(`${long.warden.url}/open/x`);
    await res.arrayBuffer();
    expect(res.headers.get('keep-alive')).toBe('timeout=65');
  });

  it('below 1s is refused by the config (0 would keep idle connections forever)', () => {
    expect(() => parseConfig('server: { limits: { keep_alive_timeout: 0s } }\nroutes: []\n', { file: 'gateway.yaml', env: {}, baseDir: '.' })).toThrow(
      /keep_alive_timeout.*at least 1s/s,
    );
  });
});
