/**
 * `server.workers: 2` on the built CLI: the workers share the admin port, and
 * whichever of them a scrape lands on answers for the whole cluster: requests
 * served by different workers (the audit lines say which) add up in every
 * single scrape.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from '../support/eventually.js';
import { metricValue, parseMetrics, scrape } from '../support/metrics.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startWardenProcess, type Service } from '../support/processes.js';

const REQUESTS = 24;

/** One request on its own connection (the cluster primary hands connections to workers in turn). */
function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('cluster metrics', () => {
  let redis: TestRedis;
  let upstream: Upstream;
  let warden: Service;
  let dir: string;
  let url: string;
  let admin: string;

  beforeAll(async () => {
    [redis, upstream] = await Promise.all([startRedis({ local: true }), startUpstream()]);
    dir = mkdtempSync(join(tmpdir(), 'warden-cluster-metrics-'));
    const [listen, adminPort] = [await freePort(), await freePort()];
    url = `http://127.0.0.1:${listen}`;
    admin = `http://127.0.0.1:${adminPort}`;
    writeFileSync(
      join(dir, 'gateway.yaml'),
      `server: { workers: 2 }
identity: { dev_issuer: true }
store: { driver: redis, url: "${redis.url}", key_prefix: "${redis.keyPrefix}" }
authz: { model: ${join(REPO_ROOT, 'policies/model.fga')} }
routes:
  - name: status
    match: { path: /status }
    upstream: { url: "${upstream.url}" }
    public: true
`,
    );
    warden = await startWardenProcess(
      'warden-cluster',
      join(dir, 'gateway.yaml'),
      { WARDEN_LISTEN: `127.0.0.1:${listen}`, WARDEN_ADMIN_LISTEN: `127.0.0.1:${adminPort}`, WARDEN_DATA_DIR: dir },
      url,
    );
    // Both workers up (each logs once it listens).
    const deadline = Date.now() + 30_000;
    while ((warden.output().match(/"msg":"warden listening"/g) ?? []).length < 2) {
      if (Date.now() > deadline) throw new Error(`workers did not start:\n${warden.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    await warden?.stop();
    await Promise.allSettled([upstream?.close(), redis?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('one scrape sums every worker’s counters, whichever worker answers it', async () => {
    for (let i = 0; i < REQUESTS; i++) expect(await get(`${url}/status`)).toBe(200);

    // Different workers served them: each audit line carries its worker's id.
    const audits = () =>
      warden
        .output()
        .split('\n')
        .filter((l) => l.includes('"audit":true') && l.includes('"route":"status"'))
        .map((l) => JSON.parse(l) as { worker: number });
    // Log lines reach the pipe a little after the responses.
    await until(() => audits().length === REQUESTS, { timeoutMs: 10_000 });
    expect(audits()).toHaveLength(REQUESTS);
    const perWorker = new Map<number, number>();
    for (const a of audits()) perWorker.set(a.worker, (perWorker.get(a.worker) ?? 0) + 1);
    expect(perWorker.size).toBe(2);
    expect(Math.min(...perWorker.values())).toBeGreaterThan(0);

    // Every scrape (each on a new connection, so on either worker) has the cluster's total.
    for (let i = 0; i < 6; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        const req = request(`${admin}/metrics`, { agent: false, headers: { connection: 'close' } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`))));
        });
        req.on('error', reject);
        req.end();
      });
      expect(metricValue(text, 'warden_requests_total', { route: 'status', status: '200' })).toBe(REQUESTS);
      expect(metricValue(text, 'warden_request_duration_seconds_count', { route: 'status' })).toBe(REQUESTS);
      expect(metricValue(text, 'warden_upstream_duration_seconds_count', { route: 'status' })).toBe(REQUESTS);
      // Gauges combine as declared: one build_info line, not one per worker.
      expect(parseMetrics(text).filter((s) => s.name === 'warden_build_info')).toHaveLength(1);
      expect(metricValue(text, 'warden_build_info')).toBe(1);
      const types = text
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2]);
      expect(new Set(types).size).toBe(types.length);
      expect(types).toContain('nodejs_heap_size_used_bytes');
    }
  });

  it('a scrape through fetch (keep-alive) answers the same', async () => {
    expect(metricValue(await scrape(admin), 'warden_requests_total', { route: 'status' })).toBe(REQUESTS);
  });
});
