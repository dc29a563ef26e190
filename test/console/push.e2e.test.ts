/**
 * Web Push end to end, without a browser: alice signs in (dev login over
 * HTTP), subscribes from the console with keys made the way a browser makes
 * them, pointing at a real HTTP push service on loopback. A held request
 * makes Warden push; the test decrypts exactly what arrived (RFC 8291/8188,
 * implemented in test/support/push-service.ts) and verifies the VAPID JWT
 * (RFC 8292). The payload carries the rule's message and a console link and
 * none of the body's bytes or the review secret. 404/410 deletes the
 * subscription; a hanging push service times out; neither touches the
 * approval. Subscriptions are the session subject's own (bob cannot remove
 * alice's), forms need the CSRF token and Warden's origin, and an endpoint
 * outside the endpoint rule is refused.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateVapidKeys } from '../../src/approvals/push/vapid.js';
import { devPolicyYaml } from '../support/config.js';
import { until } from '../support/eventually.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { metricValue, scrape } from '../support/metrics.js';
import { decryptPush, newBrowserKeys, startPushService, verifyVapid, type BrowserKeys, type PushService } from '../support/push-service.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/login/fixtures')}
approvals:
  hold: 100ms
  push:
    vapid_public_key: \${VAPID_PUBLIC}
    vapid_private_key: \${VAPID_PRIVATE}
    subject: mailto:platform@example.com
    timeout: 1s
    allow_loopback: true
routes:
  - name: notes
    match: { path: "/notes/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /notes }
    authorize: [{ user: "agent:bot", relation: can_call, object: "api:notes" }]
    approval: { when: 'request.method == "POST"', message: "Change note {request.path}" }
  - name: pay
    match: { path: "/pay/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "agent:bot", relation: can_call, object: "api:notes" }]
    approval: { message: "Payment {request.path}", approvers: { relation: approver, object: "team:finance" } }
`;

/** The first defined value `f` gives (polling). */
async function eventually<T>(f: () => T | undefined | Promise<T | undefined>, options: { timeoutMs?: number } = {}): Promise<T> {
  let value: T | undefined;
  await until(async () => (value = await f()) !== undefined, options);
  return value as T;
}

const BODY_MARKER = 'BODY-BYTES-7f3a9c-do-not-push';

describe('Web Push of new approvals (local push service, RFC 8291 + VAPID)', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let push: PushService;
  const vapid = generateVapidKeys();

  beforeAll(async () => {
    [upstream, push] = await Promise.all([startUpstream(), startPushService()]);
    warden = await startWarden({
      config: CONFIG,
      env: { UPSTREAM_URL: upstream.url, VAPID_PUBLIC: vapid.publicKey, VAPID_PRIVATE: vapid.privateKey },
    });
  });

  afterAll(async () => {
    await warden?.close();
    await push?.close();
    await upstream?.close();
  });

  /** Sign in through the dev login with plain HTTP; the session cookie and the console's CSRF token. */
  async function signIn(user: string): Promise<{ cookie: string; csrf: string; html: string }> {
    const login = await fetch(`${warden.url}/.warden/login`);
    const tx = /warden_signin=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1];
    const loginCsrf = /name="csrf" value="([^"]+)"/.exec(await login.text())![1];
    const res = await fetch(`${warden.url}/.warden/login/dev`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `warden_signin=${tx}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: loginCsrf, user }),
    });
    expect(res.status).toBe(303);
    const cookie = `warden_session=${/warden_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]}`;
    const page = await fetch(`${warden.url}/.warden/console`, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(html)![1];
    return { cookie, csrf, html };
  }

  const post = (path: string, who: { cookie: string }, form: Record<string, string>, headers: Record<string, string> = {}) =>
    fetch(`${warden.url}/.warden/console${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: who.cookie, 'content-type': 'application/x-www-form-urlencoded', origin: warden.url, ...headers },
      body: new URLSearchParams(form),
    });

  const subscribe = (who: { cookie: string; csrf: string }, endpoint: string, keys: BrowserKeys) =>
    post('/push/subscribe', who, { csrf: who.csrf, endpoint, p256dh: keys.p256dh, auth: keys.auth }, {});

  async function hold(user: string, path: string, body: string): Promise<string> {
    const token = await warden.token('bot', user);
    const res = await fetch(`${warden.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { approval_id: string }).approval_id;
  }

  const metric = async (result: string) => metricValue(await scrape(warden.adminUrl), 'warden_push_notifications_total', { result }) ?? 0;

  it('the console offers notifications with the VAPID public key, the service worker and push.js under its CSP', async () => {
    const alice = await signIn('alice');
    expect(alice.html).toContain(`data-key="${vapid.publicKey}"`);
    expect(alice.html).toContain('<script src="/.warden/console/static/push.js" defer></script>');
    const page = await fetch(`${warden.url}/.warden/console`, { headers: { cookie: alice.cookie } });
    expect(page.headers.get('content-security-policy')).toContain("worker-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const sw = await fetch(`${warden.url}/.warden/console/sw.js`);
    expect(sw.status).toBe(200);
    expect(sw.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(sw.headers.get('service-worker-allowed')).toBe('/.warden/console');
    expect(await sw.text()).toContain("addEventListener('push'");
    expect((await fetch(`${warden.url}/.warden/console/static/push.js`)).status).toBe(200);
  });

  it('a held request is pushed to alice’s browser: decrypted payload has the message and console link, no body bytes; VAPID verifies', async () => {
    const alice = await signIn('alice');
    const keys = newBrowserKeys();
    const endpoint = push.endpoint('alice-1');
    const sub = await subscribe(alice, endpoint, keys);
    expect(sub.status).toBe(201);
    expect(((await sub.json()) as { subscription: string }).subscription).toMatch(/^[0-9a-f]{16}$/);
    const before = push.messages.length;
    const id = await hold('alice', '/notes/n1', JSON.stringify({ title: 'groceries', secret: BODY_MARKER }));

    const msg = await eventually(() => push.messages.slice(before).find((m) => m.path === '/push/alice-1'));
    expect(push.messages.slice(before).filter((m) => m.path === '/push/alice-1')).toHaveLength(1);
    // RFC 8030 §5 / RFC 8291 §4: aes128gcm, a TTL, an urgency; no plaintext anywhere on the wire.
    expect(msg.headers['content-encoding']).toBe('aes128gcm');
    expect(msg.headers['content-type']).toBe('application/octet-stream');
    expect(Number(msg.headers.ttl)).toBeGreaterThan(0);
    expect(Number(msg.headers.ttl)).toBeLessThanOrEqual(600);
    expect(msg.headers.urgency).toBe('high');
    expect(msg.body.includes(Buffer.from('Change note'))).toBe(false);

    const { claims, k } = await verifyVapid(String(msg.headers.authorization), push.origin);
    expect(k).toBe(vapid.publicKey);
    expect(claims.aud).toBe(push.origin);
    expect(claims.sub).toBe('mailto:platform@example.com');

    const plain = decryptPush(msg.body, keys);
    const text = plain.toString('utf8');
    const payload = JSON.parse(text) as Record<string, string>;
    expect(payload.message).toBe('Change note /notes/n1');
    expect(payload.url).toBe(`${warden.url}/.warden/console#approval-${id}`);
    expect(payload.agent).toBe('bot');
    expect(payload.tag).toBe(`approval-${id}`);
    expect(text).not.toContain(BODY_MARKER);
    expect(text).not.toContain('groceries');
    expect(text).not.toContain('review?t=');
    expect(text).not.toMatch(/"t":|token|Bearer/i);
    expect(Object.keys(payload).sort()).toEqual(['agent', 'code', 'expires_at', 'message', 'tag', 'title', 'type', 'url', 'v']);

    // The approval itself is untouched by the push: still pending, decidable as before.
    expect(warden.logs()).not.toContain(vapid.privateKey);
    expect(warden.logs()).not.toContain(keys.auth);
    expect(warden.logs()).not.toContain('/push/alice-1');
    // Counted once the push service has answered, which may be after the test saw the message arrive there.
    expect(await eventually(async () => ((await metric('sent')) >= 1 ? true : undefined), { timeoutMs: 5_000 })).toBe(true);
  });

  it('404/410 from the push service deletes the subscription; a hanging one times out; the approval is unaffected', async () => {
    const dave = await signIn('dave');
    push.answer('/push/dave-gone', 410);
    push.answer('/push/dave-404', 404);
    push.answer('/push/dave-hang', 'hang');
    for (const name of ['dave-gone', 'dave-404', 'dave-hang', 'dave-ok'])
      expect((await subscribe(dave, push.endpoint(name), newBrowserKeys())).status).toBe(201);
    expect((await signIn('dave')).html).toContain('4 browsers get your notifications.');
    const [gone, timeouts] = [await metric('gone'), await metric('timeout')];

    const started = Date.now();
    const id = await hold('dave', '/notes/d1', '{"x":1}');
    expect(Date.now() - started).toBeLessThan(900); // the push (1 s timeout) does not hold up the agent's answer
    await eventually(async () => ((await metric('timeout')) === timeouts + 1 ? true : undefined), { timeoutMs: 5_000 });
    expect(await metric('gone')).toBe(gone + 2);
    expect(push.messages.filter((m) => m.path === '/push/dave-ok')).toHaveLength(1);
    expect((await signIn('dave')).html).toContain('2 browsers get your notifications.');

    // The approval still works: dave approves from the console and the agent's retry goes through.
    const page = await signIn('dave');
    expect(page.html).toContain(`id="approval-${id}"`);
    const decided = await post(`/approvals/${id}`, page, { csrf: page.csrf, decision: 'approve' });
    expect(decided.status).toBe(303);
    expect(warden.logs()).not.toContain('/push/dave-');
    // A second approval reaches only what is left (the 410/404 ones are gone).
    const n = push.messages.length;
    await hold('dave', '/notes/d2', '{"x":2}');
    await eventually(() => (push.messages.slice(n).some((m) => m.path === '/push/dave-ok') ? true : undefined));
    expect(
      push.messages
        .slice(n)
        .map((m) => m.path)
        .filter((p) => p.startsWith('/push/dave-'))
        .sort(),
    ).toEqual(['/push/dave-hang', '/push/dave-ok']);
  });

  it('a rule with approvers pushes to the subscribed approver (carol), not to the requester', async () => {
    const carol = await signIn('carol');
    const erin = await signIn('erin');
    const carolKeys = newBrowserKeys();
    expect((await subscribe(carol, push.endpoint('carol-1'), carolKeys)).status).toBe(201);
    expect((await subscribe(erin, push.endpoint('erin-1'), newBrowserKeys())).status).toBe(201);
    const n = push.messages.length;
    await hold('erin', '/pay/p1', '{"amount":5}');
    const msg = await eventually(() => push.messages.slice(n).find((m) => m.path === '/push/carol-1'));
    expect(JSON.parse(decryptPush(msg.body, carolKeys).toString()).message).toBe('Payment /pay/p1');
    await new Promise((r) => setTimeout(r, 300));
    expect(push.messages.slice(n).filter((m) => m.path === '/push/erin-1')).toHaveLength(0);
  });

  it('subscriptions belong to the session subject: bob cannot remove alice’s, forms need the token and the origin', async () => {
    const alice = await signIn('alice');
    const bob = await signIn('bob');
    const keys = newBrowserKeys();
    const endpoint = push.endpoint('alice-own');
    expect((await subscribe(alice, endpoint, keys)).status).toBe(201);
    // bob, with his own valid session and token, names alice's endpoint: nothing of alice's is touched.
    expect((await post('/push/unsubscribe', bob, { csrf: bob.csrf, endpoint }, {})).status).toBe(404);
    expect((await post('/push/clear', bob, { csrf: bob.csrf }, {})).status).toBe(200);
    // Without the token, with alice's token in bob's session, or from another origin: refused.
    expect((await post('/push/subscribe', bob, { endpoint: push.endpoint('x'), p256dh: keys.p256dh, auth: keys.auth }, {})).status).toBe(403);
    expect((await post('/push/subscribe', bob, { csrf: alice.csrf, endpoint: push.endpoint('x'), p256dh: keys.p256dh, auth: keys.auth }, {})).status).toBe(403);
    expect(
      (
        await post(
          '/push/subscribe',
          bob,
          { csrf: bob.csrf, endpoint: push.endpoint('x'), p256dh: keys.p256dh, auth: keys.auth },
          { origin: 'https://evil.example' },
        )
      ).status,
    ).toBe(403);
    // Not signed in: refused.
    expect((await post('/push/subscribe', { cookie: '' }, { endpoint: push.endpoint('x'), p256dh: keys.p256dh, auth: keys.auth }, {})).status).toBe(403);

    const n = push.messages.length;
    await hold('alice', '/notes/own', '{}');
    await eventually(() => push.messages.slice(n).find((m) => m.path === '/push/alice-own'));
    expect(push.messages.slice(n).some((m) => m.path === '/push/x')).toBe(false);
    // alice's own unsubscribe works.
    expect((await post('/push/unsubscribe', alice, { csrf: alice.csrf, endpoint }, {})).status).toBe(200);
  });

  it('endpoints outside the rule are refused when subscribing (https on 443 at a push service only; loopback only when allowed)', async () => {
    const alice = await signIn('alice');
    const keys = newBrowserKeys();
    const refused = async (endpoint: string) => {
      const res = await subscribe(alice, endpoint, keys);
      expect(res.status, endpoint).toBe(400);
      return ((await res.json()) as { reason: string }).reason;
    };
    expect(await refused('http://fcm.googleapis.com/fcm/send/x')).toBe('scheme');
    expect(await refused('https://169.254.169.254/latest/meta-data')).toBe('ip_literal');
    expect(await refused('https://[fd00::1]/x')).toBe('ip_literal');
    expect(await refused('https://fcm.googleapis.com:8443/fcm/send/x')).toBe('port');
    expect(await refused('https://internal.example.com/push')).toBe('host_not_allowed');
    expect(await refused('https://fcm.googleapis.com.evil.example/x')).toBe('host_not_allowed');
    expect(await refused('https://user:pw@fcm.googleapis.com/x')).toBe('credentials');
    expect(await refused('http://10.0.0.5/push')).toBe('scheme');
    expect(await refused('file:///etc/passwd')).toBe('scheme');
    expect(await refused(`https://fcm.googleapis.com/${'a'.repeat(1100)}`)).toBe('too_long');
    // Keys must be a P-256 point and a 16-byte secret.
    expect((await subscribe(alice, 'https://fcm.googleapis.com/fcm/send/abc', { ...keys, auth: 'short' })).status).toBe(400);
    // An endpoint at a real push service's host is accepted (it is only contacted when an approval arrives).
    expect((await subscribe(alice, 'https://fcm.googleapis.com/fcm/send/abc', keys)).status).toBe(201);
    expect((await post('/push/unsubscribe', alice, { csrf: alice.csrf, endpoint: 'https://fcm.googleapis.com/fcm/send/abc' }, {})).status).toBe(200);
  });
});
