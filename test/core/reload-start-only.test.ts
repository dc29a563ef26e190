/**
 * Keys read only when the process starts (listeners, their header and client
 * limits, workers, file watching, the metrics registry) are never silently
 * ignored: a reload that changes one succeeds, applies everything else, and
 * warns once per changed key that it takes effect at the next start.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { REPO_ROOT, startWarden } from '../support/gateway.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const yaml = (server: string, route = '/open/**') => `
server:
${server}
store: { driver: redis, url: "\${REDIS_URL}", key_prefix: "\${REDIS_PREFIX}" }
authz: { model: "${REPO_ROOT}/test/core/fixtures/model.fga" }
routes:
  - name: open
    match: { path: "${route}" }
    upstream: { url: "\${UPSTREAM_URL}" }
    public: true
`;

const RUNNING = [
  '  listen: 127.0.0.1:0',
  '  admin_listen: 127.0.0.1:0',
  '  limits: { header_bytes: 16KiB, client_timeout: 30s }',
  '  workers: 1',
  '  watch: false',
].join('\n');
const CHANGED = [
  '  listen: "127.0.0.1:1"',
  '  admin_listen: null',
  '  limits: { header_bytes: 4KiB, client_timeout: 5s }',
  '  workers: 2',
  '  watch: true',
].join('\n');

/** A GET with one header of `bytes` bytes; resolves the status. */
function getWithHeader(url: string, path: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { headers: { 'x-padding': 'a'.repeat(bytes) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('reload of keys read only at start', () => {
  let upstream: Upstream;
  let redis: TestRedis;
  beforeAll(async () => {
    upstream = await startUpstream();
    redis = await startRedis();
  });
  afterAll(async () => {
    await upstream?.close();
    await redis?.stop();
  });

  it('warns once per changed start-only key, naming it; the rest of the reload applies', async () => {
    const env = { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_PREFIX: redis.keyPrefix };
    const warden = await startWarden({ config: yaml(RUNNING), env });
    try {
      const warnings = () =>
        warden
          .logs()
          .split('\n')
          .filter((l) => l.includes('takes effect at the next start'))
          .map((l) => JSON.parse(l) as { level: string; path: string; msg: string; running: unknown; wanted: unknown });

      // A reload that changes no start-only key says nothing about a restart.
      expect(await warden.reload(yaml(RUNNING, '/moved/**'))).toBe(true);
      expect(warnings()).toEqual([]);

      // One start-only key changed: one warning, naming it.
      expect(await warden.reload(yaml(RUNNING.replace('16KiB', '4KiB'), '/new/**'))).toBe(true);
      expect(warnings().map((w) => w.path)).toEqual(['server.limits.header_bytes']);
      expect(warnings().find((w) => w.path === 'server.limits.header_bytes')).toMatchObject({
        level: 'warn',
        msg: 'server.limits.header_bytes changed: it takes effect at the next start',
        running: 16_384,
        wanted: 4_096,
      });
      // The route moved (the reload applied); the 16 KiB head limit of the running listener still holds.
      expect(await getWithHeader(warden.url, '/new/x', 8_000)).toBe(200);
      expect(await getWithHeader(warden.url, '/moved/x', 10)).toBe(404);

      const before = warnings().length;
      expect(await warden.reload(yaml(CHANGED))).toBe(true);
      expect(
        warnings()
          .slice(before)
          .map((w) => w.path)
          .sort(),
      ).toEqual(['server.admin_listen', 'server.limits.client_timeout', 'server.limits.header_bytes', 'server.listen', 'server.watch', 'server.workers']);
    } finally {
      await warden.close();
    }
  });
});
