/**
 * Warden as a CIBA poll-mode client of a real OpenID provider (oidc-provider
 * with its CIBA feature): the provider's user approves, denies, lets the
 * request expire, or the provider asks Warden to slow down.
 *
 * A small Koa middleware on the provider shortens the poll interval to 1 s
 * (CIBA's default is 5 s) and, for chosen requests, answers `slow_down` or
 * `expired_token` instead of `authorization_pending` — answers oidc-provider
 * does not produce on its own in a test's time frame.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startOidcProvider, type OidcTestProvider, type BackchannelRequestInfo } from '../support/oidc.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml } from '../support/config.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

describe('approvals through CIBA', () => {
  let op: OidcTestProvider;
  let upstream: Upstream;
  let warden: WardenHandle;
  const slowDown = new Set<string>();
  const expire = new Set<string>();
  const polls = new Map<string, number[]>();
  const arrivals: Array<(r: BackchannelRequestInfo) => void> = [];
  /** The account the provider resolves a login_hint to (by default the hint itself). */
  const hintAccounts = new Map<string, string>();

  const nextBackchannel = () =>
    new Promise<BackchannelRequestInfo>((resolve) => {
      arrivals.push(resolve);
    });

  beforeAll(async () => {
    op = await startOidcProvider({
      ciba: {
        processLoginHint: (hint) => hintAccounts.get(hint) ?? hint,
        onBackchannelRequest: (r) => {
          arrivals.shift()?.(r);
        },
      },
    });
    op.provider.use(async (ctx: any, next: () => Promise<void>) => {
      await next();
      if (ctx.path === '/backchannel' && ctx.status === 200 && ctx.body?.auth_req_id) {
        ctx.body = { ...ctx.body, interval: 1 };
      }
      const id = ctx.oidc?.params?.auth_req_id as string | undefined;
      if (ctx.path === '/token' && id) {
        polls.set(id, [...(polls.get(id) ?? []), Date.now()]);
        if (ctx.body?.error === 'authorization_pending' && slowDown.delete(id)) ctx.body = { error: 'slow_down', error_description: 'poll less often' };
        if (ctx.body?.error === 'authorization_pending' && expire.has(id)) ctx.body = { error: 'expired_token', error_description: 'expired' };
      }
    });
    upstream = await startUpstream();
    const client = op.clients.ciba;
    warden = await startWarden({
      config: `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures')}
approvals:
  hold: 25s
  ttl: 2m
  ciba:
    issuer: \${OP_ISSUER}
    client_id: \${CIBA_CLIENT_ID}
    client_secret: \${CIBA_CLIENT_SECRET}
    login_hint: "{user}"
    user_claim: sub # the default, said here; ciba-id-token.test.ts shows another claim naming the approver
    requested_expiry: 90s
routes:
  - name: payments
    match: { path: "/pay/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    approval: { message: "Pay {body.amount}" }
`,
      env: { OP_ISSUER: op.issuer, CIBA_CLIENT_ID: client.client_id, CIBA_CLIENT_SECRET: client.client_secret ?? '', UPSTREAM_URL: upstream.url },
    });
  });

  afterAll(async () => {
    await Promise.allSettled([warden?.close()]);
    await Promise.allSettled([upstream?.close(), op?.stop()]);
  });

  const send = async (path: string, amount: number) =>
    fetch(`${warden.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await warden.token('bot', 'alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount }),
    });
  const forwarded = (path: string) => upstream.requests.filter((r) => r.url.startsWith(path)).length;

  it('asks the provider for the user with login_hint and binding_message; the user approves and the held request runs', async () => {
    const arrived = nextBackchannel();
    const held = send('/pay/acme/ciba-ok', 1);
    const req = await arrived;
    expect(req.accountId).toBe('alice');
    expect(req.loginHint).toBe('alice');
    expect(req.bindingMessage).toMatch(/^[2-9A-Z]{3}-[2-9A-Z]{3}$/);
    expect(req.params.requested_expiry).toBe('90');
    await op.approveBackchannel(req.authReqId);
    const res = await held;
    expect(res.status).toBe(200);
    expect(forwarded('/acme/ciba-ok')).toBe(1);
  });

  it('an approval the provider got from someone else (its ID token names mallory) does not release the request', async () => {
    // The provider resolves alice's hint to another account (a misconfigured or colliding directory):
    // its genuine ID token then names mallory, who may not approve alice's request.
    hintAccounts.set('alice', 'mallory');
    const agent = new AbortController();
    try {
      const arrived = nextBackchannel();
      const held = fetch(`${warden.url}/pay/acme/ciba-other`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await warden.token('bot', 'alice')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 5 }),
        signal: agent.signal,
      }).catch(() => undefined);
      const req = await arrived;
      expect(req.accountId).toBe('mallory');
      await op.approveBackchannel(req.authReqId);
      const refused = 'CIBA approval by someone not entitled to approve: refused, the approval stays pending';
      for (let i = 0; i < 100 && !warden.logs().includes(refused) && forwarded('/acme/ciba-other') === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(forwarded('/acme/ciba-other')).toBe(0);
      expect(warden.logs()).toContain(refused);
      expect(warden.logs()).toContain('"approver":"mallory"');
      agent.abort();
      await held;
    } finally {
      hintAccounts.clear();
    }
    expect(forwarded('/acme/ciba-other')).toBe(0);
  });

  it('denies when the provider answers access_denied', async () => {
    const arrived = nextBackchannel();
    const held = send('/pay/acme/ciba-deny', 2);
    const req = await arrived;
    await op.denyBackchannel(req.authReqId);
    const res = await held;
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe('approval_denied');
    expect(forwarded('/acme/ciba-deny')).toBe(0);
  });

  it('expires when the provider answers expired_token, and never runs it afterwards', async () => {
    const arrived = nextBackchannel();
    const held = send('/pay/acme/ciba-expire', 3);
    const req = await arrived;
    expire.add(req.authReqId);
    const res = await held;
    expect(res.status).toBe(403);
    const problem = (await res.json()) as { code: string; approval_id: string };
    expect(problem.code).toBe('approval_expired');
    const retry = await fetch(`${warden.url}/pay/acme/ciba-expire`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await warden.token('bot', 'alice')}`, 'content-type': 'application/json', 'warden-approval': problem.approval_id },
      body: JSON.stringify({ amount: 3 }),
    });
    expect(((await retry.json()) as { code: string }).code).toBe('approval_expired');
    expect(forwarded('/acme/ciba-expire')).toBe(0);
  });

  it('adds 5 seconds to the poll interval on slow_down and still completes', async () => {
    const arrived = nextBackchannel();
    const held = send('/pay/acme/ciba-slow', 4);
    const req = await arrived;
    slowDown.add(req.authReqId);
    // Wait for the slow_down answer and the poll after it, then approve.
    while ((polls.get(req.authReqId) ?? []).length < 2) await new Promise((r) => setTimeout(r, 200));
    await op.approveBackchannel(req.authReqId);
    const res = await held;
    expect(res.status).toBe(200);
    const times = polls.get(req.authReqId)!;
    // Interval 1 s before slow_down, then at least 1 + 5 s between polls.
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(6_000 - 100);
    expect(warden.logs()).toContain('CIBA provider asked to slow down');
  }, 30_000);
});
