/**
 * The platform team's endpoints under `/.warden/console/admin`. Every page
 * and every action asks the admin check first (console.admin; an engine error
 * means "not an admin") and answers anyone else 403 before reading anything.
 * Actions are the console's: same-origin POSTs with the session's CSRF token.
 *
 * Approvals follow CIBA: consent belongs to the person the agent acts for (or
 * the rule's `approvers`). An admin approves only what they could approve as
 * a person anyway; for everything else an admin can only stop (deny) it, and
 * the record says which admin did.
 */

import { hostname } from 'node:os';
import { Hono, type Context } from 'hono';
import type { ApprovalService } from '../../approvals/service.js';
import type { ApprovalRecord } from '../../approvals/records.js';
import type { SignedInPerson } from '../../http/session.js';
import { acceptToolChange, getToolPin, listToolPins } from '../../mcp/admin.js';
import { consoleHeaders } from '../page.js';
import type { ConsoleKit } from '../kit.js';
import { toolReview } from '../../mcp/pin-review.js';
import {
  renderAdminApprovals,
  renderAdminHealth,
  renderAdminRoutes,
  renderAdminToolDiff,
  renderAdminTools,
  renderNotAdmin,
  type AdminFrame,
  type HealthView,
} from './pages.js';
import { createAdminCheck } from './role.js';
import { PENDING_SCAN, pendingPage } from '../pending.js';
import { pendingEventStream } from '../events.js';
import { ID_SHAPE } from '../../approvals/ids.js';

const HASH = /^[0-9a-f]{64}$/;
/** Health probes answer within this, or count as unavailable. */
const PROBE_TIMEOUT_MS = 2_000;
/** Decided approvals listed on the approvals page. */
const DECIDED_SHOWN = 20;

const NOTICES = {
  approved: 'Approved once (as an approver of this request).',
  denied: 'Denied.',
  stopped: 'Stopped: the request was denied and you are recorded as the admin who decided.',
  conflict: 'That request was already decided; your decision was not recorded.',
  accepted: 'Accepted: the new definition is pinned and the tool can be called again.',
  stale: 'The definition changed again after you reviewed it; nothing was accepted. Review the new change below.',
  nothing: 'There was no changed definition to accept.',
  unreviewable: 'Nothing was accepted: the changed definition cannot be shown whole here (see below).',
} as const;

export interface AdminRouteDeps {
  /** The console's kit: runtime, base path, the signed-in person, checked form posts, pages. */
  kit: ConsoleKit;
  approvals: ApprovalService;
}

async function timed(fn: () => Promise<void>): Promise<{ ok: boolean; ms: number; reason?: string }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), PROBE_TIMEOUT_MS);
      }),
    ]);
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    // Only a short reason code: never an error message that may carry a URL with a password.
    const reason = (err as { reason?: unknown }).reason;
    return {
      ok: false,
      ms: Math.round(performance.now() - started),
      reason: typeof reason === 'string' ? reason : (err as Error).message === 'timeout' ? 'timeout' : 'error',
    };
  } finally {
    clearTimeout(timer);
  }
}

/** The admin sub-app, mounted at `/console/admin` of the console's `/.warden` app. */
export function createAdminRoutes(deps: AdminRouteDeps): Hono {
  const { kit, approvals } = deps;
  const { rt, base, person, page, message } = kit;
  const app = new Hono();
  const isAdmin = createAdminCheck(rt.config.console.admin, rt.authorizer, rt.logger);

  /** The signed-in admin, or the answer for everyone else (sign in, or 403). */
  async function admin(c: Context): Promise<SignedInPerson | Response> {
    const who = await person(c);
    if (who instanceof Response) return who;
    if (await isAdmin(who)) return who;
    rt.logger.warn({ signed_in: who.sub, method: c.req.method, path: c.req.path }, 'console: admin page refused, not an admin');
    return page(c, 403, renderNotAdmin(base, who.sub));
  }

  const frameOf = (c: Context, who: SignedInPerson): AdminFrame => {
    const done = c.req.query('done');
    const notice = done !== undefined && Object.hasOwn(NOTICES, done) ? NOTICES[done as keyof typeof NOTICES] : undefined;
    return { base, sub: who.sub, csrf: rt.sessions.csrfToken(who, 'console'), ...(notice ? { notice } : {}) };
  };
  const back = (c: Context, path: string, done: keyof typeof NOTICES) =>
    c.body(null, 303, { ...consoleHeaders(), Location: `${base}/admin${path}?done=${done}` });

  /** The most recent decisions (from the store's bounded ring; expiries are not noted there). */
  async function recentlyDecided(): Promise<ApprovalRecord[]> {
    const ids = await approvals.repo.recentDecided(DECIDED_SHOWN);
    const recs = await Promise.all(ids.map((id) => approvals.repo.get(id)));
    return recs.filter((r): r is ApprovalRecord => r !== null && r.decidedAt !== undefined);
  }

  // ---------------------------------------------------------------- health

  app.get('/', async (c) => {
    const who = await admin(c);
    if (who instanceof Response) return who;
    const [store, authz, pendingCount, pins] = await Promise.all([
      timed(() => rt.store.ping()),
      timed(() => rt.authorizer.ready()),
      approvals.repo.countPending(PENDING_SCAN).catch(() => null),
      listToolPins(rt.store).catch(() => []),
    ]);
    const info = rt.instance;
    const view: HealthView = {
      instance: {
        host: hostname(),
        pid: process.pid,
        version: info?.version ?? 'unknown',
        node: process.version,
        startedAt: info?.startedAt ?? null,
        uptimeS: info ? (Date.now() - info.startedAt) / 1000 : process.uptime(),
      },
      store: { driver: rt.config.store.driver, ...store },
      authz: { engine: rt.config.authz.engine, ...authz },
      jwks: [...(rt.authenticator.stats?.().jwks ?? [])],
      lastLoad: info ? info.lastLoad() : null,
      pendingApprovals: pendingCount,
      changedTools: pins.filter((p) => p.status === 'changed').length,
      routes: rt.config.routes.length,
    };
    return page(c, store.ok && authz.ok ? 200 : 503, renderAdminHealth(frameOf(c, who), view));
  });

  // ---------------------------------------------------------------- approvals

  app.get('/approvals', async (c) => {
    const who = await admin(c);
    if (who instanceof Response) return who;
    // Bounded: PENDING_SCAN ids from the pending sets, ADMIN_PAGE records read and shown, the count for the rest.
    const [listed, decided] = await Promise.all([pendingPage(approvals.repo), recentlyDecided()]);
    const withRights = await Promise.all(listed.shown.map(async (rec) => ({ rec, mayDecide: await approvals.mayDecide(rec, who.sub).catch(() => false) })));
    return page(c, 200, renderAdminApprovals(frameOf(c, who), withRights, decided, { total: listed.total, complete: listed.complete }));
  });

  // Live updates of the approvals page, for admins only: an event when the set of every user's pending approvals changes.
  app.get('/events', async (c) => {
    const who = await admin(c);
    if (who instanceof Response) return who;
    return pendingEventStream(c, approvals.repo, async (stream, look) => {
      try {
        const { changed, count } = await look();
        if (changed) {
          // Still signed in and still an admin? Asked again before anything is sent (a session can end, a role be
          // taken away); the session is looked up afresh, not from this request's cache.
          if (!(await kit.stillSignedIn(c, who)) || !(await isAdmin(who))) {
            rt.logger.warn({ signed_in: who.sub }, 'console: admin event stream ended, signed out or no longer an admin');
            return false;
          }
          await stream.writeSSE({ event: 'pending', data: String(count) });
        }
      } catch (err) {
        rt.logger.warn({ err }, 'console admin events: pending list failed');
      }
    });
  });

  app.post('/approvals/:id', async (c) => {
    const post = await kit.posted(c, admin);
    if (post instanceof Response) return post;
    const { who, form } = post;
    const id = c.req.param('id');
    const rec = ID_SHAPE.test(id) ? await approvals.repo.get(id) : null;
    if (!rec) return message(c, 404, who, 'Not found', 'No such approval.');
    const decision = form.decision;
    if (decision !== 'approve' && decision !== 'deny') return message(c, 400, who, 'Bad request', 'Unknown decision.');
    const entitled = await approvals.mayDecide(rec, who.sub).catch(() => false);
    if (decision === 'approve' && !entitled) {
      rt.logger.warn({ approval_id: id, signed_in: who.sub }, 'console: admin approval refused, not an approver of this request');
      return message(
        c,
        403,
        who,
        'Refused',
        'Only the person the agent acts for (or the rule’s approvers) can approve this request; an admin can only stop it.',
      );
    }
    const outcome = await approvals.decide(id, decision, 'review', { approver: who.sub, ...(entitled ? {} : { adminStop: true }) });
    switch (outcome.kind) {
      case 'decided':
        if (!entitled) rt.logger.info({ approval_id: id, admin: who.sub, user: rec.request.user }, 'console: approval stopped by an admin');
        return back(c, '/approvals', decision === 'approve' ? 'approved' : entitled ? 'denied' : 'stopped');
      case 'conflict':
        return back(c, '/approvals', 'conflict');
      case 'forbidden':
        return message(c, 403, who, 'Refused', 'You may not decide this request.');
      default:
        return message(c, 404, who, 'Not found', 'No such approval.');
    }
  });

  // ---------------------------------------------------------------- routes

  app.get('/routes', async (c) => {
    const who = await admin(c);
    if (who instanceof Response) return who;
    return page(c, 200, renderAdminRoutes(frameOf(c, who), rt.config));
  });

  // ---------------------------------------------------------------- tool pins

  const mcpRoutes = () => rt.config.routes.filter((r) => r.mcp).map((r) => r.name);

  app.get('/tools', async (c) => {
    const who = await admin(c);
    if (who instanceof Response) return who;
    return page(c, 200, renderAdminTools(frameOf(c, who), await listToolPins(rt.store), mcpRoutes()));
  });

  app.get('/tools/:route/:tool', async (c) => {
    const who = await admin(c);
    if (who instanceof Response) return who;
    const route = c.req.param('route');
    const tool = c.req.param('tool');
    const pin = await getToolPin(rt.store, route, tool);
    if (!pin) return message(c, 404, who, 'Not found', 'No such pinned tool.');
    return page(c, 200, renderAdminToolDiff(frameOf(c, who), pin, toolReview(pin)));
  });

  app.post('/tools/:route/:tool/accept', async (c) => {
    const post = await kit.posted(c, admin);
    if (post instanceof Response) return post;
    const { who, form } = post;
    const route = c.req.param('route');
    const tool = c.req.param('tool');
    const path = `/tools/${encodeURIComponent(route)}/${encodeURIComponent(tool)}`;
    // The hash of the definition the admin reviewed is required: accept exactly what was shown.
    if (!HASH.test(form.hash ?? '')) return message(c, 400, who, 'Bad request', 'The reviewed definition is missing.');
    // Only a definition this page shows whole can be accepted from it (a hash from elsewhere is refused too).
    const pin = await getToolPin(rt.store, route, tool);
    if (!pin) return message(c, 404, who, 'Not found', 'No such pinned tool.');
    const review = toolReview(pin);
    if (pin.changed && !review.acceptHash) return back(c, path, 'unreviewable');
    const outcome = await acceptToolChange(rt.store, route, tool, rt.logger, { expectedHash: form.hash, by: who.sub });
    if (outcome.status === 'unknown_tool') return message(c, 404, who, 'Not found', 'No such pinned tool.');
    if (outcome.status === 'not_reviewable') return back(c, path, 'unreviewable');
    if (outcome.status === 'nothing_to_accept') return back(c, path, outcome.record.changed ? 'stale' : 'nothing');
    return back(c, path, 'accepted');
  });

  return app;
}
