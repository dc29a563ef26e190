/**
 * Approvals across instances on one real Redis: a decision taken on B releases
 * the request held on A (pub/sub, no polling), concurrent decisions on two
 * instances make one transition, and a pending approval survives a restart of
 * every instance and is still executed exactly once.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from './webhook-sink.js';
import { decide, openReview, submitDecision } from './review-client.js';
import { devPolicyYaml, REDIS_STORE_YAML } from '../support/config.js';

function gatewayYaml(hold: string): string {
  return `
server:
  listen: 127.0.0.1:0
${REDIS_STORE_YAML}
${devPolicyYaml('test/approvals/fixtures')}
approvals:
  ttl: 5m
  hold: ${hold}
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "redis-test-webhook-secret" }
routes:
  - name: payments
    match: { path: "/pay/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    approval: { message: "Pay {body.amount} from {path.account}" }
`;
}

/** The same review link, served by another instance. */
const on = (w: WardenHandle, link: string) => link.replace(/^https?:\/\/[^/]+/, w.url);

describe('approvals on two instances sharing Redis', () => {
  let redis: TestRedis;
  let upstream: Upstream;
  let hook: WebhookSink;
  let env: Record<string, string>;
  const started: WardenHandle[] = [];

  const start = async (hold: string) => {
    const w = await startWarden({ config: gatewayYaml(hold), env });
    started.push(w);
    return w;
  };
  const post = async (w: WardenHandle, path: string, body: string, extra: Record<string, string> = {}) =>
    fetch(`${w.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await w.token('bot', 'alice')}`, 'content-type': 'application/json', ...extra },
      body,
    });
  const forwarded = (path: string) => upstream.requests.filter((r) => r.url.startsWith(path)).length;

  beforeAll(async () => {
    [redis, upstream, hook] = await Promise.all([startRedis(), startUpstream(), startWebhookSink()]);
    env = { REDIS_URL: redis.url, REDIS_PREFIX: redis.keyPrefix, UPSTREAM_URL: upstream.url, HOOK_URL: hook.url };
  });

  afterAll(async () => {
    await Promise.allSettled(started.map((w) => w.close()));
    await Promise.allSettled([upstream?.close(), hook?.close()]);
    await redis?.stop();
  });

  it('releases on A the request approved on B', async () => {
    // The hold (60 s) is longer than the test timeout: only the pub/sub event can release it in time.
    const [a, b] = await Promise.all([start('60s'), start('60s')]);
    const body = JSON.stringify({ amount: 10 });
    const held = post(a, '/pay/acme/cross', body);
    const d = await hook.next((x) => x.notice.url === '/pay/acme/cross');
    expect((await decide(fetch, on(b, d.notice.review_url), 'approve')).status).toBe(200);
    const res = await held;
    expect(res.status).toBe(200);
    expect(forwarded('/acme/cross')).toBe(1);
    await Promise.all([a.close(), b.close()]);
  }, 30_000);

  it('makes exactly one transition for approve on A and deny on B at the same time', async () => {
    const [a, b] = await Promise.all([start('100ms'), start('100ms')]);
    const res = await post(a, '/pay/acme/race', JSON.stringify({ amount: 11 }));
    expect(res.status).toBe(202);
    const { approval_id } = (await res.json()) as { approval_id: string };
    const d = await hook.next((x) => x.notice.id === approval_id);
    const [fa, fb] = await Promise.all([openReview(fetch, on(a, d.notice.review_url)), openReview(fetch, on(b, d.notice.review_url))]);
    const results = await Promise.all([
      submitDecision(fetch, on(a, d.notice.review_url), fa, 'approve'),
      submitDecision(fetch, on(b, d.notice.review_url), fb, 'deny'),
      submitDecision(fetch, on(b, d.notice.review_url), fb, 'deny'),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    await Promise.all([a.close(), b.close()]);
  });

  it('keeps a pending approval across a restart of every instance and executes it exactly once', async () => {
    const [a, b] = await Promise.all([start('100ms'), start('100ms')]);
    const body = JSON.stringify({ amount: 12 });
    const first = await post(a, '/pay/acme/restart', body);
    expect(first.status).toBe(202);
    const { approval_id } = (await first.json()) as { approval_id: string };
    const d = await hook.next((x) => x.notice.id === approval_id);
    await Promise.all([a.close(), b.close()]);

    const [a2, b2] = await Promise.all([start('100ms'), start('100ms')]);
    const stillPending = await post(b2, '/pay/acme/restart', body);
    expect(stillPending.status).toBe(202);
    expect(((await stillPending.json()) as { approval_id: string }).approval_id).toBe(approval_id);
    expect((await decide(fetch, on(b2, d.notice.review_url), 'approve')).status).toBe(200);

    // The agent comes back on both instances at once: one runs, the other is refused.
    const [x, y] = await Promise.all([
      post(a2, '/pay/acme/restart', body, { 'warden-approval': approval_id }),
      post(b2, '/pay/acme/restart', body, { 'warden-approval': approval_id }),
    ]);
    expect([x.status, y.status].sort()).toEqual([200, 403]);
    const refused = x.status === 403 ? x : y;
    expect(((await refused.json()) as { code: string }).code).toBe('approval_mismatch');
    expect(forwarded('/acme/restart')).toBe(1);
  });
});
