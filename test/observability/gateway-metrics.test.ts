/**
 * Warden's operational metrics, read from real scrapes of /metrics on running
 * gateways (two instances on one real Redis): upstream latency by route,
 * authorization engine latency and decision-cache hits and misses, approvals
 * pending (from the shared store, the same on every instance) and decided,
 * config reloads by result with the last good load's time.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { METRICS } from '../../src/observability/catalog.js';
import { REPO_ROOT } from '../support/gateway.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { metricValue, scrape } from '../support/metrics.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from '../approvals/webhook-sink.js';
import { decide } from '../approvals/review-client.js';

const UPSTREAM_DELAY_MS = 120;

function gatewayYaml(): string {
  return `
identity: { dev_issuer: true }
store: { driver: redis, url: "\${REDIS_URL}", key_prefix: "\${REDIS_PREFIX}" }
authz:
  model: test/approvals/fixtures/model.fga
  tuples: test/approvals/fixtures/tuples.yaml
  cache_ttl: 1m
approvals:
  ttl: 2m
  hold: 200ms
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "metrics-test-webhook-secret-0123" }
routes:
  - name: payments
    match: { path: "/pay/:account/**", methods: [GET, DELETE] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize:
      - { user: "agent:{agent}", relation: can_call, object: "api:payments" }
      - { user: "user:{user}", relation: can_pay, object: "account:{path.account}" }
    approval:
      when: 'request.method == "DELETE"'
      message: "Close {path.account}"
  - name: gone
    match: { path: "/gone/**" }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
`;
}

describe('operational metrics on a real scrape', () => {
  let redis: TestRedis;
  let upstream: Upstream;
  let hook: WebhookSink;
  let a: WardenHandle;
  let b: WardenHandle;

  beforeAll(async () => {
    [redis, upstream, hook] = await Promise.all([startRedis({ local: true }), startUpstream(), startWebhookSink()]);
    upstream.setHandler((_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), UPSTREAM_DELAY_MS);
    });
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: redis.keyPrefix, HOOK_URL: hook.url, UPSTREAM_URL: upstream.url };
    a = await startWarden({ config: gatewayYaml(), env });
    b = await startWarden({ config: gatewayYaml(), env, dataDir: a.dataDir });
  });
  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await Promise.allSettled([upstream?.close(), hook?.close(), redis?.stop()]);
  });

  it('upstream latency by route: the upstream’s own time, and only for requests that reached (or failed at) it', async () => {
    const token = await a.token('bot', 'alice');
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${a.url}/pay/acme/balance`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      await res.text();
    }
    // Refused before the upstream: not an upstream observation.
    expect((await fetch(`${a.url}/pay/acme/balance`)).status).toBe(401);
    // Connection refused at the upstream: observed (that is the upstream's answer).
    expect((await fetch(`${a.url}/gone/x`)).status).toBe(502);

    const text = await scrape(a.adminUrl);
    expect(text).toMatch(/^# TYPE warden_upstream_duration_seconds histogram$/m);
    expect(metricValue(text, 'warden_upstream_duration_seconds_count', { route: 'payments' })).toBe(3);
    // Each took at least the upstream's delay: none is in a bucket below it, all are in the next ones.
    expect(metricValue(text, 'warden_upstream_duration_seconds_bucket', { route: 'payments', le: '0.1' })).toBe(0);
    expect(metricValue(text, 'warden_upstream_duration_seconds_bucket', { route: 'payments', le: '1' })).toBe(3);
    expect(metricValue(text, 'warden_upstream_duration_seconds_sum', { route: 'payments' })).toBeGreaterThanOrEqual((3 * (UPSTREAM_DELAY_MS - 5)) / 1000);
    expect(metricValue(text, 'warden_upstream_duration_seconds_count', { route: 'gone' })).toBe(1);
    // The request histogram counts all four requests to payments.
    expect(metricValue(text, 'warden_request_duration_seconds_count', { route: 'payments' })).toBe(4);
  });

  it('authz: engine latency by engine for what the cache could not answer, cache hits and misses for the hit ratio', async () => {
    const before = await scrape(b.adminUrl);
    const engineBefore = metricValue(before, 'warden_authz_check_duration_seconds_count', { engine: 'embedded' }) ?? 0;
    const token = await b.token('bot', 'alice');
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${b.url}/pay/acme/balance`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      await res.text();
    }
    const text = await scrape(b.adminUrl);
    expect(text).toMatch(/^# TYPE warden_authz_check_duration_seconds histogram$/m);
    // Each of the 8 checks resolves in a few steps, which the embedded engine answers itself without the decision
    // cache (cheaper than a cache entry: docs/authorization.md, decision cache): 8 engine observations, no lookups.
    // The cache's own hit/miss counting is covered in test/authz/cache.test.ts and test/authz/embedded-cheap.test.ts.
    expect((metricValue(text, 'warden_authz_check_duration_seconds_count', { engine: 'embedded' }) ?? 0) - engineBefore).toBe(8);
    expect(metricValue(text, 'warden_authz_cache_total', { result: 'miss' }) ?? 0).toBe(0);
    expect(metricValue(text, 'warden_authz_cache_total', { result: 'hit' }) ?? 0).toBe(0);
  });

  it('approvals pending is read from the shared store: held on one instance, the same on the other; decided is counted by outcome', async () => {
    const token = await a.token('bot', 'alice');
    const held = await fetch(`${a.url}/pay/acme/all`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(held.status).toBe(202);
    const delivery = await hook.next();
    expect(metricValue(await scrape(a.adminUrl), 'warden_approvals_pending')).toBe(1);
    expect(metricValue(await scrape(b.adminUrl), 'warden_approvals_pending')).toBe(1);

    // The link names the public URL (not set here); the review page is served by instance B.
    const review = delivery.notice.review_url.replace(/^http:\/\/[^/]+/, b.url);
    expect((await decide(fetch, review, 'approve')).status).toBe(200);
    const [ta, tb] = [await scrape(a.adminUrl), await scrape(b.adminUrl)];
    expect(metricValue(ta, 'warden_approvals_pending')).toBe(0);
    expect(metricValue(tb, 'warden_approvals_pending')).toBe(0);
    const decided = (t: string) => metricValue(t, 'warden_approval_decisions_total', { status: 'approved' }) ?? 0;
    expect(decided(ta) + decided(tb)).toBe(1);
  });

  it('every family of the catalog the Grafana dashboard queries is in a real scrape, declared with its type', async () => {
    const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/grafana-dashboard.json'), 'utf8')) as {
      panels: Array<{ targets: Array<{ expr: string }> }>;
    };
    const queried = new Set(
      dashboard.panels.flatMap((p) =>
        p.targets.flatMap((t) => [...t.expr.matchAll(/\b(warden_[a-z0-9_]+)/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, ''))),
      ),
    );
    // JWKS fetches and vault refreshes need an external IdP and a vault provider: their scrapes are in test/core/oidc.test.ts and test/vault/e2e.test.ts.
    const elsewhere = new Set(['warden_jwks_fetches_total', 'warden_vault_refresh_total', 'warden_vault_refresh_seconds']);
    const declared = [...queried].filter((name) => name in METRICS && !elsewhere.has(name));
    expect(declared).toEqual(expect.arrayContaining(['warden_upstream_duration_seconds', 'warden_authz_check_duration_seconds', 'warden_approvals_pending']));
    const text = (await scrape(a.adminUrl)) + (await scrape(b.adminUrl));
    for (const name of declared) expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
  });

  it('config reloads by result, and the time of the last one that succeeded', async () => {
    const t0 = Date.now() / 1000;
    const start = metricValue(await scrape(a.adminUrl), 'warden_config_last_reload_success_timestamp_seconds')!;
    expect(start).toBeGreaterThan(t0 - 120);
    expect(start).toBeLessThanOrEqual(t0);

    expect(await a.reload(gatewayYaml())).toBe(true);
    const afterGood = await scrape(a.adminUrl);
    expect(metricValue(afterGood, 'warden_config_reloads_total', { result: 'success' })).toBe(1);
    expect(metricValue(afterGood, 'warden_config_reloads_total', { result: 'failure' })).toBe(0);
    const good = metricValue(afterGood, 'warden_config_last_reload_success_timestamp_seconds')!;
    expect(good).toBeGreaterThanOrEqual(t0);

    expect(await a.reload('routes: [ { name: broken } ]\n')).toBe(false);
    const afterBad = await scrape(a.adminUrl);
    expect(metricValue(afterBad, 'warden_config_reloads_total', { result: 'failure' })).toBe(1);
    expect(metricValue(afterBad, 'warden_config_reloads_total', { result: 'success' })).toBe(1);
    expect(metricValue(afterBad, 'warden_config_last_reload_success_timestamp_seconds')).toBe(good);
    expect(afterBad).toMatch(/^# HELP warden_config_reloads_total /m);
  });
});
