/**
 * Web Push in the console: the "Notifications" section of the approvals page,
 * the service worker, and the subscribe / unsubscribe endpoints. Every
 * subscription is stored under the signed-in person's `sub` and only ever
 * read or removed under it; a POST needs this session's console CSRF token
 * and Warden's own origin (kit.posted). The endpoint must pass the push
 * endpoint rule (approvals/push/endpoint-policy.ts) before it is stored.
 */

import type { Context, Hono } from 'hono';
import type { PushChannel } from '../../approvals/push/channel.js';
import { checkEndpointUrl } from '../../approvals/push/endpoint-policy.js';
import { subscriptionId } from '../../approvals/push/subscriptions.js';
import { escapeHtml } from '../../approvals/review-page.js';
import type { SignedInPerson } from '../../http/session.js';
import type { ConsoleKit } from '../kit.js';
import { PUSH_JS, SERVICE_WORKER_JS } from './static.js';

const B64URL = /^[A-Za-z0-9_-]+$/;

function key(value: string | undefined, bytes: number, first?: number): boolean {
  if (!value || !B64URL.test(value)) return false;
  const raw = Buffer.from(value, 'base64url');
  return raw.length === bytes && (first === undefined || raw[0] === first);
}

const json = (c: Context, status: number, body: Record<string, unknown>) =>
  c.body(JSON.stringify(body), status as 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });

/** The approvals page's Notifications section for `who` ('' without push). */
export async function pushSection(kit: ConsoleKit, push: PushChannel | null, who: SignedInPerson): Promise<string> {
  if (!push) return '';
  const subs = await push.repo.list(who.sub);
  const ids = subs.map((s) => subscriptionId(s.endpoint)).join(',');
  const count = subs.length;
  return `<section aria-labelledby="h-push" id="push" data-key="${escapeHtml(push.publicKey)}" data-sw="${kit.base}/sw.js" data-scope="${kit.base}" data-base="${kit.base}" data-subscriptions="${escapeHtml(ids)}">
<h2 id="h-push">Notifications</h2>
<p>Get a notification in this browser when an approval is waiting for you. It says what the rule says and links here; the request itself is shown only on this page.</p>
<p id="push-state" role="status">Turning notifications on needs JavaScript.</p>
<div class="actions"><button type="button" id="push-on" hidden>Turn on notifications</button><button type="button" id="push-off" hidden>Turn off in this browser</button></div>
<p class="meta" id="push-count">${count === 0 ? 'No browser gets your notifications.' : `${count} browser${count === 1 ? '' : 's'} get${count === 1 ? 's' : ''} your notifications.`}</p>
${count ? `<form method="post" action="${kit.base}/push/clear"><input type="hidden" name="csrf" value="${escapeHtml(kit.csrf(who))}"><button type="submit" id="push-clear">Turn off in every browser</button></form>` : ''}
</section>`;
}

/** The push routes of the console (none without push). */
export function registerPush(app: Hono, kit: ConsoleKit, push: PushChannel | null): void {
  if (!push) return;
  app.get('/console/static/push.js', (c) =>
    c.body(PUSH_JS, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' }),
  );
  // The worker's scope is the console (`…/console`, a prefix of every console page), one level above the script.
  app.get('/console/sw.js', (c) =>
    c.body(SERVICE_WORKER_JS, 200, {
      'Content-Type': 'text/javascript; charset=utf-8',
      'Service-Worker-Allowed': kit.base,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': "default-src 'none'",
      'X-Content-Type-Options': 'nosniff',
    }),
  );

  app.post('/console/push/subscribe', async (c) => {
    const post = await kit.posted(c);
    if (post instanceof Response) return post;
    const { who, form } = post;
    const endpoint = form.endpoint ?? '';
    const check = checkEndpointUrl(endpoint, push.policy);
    if (!check.ok) {
      kit.rt.logger.warn({ signed_in: who.sub, reason: check.reason }, 'console: push subscription refused by the endpoint rule');
      return json(c, 400, { error: 'endpoint_refused', reason: check.reason });
    }
    // RFC 8291: p256dh is the browser's uncompressed P-256 point (65 bytes, 0x04 first), auth 16 bytes.
    if (!key(form.p256dh, 65, 0x04) || !key(form.auth, 16)) return json(c, 400, { error: 'bad_keys' });
    const id = await push.repo.put(who.sub, { endpoint, p256dh: form.p256dh!, auth: form.auth! });
    kit.rt.logger.info({ signed_in: who.sub, subscription: id, push_service: check.url.origin }, 'console: push subscription stored');
    return json(c, 201, { subscription: id });
  });

  app.post('/console/push/unsubscribe', async (c) => {
    const post = await kit.posted(c);
    if (post instanceof Response) return post;
    const { who, form } = post;
    const removed = await push.repo.remove(who.sub, form.endpoint ?? '');
    return json(c, removed ? 200 : 404, { removed });
  });

  app.post('/console/push/clear', async (c) => {
    const post = await kit.posted(c);
    if (post instanceof Response) return post;
    const { who } = post;
    const n = await push.repo.removeAll(who.sub);
    return kit.message(c, 200, who, 'Notifications off', `Notifications are off in every browser (${n} removed). Turn them on again from the approvals page.`);
  });
}
