/**
 * What a signed-in approver is shown and for how long, without a browser
 * (dev login over HTTP, the embedded engine):
 *
 * - E.11 a console event stream ends once its session is signed out: the
 *   admin stream promised it and the person's did not even look (a copied
 *   cookie kept hearing about pending approvals after logout);
 * - E.12 a console card names everything the approval binds besides the body:
 *   the user the agent acts for (a rule with `approvers:` is decided by
 *   someone else, who must see whose request it is) and the stored headers,
 *   and says what a grant would cover, as the review page does;
 * - E.14 characters a browser draws as nothing (Unicode tag characters, soft
 *   hyphen, Arabic letter mark, …) are shown as escapes, so "carol" and
 *   "carol" + tag characters (another account upstream) look different.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devPolicyYaml } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const CONFIG = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/console/fixtures', { cache_ttl: 0 })}
approvals:
  hold: 100ms
console:
  admin: { relation: admin, object: "warden:console" }
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
    approval: { message: "Payment {request.path}", approvers: { relation: admin, object: "warden:console" } }
`;

interface Person {
  cookie: string;
  csrf: string;
}

describe('what a signed-in approver sees, and for how long', () => {
  let warden: WardenHandle;
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await startUpstream();
    warden = await startWarden({ config: CONFIG, env: { UPSTREAM_URL: upstream.url } });
  });

  afterAll(async () => {
    await warden?.close();
    await upstream?.close();
  });

  /** Sign in through the dev login with plain HTTP: the session cookie and the logout form's token. */
  async function signIn(user: string): Promise<Person> {
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
    const session = await (await fetch(`${warden.url}/.warden/session`, { headers: { cookie } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(session)![1];
    return { cookie, csrf };
  }

  async function signOut(who: Person): Promise<void> {
    const res = await fetch(`${warden.url}/.warden/logout`, {
      method: 'POST',
      headers: { cookie: who.cookie, origin: warden.url, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: who.csrf }),
    });
    expect(res.status).toBe(200);
    // The copy of the cookie this test still holds is dead now.
    expect((await fetch(`${warden.url}/.warden/console`, { headers: { cookie: who.cookie }, redirect: 'manual' })).status).toBe(303);
  }

  async function hold(user: string, path: string, body: string, headers: Record<string, string> = {}): Promise<string> {
    const token = await warden.token('bot', user);
    const res = await fetch(`${warden.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body,
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { approval_id: string }).approval_id;
  }

  /** Open an event stream with `cookie`; `events()` is what it heard so far, `ended` settles when the server closes it. */
  async function listen(path: string, cookie: string) {
    const ctl = new AbortController();
    const res = await fetch(`${warden.url}${path}`, { headers: { cookie, accept: 'text/event-stream' }, signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    let text = '';
    const reader = res.body!.getReader();
    const ended = (async () => {
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) return;
        text += Buffer.from(value!).toString('utf8');
      }
    })();
    return { events: () => text.match(/^event: pending$/gm)?.length ?? 0, ended, close: () => ctl.abort() };
  }

  /** Resolves true when `p` settles within `ms`, false otherwise. */
  const settlesWithin = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

  it('E.11 the admin event stream ends once the admin signed out, before telling anything more', async () => {
    const alice = await signIn('alice');
    const stream = await listen('/.warden/console/admin/events', alice.cookie);
    try {
      await hold('carol', '/notes/e1', '{"n":1}');
      await expect.poll(stream.events, { timeout: 10_000 }).toBeGreaterThan(0);
      const heard = stream.events();
      await signOut(alice);
      await hold('carol', '/notes/e2', '{"n":2}');
      // The next change is not announced to a session that ended: the stream closes instead.
      expect(await settlesWithin(stream.ended, 8_000)).toBe(true);
      expect(stream.events()).toBe(heard);
    } finally {
      stream.close();
    }
  });

  it('E.11 a person’s event stream ends once they signed out', async () => {
    const dave = await signIn('dave');
    const stream = await listen('/.warden/console/events', dave.cookie);
    try {
      await hold('dave', '/notes/d1', '{"n":1}');
      await expect.poll(stream.events, { timeout: 10_000 }).toBeGreaterThan(0);
      const heard = stream.events();
      await signOut(dave);
      await hold('dave', '/notes/d2', '{"n":2}');
      expect(await settlesWithin(stream.ended, 8_000)).toBe(true);
      expect(stream.events()).toBe(heard);
    } finally {
      stream.close();
    }
  });

  it('E.12 an approver’s console card names the user the agent acts for and the headers that will be forwarded', async () => {
    // The pay rule's approvers are the holders of admin on warden:console (alice); mallory's agent asks.
    const id = await hold('mallory', '/pay/p1', '{"to":"mallory","amount":5000,"note":"for alice"}', { 'content-language': 'de' });
    const alice = await signIn('alice');
    const html = await (await fetch(`${warden.url}/.warden/console`, { headers: { cookie: alice.cookie } })).text();
    const card = new RegExp(`<article class="card approval" id="approval-${id}"[\\s\\S]*?</article>`).exec(html)?.[0];
    expect(card).toBeDefined();
    expect(card).toMatch(/<dt>On behalf of<\/dt><dd class="user">mallory<\/dd>/);
    expect(card).toContain('content-type: application/json');
    expect(card).toContain('content-language: de');
    // And what "Approve for a while" would let through again, as the review page says next to the same choice.
    expect(card).toMatch(/<p class="meta grant-covers">(Only for requests with the same .*|For any request to this path that the same rule holds\.)<\/p>/);
  });

  it('E.14 characters a browser does not draw are shown as escapes on the card: tag characters, soft hyphen, Arabic letter mark, line separator', async () => {
    // "carol" and "carol" + invisible tag characters look the same on a page; the upstream gets different accounts.
    const tagged = `carol${String.fromCodePoint(0xe0061, 0xe0064, 0xe006d)}`;
    const hidden = ['\u00ad', '\u061c', '\u2028', '\u180e', '\ufe0f', '\u3164'].join('');
    const id = await hold('erin', '/notes/t1', JSON.stringify({ to: tagged, note: `ok${hidden}` }));
    const erin = await signIn('erin');
    const html = await (await fetch(`${warden.url}/.warden/console`, { headers: { cookie: erin.cookie } })).text();
    const card = new RegExp(`<article class="card approval" id="approval-${id}"[\\s\\S]*?</article>`).exec(html)?.[0] ?? '';
    expect(card).toContain('carol\\udb40\\udc61\\udb40\\udc64\\udb40\\udc6d');
    for (const c of [...hidden, String.fromCodePoint(0xe0061)]) expect(card.includes(c), `U+${c.codePointAt(0)!.toString(16)} drawn as nothing`).toBe(false);
    expect(card).toContain('ok\\u00ad\\u061c\\u2028\\u180e\\ufe0f\\u3164');
  });
});
