/**
 * Turning on notifications in headless Chromium (http://127.0.0.1 is a secure
 * context, so service workers and the Push API are there). The notification
 * permission is granted with playwright-core's `grantPermissions`. Chromium's
 * own push service (FCM) is not reachable from the test machine — a real
 * `pushManager.subscribe` ends in "AbortError: Registration failed" — so an
 * init script stands in for the browser's push service only: `subscribe`
 * answers with a subscription on the local push service, with keys the test
 * holds. Everything else is real: the console's push.js, the registration of
 * Warden's service worker (scope `/.warden/console`), the subscription stored
 * by Warden, an approval pushed (and decrypted here), and the service worker
 * showing it when Chromium's DevTools protocol delivers that payload.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateVapidKeys } from '../../src/approvals/push/vapid.js';
import { launchBrowser, type Browser, type BrowserContext } from '../support/browser.js';
import { devPolicyYaml } from '../support/config.js';
import { until } from '../support/eventually.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { decryptPush, newBrowserKeys, startPushService, type PushService } from '../support/push-service.js';
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
    timeout: 2s
    allow_loopback: true
routes:
  - name: notes
    match: { path: "/notes/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /notes }
    authorize: [{ user: "agent:bot", relation: can_call, object: "api:notes" }]
    approval: { when: 'request.method == "POST"', message: "Change note {request.path}" }
`;

/**
 * Stand-in for the browser's push service (a page script as a string: the test
 * project has no DOM types): subscribe/getSubscription answer with a
 * subscription on the local push service, remembered in localStorage.
 */
function fakePushService(sub: { endpoint: string; p256dh: string; auth: string }): string {
  return `(() => {
  const sub = ${JSON.stringify(sub)};
  const key = 'test-push-subscribed';
  const make = (applicationServerKey) => ({
    endpoint: sub.endpoint,
    expirationTime: null,
    options: { userVisibleOnly: true, applicationServerKey },
    toJSON: () => ({ endpoint: sub.endpoint, expirationTime: null, keys: { p256dh: sub.p256dh, auth: sub.auth } }),
    unsubscribe: () => { localStorage.removeItem(key); return Promise.resolve(true); },
  });
  PushManager.prototype.subscribe = function (options) {
    const k = new Uint8Array(options.applicationServerKey);
    localStorage.setItem(key, btoa(String.fromCharCode(...k)));
    return Promise.resolve(make(k.buffer));
  };
  PushManager.prototype.getSubscription = function () {
    const stored = localStorage.getItem(key);
    return Promise.resolve(stored ? make(Uint8Array.from(atob(stored), (c) => c.charCodeAt(0)).buffer) : null);
  };
})();`;
}

const stateIs = (word: 'on' | 'off') => `(document.getElementById('push-state')?.textContent ?? '').includes('${word} in this browser')`;
const REGISTRATION = `navigator.serviceWorker.getRegistration('/.warden/console').then((r) => r ? { scope: r.scope, state: r.active?.state, script: r.active?.scriptURL } : null)`;
const NOTIFICATIONS = `navigator.serviceWorker.getRegistration('/.warden/console').then((r) => r.getNotifications()).then((list) => list.map((x) => ({ title: x.title, body: x.body, tag: x.tag, url: x.data.url })))`;

describe('Web Push in the console (headless Chromium)', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let push: PushService;
  let browser: Browser;
  let ctx: BrowserContext;
  const vapid = generateVapidKeys();

  beforeAll(async () => {
    [upstream, push, browser] = await Promise.all([startUpstream(), startPushService(), launchBrowser()]);
    warden = await startWarden({
      config: CONFIG,
      env: { UPSTREAM_URL: upstream.url, VAPID_PUBLIC: vapid.publicKey, VAPID_PRIVATE: vapid.privateKey },
    });
  });

  afterAll(async () => {
    await ctx?.close().catch(() => {});
    await browser?.close();
    await warden?.close();
    await push?.close();
    await upstream?.close();
  });

  it('alice turns on notifications; the subscription is stored, an approval is pushed, the service worker shows it', async () => {
    const keys = newBrowserKeys();
    const endpoint = push.endpoint('chromium-alice');
    ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
    await ctx.grantPermissions(['notifications'], { origin: warden.url });
    await ctx.addInitScript(fakePushService({ endpoint, p256dh: keys.p256dh, auth: keys.auth }));
    const page = await ctx.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text());
    });

    await page.goto(`${warden.url}/.warden/console`);
    await devSignInIfAsked(page, 'alice');
    await until(async () => Boolean(await page.evaluate(stateIs('off'))), { what: 'push off' });
    expect(await page.isVisible('#push-on')).toBe(true);
    expect(await page.textContent('#push-count')).toBe('No browser gets your notifications.');
    expect(await page.evaluate('Notification.permission')).toBe('granted');

    await page.click('#push-on');
    await until(async () => Boolean(await page.evaluate(stateIs('on'))), { what: 'push on', timeoutMs: 15_000 });
    expect(await page.isVisible('#push-off')).toBe(true);

    // Warden's service worker is registered for the console and active.
    const reg = await page.evaluate(REGISTRATION);
    expect(reg).toEqual({ scope: `${warden.url}/.warden/console`, state: 'activated', script: `${warden.url}/.warden/console/sw.js` });

    // Stored by Warden: the page counts it and recognises this browser's subscription after a reload.
    await page.reload();
    await until(async () => Boolean(await page.evaluate(stateIs('on'))), { what: 'push on' });
    expect(await page.textContent('#push-count')).toBe('1 browser gets your notifications.');

    // A held request is pushed to the stored subscription.
    const n = push.messages.length;
    const token = await warden.token('bot', 'alice');
    const held = await fetch(`${warden.url}/notes/c1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"t":"x"}',
    });
    expect(held.status).toBe(202);
    const { approval_id: id } = (await held.json()) as { approval_id: string };
    await until(() => push.messages.slice(n).some((m) => m.path === '/push/chromium-alice'));
    const plain = decryptPush(push.messages.slice(n).find((m) => m.path === '/push/chromium-alice')!.body, keys).toString('utf8');
    expect(JSON.parse(plain)).toMatchObject({ message: 'Change note /notes/c1', url: `${warden.url}/.warden/console#approval-${id}` });

    // Chromium delivers exactly that payload to Warden's service worker, which shows the notification.
    const cdp = await ctx.newCDPSession(page);
    const registrations: Array<{ registrationId: string; scopeURL: string }> = [];
    const versions: Array<{ registrationId: string; status: string }> = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: Array<{ registrationId: string; scopeURL: string }> }) =>
      registrations.push(...e.registrations),
    );
    cdp.on('ServiceWorker.workerVersionUpdated', (e: { versions: Array<{ registrationId: string; status: string }> }) => versions.push(...e.versions));
    await cdp.send('ServiceWorker.enable');
    await until(() => registrations.some((r) => r.scopeURL === `${warden.url}/.warden/console`));
    const registrationId = registrations.find((r) => r.scopeURL === `${warden.url}/.warden/console`)!.registrationId;
    // A push delivered before the worker is activated has no one to handle it: wait for the active version.
    await until(() => versions.some((v) => v.registrationId === registrationId && v.status === 'activated'));
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: warden.url, registrationId, data: plain });
    const shown = () => page.evaluate(NOTIFICATIONS) as Promise<Array<{ title: string; body: string; tag: string; url: string }>>;
    await until(async () => (await shown()).length > 0);
    const [note] = await shown();
    expect(note).toEqual({
      title: 'Approval needed',
      body: 'Change note /notes/c1\nAgent: bot\nCode: ' + JSON.parse(plain).code,
      tag: `approval-${id}`,
      url: `${warden.url}/.warden/console#approval-${id}`,
    });

    // A payload naming another site is opened as the console, never the other site.
    await cdp.send('ServiceWorker.deliverPushMessage', {
      origin: warden.url,
      registrationId,
      data: JSON.stringify({ title: 'x', message: 'm', tag: 'evil', url: 'https://evil.example/phish' }),
    });
    await until(async () => (await shown()).some((x) => x.tag === 'evil'));
    expect((await shown()).find((x) => x.tag === 'evil')!.url).toBe(`${warden.url}/.warden/console`);

    // Turn off in this browser: Warden forgets it.
    await page.click('#push-off');
    await until(async () => Boolean(await page.evaluate(stateIs('off'))), { what: 'push off' });
    await page.reload();
    await until(async () => Boolean(await page.evaluate(stateIs('off'))), { what: 'push off' });
    expect(await page.textContent('#push-count')).toBe('No browser gets your notifications.');
    expect(cspErrors).toEqual([]);
  });
});
