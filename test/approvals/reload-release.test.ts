/**
 * A request held across a reload, on the embedded engine: its tuples are the
 * configuration generation's own (files read at start and at each reload).
 * The release's re-check must ask the generation serving when the approval
 * comes, so a tuple the reload removed no longer allows the held request.
 * Real Warden, a recording upstream, a webhook sink for the review link.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from './webhook-sink.js';
import { decide } from './review-client.js';

const MODEL = `model
  schema 1.1
type user
type agent
type api
  relations
    define can_call: [agent]
type account
  relations
    define can_pay: [user]
`;

const CALLER = '- { user: agent:bot, relation: can_call, object: api:payments }\n';
const payer = (account: string) => `- { user: user:alice, relation: can_pay, object: account:${account} }\n`;

function gatewayYaml(dir: string): string {
  return `
server:
  listen: 127.0.0.1:0
identity:
  dev_issuer: true
authz: { engine: embedded, model: ${dir}/model.fga, tuples: ${dir}/tuples.yaml, cache_ttl: 5m }
approvals:
  ttl: 2m
  hold: 20s
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "\${HOOK_SECRET}" }
routes:
  - name: payments
    match: { path: "/pay/:account/**", methods: [POST] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize:
      - { user: "agent:{agent}", relation: can_call, object: "api:payments" }
      - { user: "user:{user}", relation: can_pay, object: "account:{path.account}" }
    approval:
      when: "true"
      message: "Pay {body.amount} to {body.to} from {path.account}"
`;
}

describe('a request held across a reload (embedded engine)', () => {
  let dir: string;
  let upstream: Upstream;
  let hook: WebhookSink;
  let warden: WardenHandle;

  const forwarded = (path: string) => upstream.requests.filter((r) => r.url === path).length;
  const writeTuples = (text: string) => writeFileSync(join(dir, 'tuples.yaml'), text);

  /** Send the payment and wait until it is held (its approval announced): its answer to come, and the review link. */
  async function held(account: string): Promise<{ answer: Promise<Response>; reviewUrl: string }> {
    const token = await warden.token('bot', 'alice');
    const answer = fetch(`${warden.url}/pay/${account}/transfers`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 250, to: 'bob' }),
    });
    const delivery = await hook.next((d) => d.notice.url.includes(`/pay/${account}/`));
    return { answer, reviewUrl: delivery.notice.review_url };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-reload-release-'));
    writeFileSync(join(dir, 'model.fga'), MODEL);
    writeTuples(CALLER + payer('kept') + payer('removed'));
    [upstream, hook] = await Promise.all([startUpstream(), startWebhookSink()]);
    warden = await startWarden({
      config: gatewayYaml(dir),
      env: { HOOK_URL: hook.url, HOOK_SECRET: 'reload-release-webhook-secret-0123', UPSTREAM_URL: upstream.url },
    });
  }, 60_000);

  afterAll(async () => {
    await warden?.close();
    await Promise.allSettled([hook?.close(), upstream?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('control: the tuple kept by the reload, the approved held request is forwarded exactly once', async () => {
    const { answer, reviewUrl } = await held('kept');
    expect(await warden.reload()).toBe(true);
    expect((await decide(fetch, reviewUrl, 'approve')).status).toBe(200);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(forwarded('/kept/transfers')).toBe(1);
  });

  it('the tuple removed by a reload while held: the approval releases nothing (403 forbidden)', async () => {
    const { answer, reviewUrl } = await held('removed');
    writeTuples(CALLER + payer('kept'));
    expect(await warden.reload()).toBe(true);
    expect((await decide(fetch, reviewUrl, 'approve')).status).toBe(200);
    const res = await answer;
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'forbidden', detail: 'denied: user:alice is not can_pay of account:removed' });
    expect(forwarded('/removed/transfers')).toBe(0);
  });
});
