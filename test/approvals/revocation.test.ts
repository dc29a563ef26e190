/**
 * Revocation between approval and release (SECURITY.md): a real OpenFGA server
 * behind a real Warden, a recording upstream and a webhook sink for the review
 * link. The tuple that allowed a request is deleted after it was held; the
 * release's re-check (higher consistency, past the decision cache) must refuse
 * it, whether the held request is released in place or the agent comes back.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { createStoreWithModel, deleteStore, dslToJson, startOpenFga, type HttpTupleKey, type OpenFgaServer } from '../support/openfga.js';
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

/** The decision cache outlives every test here: an ordinary check after the first one is a hit. */
function gatewayYaml(hold: string): string {
  return `
server:
  listen: 127.0.0.1:0
identity:
  dev_issuer: true
authz:
  engine: openfga
  openfga: { api_url: "\${FGA_URL}", store_id: "\${FGA_STORE}", model_id: "\${FGA_MODEL}" }
  cache_ttl: 5m
approvals:
  ttl: 2m
  hold: ${hold}
  notify:
    - webhook: { url: "\${HOOK_URL}", secret: "\${HOOK_SECRET}" }
routes:
  - name: payments
    match: { path: "/pay/:account/**", methods: [GET, POST] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize:
      - { user: "agent:{agent}", relation: can_call, object: "api:payments" }
      - { user: "user:{user}", relation: can_pay, object: "account:{path.account}" }
    approval:
      when: 'request.method == "POST"'
      message: "Pay {body.amount} to {body.to} from {path.account}"
`;
}

describe('revocation between approval and release (real OpenFGA)', () => {
  let fga: OpenFgaServer;
  let storeId: string;
  let modelId: string;
  let upstream: Upstream;
  let hook: WebhookSink;
  let slow: WardenHandle; // holds the request until the decision
  let quick: WardenHandle; // answers 202 almost at once; the agent comes back

  /** Write and delete tuples over OpenFGA's HTTP API (not through the code under test). */
  async function writeTuples(change: { writes?: HttpTupleKey[]; deletes?: HttpTupleKey[] }): Promise<void> {
    const body: Record<string, unknown> = { authorization_model_id: modelId };
    if (change.writes) body.writes = { tuple_keys: change.writes };
    if (change.deletes) body.deletes = { tuple_keys: change.deletes };
    const res = await fetch(`${fga.apiUrl}/stores/${storeId}/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`OpenFGA write → ${res.status}: ${await res.text()}`);
  }

  const canPay = (account: string): HttpTupleKey => ({ user: 'user:alice', relation: 'can_pay', object: `account:${account}` });
  /** How many requests for this upstream path reached the upstream (recorded at their head). */
  const forwarded = (path: string) => upstream.requests.filter((r) => r.url === path).length;
  const payment = JSON.stringify({ amount: 250, to: 'bob' });

  async function pay(warden: WardenHandle, account: string, approvalId?: string): Promise<Response> {
    const token = await warden.token('bot', 'alice');
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    if (approvalId) headers['warden-approval'] = approvalId;
    return fetch(`${warden.url}/pay/${account}/transfers`, { method: 'POST', headers, body: payment });
  }

  async function approve(approvalId: string): Promise<void> {
    const delivery = await hook.next((d) => d.notice.id === approvalId);
    const answer = await decide(fetch, delivery.notice.review_url, 'approve');
    expect(answer.status).toBe(200);
  }

  beforeAll(async () => {
    fga = await startOpenFga();
    ({ storeId, modelId } = await createStoreWithModel(fga.apiUrl, dslToJson(MODEL), [{ user: 'agent:bot', relation: 'can_call', object: 'api:payments' }]));
    [upstream, hook] = await Promise.all([startUpstream(), startWebhookSink()]);
    const env = {
      FGA_URL: fga.apiUrl,
      FGA_STORE: storeId,
      FGA_MODEL: modelId,
      HOOK_URL: hook.url,
      HOOK_SECRET: 'revocation-webhook-secret-0123456789',
      UPSTREAM_URL: upstream.url,
    };
    slow = await startWarden({ config: gatewayYaml('20s'), env });
    quick = await startWarden({ config: gatewayYaml('300ms'), env });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([slow?.close(), quick?.close()]);
    await Promise.allSettled([hook?.close(), upstream?.close()]);
    if (fga) {
      await deleteStore(fga.apiUrl, storeId);
      await fga.stop();
    }
  });

  describe('in-hold release', () => {
    /** Send the payment and wait until it is held (its approval was announced): its answer to come, and the review link. */
    async function held(account: string): Promise<{ answer: Promise<Response>; reviewUrl: string }> {
      const answer = pay(slow, account);
      const delivery = await hook.next((d) => d.notice.url.includes(`/pay/${account}/`));
      return { answer, reviewUrl: delivery.notice.review_url };
    }

    it('control: with the tuple kept, the approved held request is forwarded exactly once', async () => {
      await writeTuples({ writes: [canPay('hold-kept')] });
      const { answer, reviewUrl } = await held('hold-kept');
      expect(forwarded('/hold-kept/transfers')).toBe(0);
      expect((await decide(fetch, reviewUrl, 'approve')).status).toBe(200);
      const res = await answer;
      expect(res.status).toBe(200);
      expect(forwarded('/hold-kept/transfers')).toBe(1);
    });

    it('the tuple deleted while held: the approval releases nothing (403 forbidden)', async () => {
      await writeTuples({ writes: [canPay('hold-revoked')] });
      const { answer, reviewUrl } = await held('hold-revoked');
      await writeTuples({ deletes: [canPay('hold-revoked')] });
      expect((await decide(fetch, reviewUrl, 'approve')).status).toBe(200);
      const res = await answer;
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(await res.json()).toMatchObject({ code: 'forbidden' });
      expect(forwarded('/hold-revoked/transfers')).toBe(0);
    });
  });

  describe('come-back release', () => {
    /** Send the payment, get 202 approval_pending, and have the user approve it. */
    async function approvedByUser(account: string): Promise<string> {
      const first = await pay(quick, account);
      expect(first.status).toBe(202);
      const problem = (await first.json()) as { code: string; approval_id: string };
      expect(problem.code).toBe('approval_pending');
      await approve(problem.approval_id);
      return problem.approval_id;
    }

    it('control: with the tuple kept, the approved request runs exactly once when the agent comes back', async () => {
      await writeTuples({ writes: [canPay('back-kept')] });
      const approvalId = await approvedByUser('back-kept');
      expect(forwarded('/back-kept/transfers')).toBe(0);
      const released = await pay(quick, 'back-kept', approvalId);
      expect(released.status).toBe(200);
      expect(forwarded('/back-kept/transfers')).toBe(1);
    });

    it('the tuple deleted after approval: the come-back within the cache TTL is refused (403 forbidden)', async () => {
      await writeTuples({ writes: [canPay('back-revoked')] });
      const approvalId = await approvedByUser('back-revoked');
      await writeTuples({ deletes: [canPay('back-revoked')] });

      // The decision cache still allows these checks: an ordinary (not held) request on the same account goes through.
      const token = await quick.token('bot', 'alice');
      const stale = await fetch(`${quick.url}/pay/back-revoked/balance`, { headers: { authorization: `Bearer ${token}` } });
      expect(stale.status).toBe(200);
      expect(forwarded('/back-revoked/balance')).toBe(1);

      const released = await pay(quick, 'back-revoked', approvalId);
      expect(released.status).toBe(403);
      expect(released.headers.get('content-type')).toContain('application/problem+json');
      expect(await released.json()).toMatchObject({ code: 'forbidden' });
      expect(forwarded('/back-revoked/transfers')).toBe(0);
    });
  });
});
