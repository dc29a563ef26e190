/**
 * The two scripts of Web Push in the console, served by Warden (CSP `'self'`):
 * `push.js` on the approvals page turns notifications on and off in this
 * browser (progressive enhancement: without it the page says so and still
 * offers "turn off everywhere"), and `sw.js`, the service worker, shows a
 * pushed approval and opens the console when it is clicked.
 */

export const PUSH_JS = `'use strict';
(function () {
  var box = document.getElementById('push');
  if (!box) return;
  var state = document.getElementById('push-state');
  var onBtn = document.getElementById('push-on');
  var offBtn = document.getElementById('push-off');
  var meta = document.querySelector('meta[name=csrf-token]');
  var csrf = meta ? meta.getAttribute('content') : '';
  var key = box.getAttribute('data-key');
  var sw = box.getAttribute('data-sw');
  var scope = box.getAttribute('data-scope');
  var base = box.getAttribute('data-base');
  var stored = (box.getAttribute('data-subscriptions') || '').split(',').filter(Boolean);
  function say(text) { state.textContent = text; }
  if (!('serviceWorker' in navigator) || !window.PushManager || !window.Notification || !window.isSecureContext || !window.crypto || !crypto.subtle) {
    say('This browser cannot receive push notifications from this address (push needs a supporting browser and HTTPS).');
    return;
  }
  function bytes(b64) {
    var s = atob(b64.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((b64.length + 3) % 4));
    var a = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
    return a;
  }
  // The id Warden shows for a stored subscription: the first 16 hex digits of SHA-256("endpoint:" + endpoint).
  function idOf(sub) {
    return crypto.subtle.digest('SHA-256', new TextEncoder().encode('endpoint:' + sub.endpoint)).then(function (d) {
      return Array.prototype.map.call(new Uint8Array(d), function (b) { return ('0' + b.toString(16)).slice(-2); }).join('').slice(0, 16);
    });
  }
  function sameKey(sub) {
    var k = sub.options && sub.options.applicationServerKey;
    if (!k) return true;
    var a = new Uint8Array(k), b = bytes(key);
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  function post(path, fields) {
    var form = new URLSearchParams(fields);
    form.set('csrf', csrf);
    return fetch(base + path, { method: 'POST', body: form, credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('Warden answered ' + r.status);
    });
  }
  function send(sub) {
    var j = sub.toJSON();
    return post('/push/subscribe', { endpoint: j.endpoint, p256dh: j.keys.p256dh, auth: j.keys.auth });
  }
  function activated(reg) {
    if (reg.active) return reg;
    var w = reg.installing || reg.waiting;
    return new Promise(function (resolve) {
      w.addEventListener('statechange', function () { if (w.state === 'activated') resolve(reg); });
    });
  }
  function show(on, text) {
    onBtn.hidden = on;
    offBtn.hidden = !on;
    say(text || (on ? 'Notifications are on in this browser.' : 'Notifications are off in this browser.'));
  }
  onBtn.addEventListener('click', function () {
    onBtn.disabled = true;
    say('Turning on…');
    Notification.requestPermission()
      .then(function (p) {
        if (p !== 'granted') throw new Error('notifications are blocked for this site in the browser settings');
        return navigator.serviceWorker.register(sw, { scope: scope }).then(activated);
      })
      .then(function (reg) {
        return reg.pushManager.getSubscription()
          .then(function (old) { return old && !sameKey(old) ? old.unsubscribe().then(function () { return null; }) : old; })
          .then(function (sub) { return sub || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key) }); });
      })
      .then(send)
      .then(function () { show(true); }, function (err) { show(false, 'Could not turn on notifications: ' + ((err && err.message) || err)); })
      .then(function () { onBtn.disabled = false; });
  });
  offBtn.addEventListener('click', function () {
    offBtn.disabled = true;
    navigator.serviceWorker.getRegistration(scope)
      .then(function (reg) { return reg ? reg.pushManager.getSubscription() : null; })
      .then(function (sub) { return sub ? post('/push/unsubscribe', { endpoint: sub.endpoint }).then(function () { return sub.unsubscribe(); }) : null; })
      .then(function () { show(false); }, function (err) { say('Could not turn off notifications: ' + ((err && err.message) || err)); })
      .then(function () { offBtn.disabled = false; });
  });
  // This browser's state; a subscription Warden still holds is sent again (its lifetime starts over).
  navigator.serviceWorker.getRegistration(scope)
    .then(function (reg) { return reg ? reg.pushManager.getSubscription() : null; })
    .then(function (sub) {
      if (!sub || Notification.permission !== 'granted' || !sameKey(sub)) return show(false);
      return idOf(sub).then(function (id) {
        if (stored.indexOf(id) < 0) return show(false);
        show(true);
        return send(sub).catch(function () {});
      });
    })
    .catch(function () { show(false); });
})();
`;

export const SERVICE_WORKER_JS = `'use strict';
// Warden console service worker: shows the approvals Warden pushes and opens the console on a click.
self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (event) { event.waitUntil(self.clients.claim()); });
// Only the console itself is ever opened, whatever a message says.
function consoleUrl(candidate) {
  var home = new URL(self.registration.scope);
  try {
    var url = new URL(candidate, home);
    if (url.origin === home.origin && url.pathname.indexOf(home.pathname) === 0) return url.href;
  } catch (e) {}
  return home.href;
}
self.addEventListener('push', function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  var lines = [];
  if (typeof data.message === 'string') lines.push(data.message);
  if (typeof data.agent === 'string') lines.push('Agent: ' + data.agent);
  if (typeof data.code === 'string') lines.push('Code: ' + data.code);
  event.waitUntil(self.registration.showNotification(typeof data.title === 'string' ? data.title : 'Approval needed', {
    body: lines.join('\\n'),
    tag: typeof data.tag === 'string' ? data.tag : 'warden-approval',
    data: { url: consoleUrl(data.url) },
  }));
});
self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  var url = consoleUrl(event.notification.data && event.notification.data.url);
  event.waitUntil(self.clients.openWindow(url));
});
`;
