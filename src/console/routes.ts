/**
 * The console at `/.warden/console`: what a signed-in person's agents wait
 * for and hold. Every read and every action is scoped by the session's
 * subject: approvals the person may decide (service.mayDecide), grants and
 * connections stored under their user id. An id that belongs to someone else
 * answers exactly like a missing one. Forms carry a CSRF token bound to the
 * session and must come from Warden's own origin.
 */

import { Hono, type Context } from 'hono';
import type { ApprovalService } from '../approvals/service.js';
import type { ApprovalRecord } from '../approvals/records.js';
import type { Runtime } from '../core/runtime.js';
import type { SignedInPerson } from '../http/session.js';
import type { VaultServices } from '../vault/services.js';
import { createAdminRoutes } from './admin/routes.js';
import { createAdminCheck } from './admin/role.js';
import { consoleHeaders, renderConsole, renderMessage } from './page.js';
import { CONSOLE_CSS, CONSOLE_JS } from './static.js';
import type { ConsoleKit } from './kit.js';
import type { ActivitySource } from '../audit/activity.js';
import type { LimitsService } from '../limits/service.js';
import { registerActivity } from './views/activity.js';
import { registerBudgets } from './views/budgets.js';
import { registerAccounts } from './views/accounts.js';
import type { PushChannel } from '../approvals/push/channel.js';
import { pushSection, registerPush } from './push/routes.js';
import { allPending } from './pending.js';
import { pendingEventStream } from './events.js';
import { ID_SHAPE } from '../approvals/ids.js';

const CSRF_PURPOSE = 'console';
/** Every this many polls the person's list is recomputed even when no id changed (an approver relation may have). */
const EVENTS_RECHECK = 15;

const NOTICES = {
  approved: 'Approved once. The agent’s next try goes through.',
  granted: 'Approved. Matching requests go through without asking until the grant below ends.',
  denied: 'Denied. The request will not be performed.',
  conflict: 'That request was already decided; your decision was not recorded.',
  grant_revoked: 'Grant revoked; the next such request asks again.',
} as const;

export interface ConsoleDeps {
  rt: Runtime;
  approvals: ApprovalService;
  vault: VaultServices | null;
  limits: LimitsService | null;
  activity: ActivitySource | null;
  /** Web Push (approvals.push), or null. */
  push?: PushChannel | null;
}

/** The `/.warden` sub-app of the console. */
export function createConsoleRoutes(deps: ConsoleDeps): Hono {
  const { rt, approvals, vault } = deps;
  const app = new Hono();
  const sessions = rt.sessions;
  const basePath = new URL(rt.publicUrl).pathname.replace(/\/+$/, '');
  const base = `${basePath}/.warden/console`;

  const page = (c: Context, status: number, body: string) => c.body(body, status as 200, consoleHeaders());
  const isAdmin = createAdminCheck(rt.config.console.admin, rt.authorizer, rt.logger);

  /** The signed-in person, or the answer to send instead (sign in first; 503 without sign-in). */
  async function person(c: Context): Promise<SignedInPerson | Response> {
    if (sessions.mode === null) {
      return c.body('The console needs sign-in (identity.login, or the dev issuer in development).', 503, {
        ...consoleHeaders(),
        'Content-Type': 'text/plain; charset=utf-8',
      });
    }
    let who: SignedInPerson | null;
    try {
      who = await sessions.current(c);
    } catch {
      return c.body('Sign-in cannot be checked right now (store unavailable). Try again shortly.', 503, {
        ...consoleHeaders(),
        'Content-Type': 'text/plain; charset=utf-8',
      });
    }
    if (who) return who;
    if (c.req.method !== 'GET') return page(c, 403, renderMessage({ base, sub: '(nobody)' }, 'Not signed in', 'Your sign-in ended. Open the console again.'));
    // Back to the console page asked for (sign-in checks return_to again: Warden's own pages only).
    const asked = new URL(c.req.url);
    const back = asked.pathname === base || asked.pathname.startsWith(`${base}/`) ? `${asked.pathname}${asked.search}` : base;
    return c.body(null, 303, { ...consoleHeaders(), Location: sessions.loginPath(back) });
  }

  /** A POST from this origin with this session's console token, or the refusal page. */
  async function formOf(c: Context, who: SignedInPerson): Promise<Record<string, string> | Response> {
    if (!sessions.isSameOriginPost(c)) return page(c, 403, renderMessage({ base, sub: who.sub }, 'Refused', 'Actions must come from the console page.'));
    let raw: Record<string, unknown>;
    try {
      raw = (await c.req.parseBody()) as Record<string, unknown>;
    } catch {
      return page(c, 400, renderMessage({ base, sub: who.sub }, 'Bad request', 'The form could not be read.'));
    }
    const form: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') form[k] = v;
    if (!sessions.checkCsrf(who, CSRF_PURPOSE, form.csrf)) {
      return page(c, 403, renderMessage({ base, sub: who.sub }, 'Refused', 'The form token is missing or wrong; reload the console and try again.'));
    }
    return form;
  }

  async function posted(
    c: Context,
    guard: (c: Context) => Promise<SignedInPerson | Response> = person,
  ): Promise<{ who: SignedInPerson; form: Record<string, string> } | Response> {
    const who = await guard(c);
    if (who instanceof Response) return who;
    const form = await formOf(c, who);
    return form instanceof Response ? form : { who, form };
  }

  /** Pending approvals this person may decide, newest first (the pending records only, never every stored one). */
  async function pendingFor(sub: string): Promise<ApprovalRecord[]> {
    const out: ApprovalRecord[] = [];
    for (const rec of await allPending(approvals.repo)) if (await approvals.mayDecide(rec, sub)) out.push(rec);
    return out.sort((a, b) => b.createdAt - a.createdAt);
  }

  async function stillSignedIn(c: Context, who: SignedInPerson): Promise<boolean> {
    try {
      const now = await sessions.current(c, { fresh: true });
      return now !== null && now.sessionId === who.sessionId;
    } catch {
      return false; // revocation cannot be checked: fail closed
    }
  }

  const kit: ConsoleKit = {
    rt,
    base,
    person,
    posted,
    stillSignedIn,
    csrf: (who) => sessions.csrfToken(who, CSRF_PURPOSE),
    page,
    message: (c, status, who, title, text) => page(c, status, renderMessage({ base, sub: who.sub }, title, text)),
  };

  // Outcomes travel as a fixed code, never as text from the URL (no content injection through a crafted link).
  const back = (c: Context, done: keyof typeof NOTICES) => c.body(null, 303, { ...consoleHeaders(), Location: `${base}?done=${done}` });

  app.get('/console/static/console.css', (c) =>
    c.body(CONSOLE_CSS, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' }),
  );
  app.get('/console/static/console.js', (c) =>
    c.body(CONSOLE_JS, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' }),
  );

  app.get('/console', async (c) => {
    const who = await person(c);
    if (who instanceof Response) return who;
    const [pending, grants, admin, push] = await Promise.all([
      pendingFor(who.sub),
      approvals.listGrants(who.sub),
      isAdmin(who),
      pushSection(kit, deps.push ?? null, who),
    ]);
    const done = c.req.query('done');
    const notice = done !== undefined && Object.hasOwn(NOTICES, done) ? NOTICES[done as keyof typeof NOTICES] : undefined;
    return page(
      c,
      200,
      renderConsole({
        base,
        sub: who.sub,
        csrf: sessions.csrfToken(who, CSRF_PURPOSE),
        maxGrantMs: rt.config.approvals.max_grant,
        pending,
        grants: grants.filter((g) => g.expiresAt > Date.now()).sort((a, b) => a.expiresAt - b.expiresAt),
        admin,
        ...(push ? { push } : {}),
        ...(notice ? { notice } : {}),
      }),
    );
  });

  // Live updates: an event whenever the set of approvals waiting for this person changes.
  app.get('/console/events', async (c) => {
    const who = await person(c);
    if (who instanceof Response) return who;
    let last = '';
    return pendingEventStream(c, approvals.repo, async (stream, look, poll) => {
      let ids = last;
      try {
        // Records are read only when the set of pending ids changed (or every EVENTS_RECHECK polls, for approver changes).
        if ((await look()).changed || poll % EVENTS_RECHECK === 0) ids = (await pendingFor(who.sub)).map((r) => r.id).join(',');
      } catch (err) {
        rt.logger.warn({ err }, 'console events: pending list failed');
      }
      if (ids !== last) {
        // A session signed out (or expired) since the stream began hears nothing more: the stream ends.
        if (!(await stillSignedIn(c, who))) return false;
        // The event says only that something changed, and how many wait; the page fetches the rest.
        await stream.writeSSE({ event: 'pending', data: String(ids ? ids.split(',').length : 0) });
        last = ids;
      }
    });
  });

  app.post('/console/approvals/:id', async (c) => {
    const post = await posted(c);
    if (post instanceof Response) return post;
    const { who, form } = post;
    const id = c.req.param('id');
    const rec = ID_SHAPE.test(id) ? await approvals.repo.get(id) : null;
    // Someone else's approval is indistinguishable from a missing one.
    if (!rec || !(await approvals.mayDecide(rec, who.sub))) {
      if (rec) rt.logger.warn({ approval_id: id, signed_in: who.sub }, 'console: decision refused, not an approver');
      return kit.message(c, 404, who, 'Not found', 'No such approval is waiting for you.');
    }
    const decision = form.decision;
    if (decision !== 'approve' && decision !== 'deny') return kit.message(c, 400, who, 'Bad request', 'Unknown decision.');
    const minutes = Number(form.grant_minutes ?? '0');
    const grantMs = decision === 'approve' && Number.isFinite(minutes) && minutes > 0 ? Math.min(minutes * 60_000, rt.config.approvals.max_grant) : 0;
    const outcome = await approvals.decide(id, decision, 'review', { grantMs, approver: who.sub });
    switch (outcome.kind) {
      case 'decided':
        return back(c, decision === 'approve' ? (grantMs ? 'granted' : 'approved') : 'denied');
      case 'conflict':
        return back(c, 'conflict');
      default:
        return kit.message(c, 404, who, 'Not found', 'No such approval is waiting for you.');
    }
  });

  app.post('/console/grants/:id/revoke', async (c) => {
    const post = await posted(c);
    if (post instanceof Response) return post;
    const who = post.who;
    const id = c.req.param('id');
    // Grants are stored under the user: another person's grant id finds nothing here.
    if (!ID_SHAPE.test(id) || !(await approvals.revokeGrant(who.sub, id))) {
      return kit.message(c, 404, who, 'Not found', 'No such grant.');
    }
    return back(c, 'grant_revoked');
  });

  registerActivity(app, kit, deps.activity);
  registerBudgets(app, kit, deps.limits);
  registerAccounts(app, kit, vault, deps.activity);
  registerPush(app, kit, deps.push ?? null);
  // The platform team's views (console.admin); they check the role themselves.
  app.route('/console/admin', createAdminRoutes({ kit, approvals }));
  return app;
}
