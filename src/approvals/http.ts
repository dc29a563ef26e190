/**
 * Approval endpoints. Agent listener (mounted at `/.warden`): the agent polls
 * its approval; the approver reviews and decides with the secret link; the
 * user lists and revokes grants. Admin listener: the approvals list.
 * JSON endpoints throw WardenError (the gateway renders problem+json); the
 * review page answers HTML itself with strict headers.
 */

import { Hono, type Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { WardenError } from '../core/errors.js';
import { createOnError } from '../http/problem.js';
import { bearerToken } from '../identity/bearer.js';
import type { Principal } from '../core/principal.js';
import type { Runtime } from '../core/runtime.js';
import { ID_SHAPE, randomId, safeEqual } from './ids.js';
import { effectiveStatus, type ApprovalRecord } from './records.js';
import { REVIEW_HEADERS, renderReviewPage, renderStatusPage } from './review-page.js';
import type { ApprovalService } from './service.js';
import type { SignedInPerson } from '../http/session.js';
import { reviewAuthOf } from '../identity/login/config-checks.js';

const CSRF_COOKIE = 'warden_review_csrf';

async function authenticate(c: Context, rt: Runtime): Promise<Principal> {
  const token = bearerToken(c.req.header('authorization'));
  if (token === null) {
    throw new WardenError('unauthenticated', 'a bearer token is required', { headers: { 'WWW-Authenticate': 'Bearer realm="warden"' } });
  }
  return rt.authenticator.authenticate(token);
}

/** The agent-facing view of an approval. */
export function approvalStatusView(rec: ApprovalRecord, publicUrl: string) {
  return {
    approval_id: rec.id,
    status: effectiveStatus(rec),
    expires_at: new Date(rec.expiresAt).toISOString(),
    confirmation_code: rec.code,
    message: rec.message,
    method: rec.request.method,
    url: rec.request.query ? `${rec.request.path}?${rec.request.query}` : rec.request.path,
    ...(rec.decidedAt ? { decided_at: new Date(rec.decidedAt).toISOString() } : {}),
    ...(rec.usedAt ? { used_at: new Date(rec.usedAt).toISOString() } : {}),
    poll_url: `${publicUrl.replace(/\/+$/, '')}/.warden/approvals/${rec.id}`,
  };
}

/** problem+json for errors thrown by JSON endpoints (the gateway's own renderer). */
function renderProblems(app: Hono, rt: Runtime): void {
  app.onError(createOnError(rt.logger, 'approvals endpoint'));
}

function html(c: Context, status: number, body: string, extraHeaders: Record<string, string> = {}) {
  return c.body(body, status as 200, { ...REVIEW_HEADERS, ...extraHeaders });
}

/** The `/.warden` sub-app of the approvals feature. */
export function createApprovalRoutes(service: ApprovalService, rt: Runtime): Hono {
  const app = new Hono();
  renderProblems(app, rt);
  const secureCookie = rt.publicUrl.startsWith('https://');
  // public_url may carry a path prefix (Warden behind a proxy); links and cookie paths include it.
  const basePath = new URL(rt.publicUrl).pathname.replace(/\/+$/, '');
  const maxPollsPerWindow = 20; // per approval per 10 s: enough for Retry-After pacing, not for hammering

  // ---- grants (before `/approvals/:id`, which would match "grants")
  app.get('/approvals/grants', async (c) => {
    const p = await authenticate(c, rt);
    if (!p.user) throw new WardenError('forbidden', 'grants belong to a user; this token acts for none');
    const grants = await service.listGrants(p.user);
    return c.json(
      {
        grants: grants.map((g) => ({
          grant_id: g.id,
          agent: g.agent,
          route: g.route,
          method: g.method,
          path: g.path,
          ...(g.tool !== undefined ? { tool: g.tool } : {}),
          approval_id: g.approvalId,
          created_at: new Date(g.createdAt).toISOString(),
          expires_at: new Date(g.expiresAt).toISOString(),
        })),
      },
      200,
      { 'Cache-Control': 'no-store' },
    );
  });

  app.delete('/approvals/grants/:grantId', async (c) => {
    const p = await authenticate(c, rt);
    if (!p.user) throw new WardenError('forbidden', 'grants belong to a user; this token acts for none');
    if (!(await service.revokeGrant(p.user, c.req.param('grantId')))) throw new WardenError('not_found', 'no such grant');
    return c.body(null, 204);
  });

  // ---- the agent's poll
  app.get('/approvals/:id', async (c) => {
    const p = await authenticate(c, rt);
    const id = c.req.param('id');
    const rec = ID_SHAPE.test(id) ? await service.repo.get(id) : null;
    // Another agent's or user's approval looks exactly like a missing one.
    if (!rec || rec.request.agent !== p.agent || rec.request.user !== p.user) throw new WardenError('not_found', 'no such approval');
    const window = Math.floor(Date.now() / 10_000);
    if ((await rt.store.incr(`approval:poll:${id}:${window}`, 20_000)) > maxPollsPerWindow) {
      throw new WardenError('rate_limited', 'polling too fast; honour Retry-After', { headers: { 'Retry-After': '5' } });
    }
    const view = approvalStatusView(rec, rt.publicUrl);
    const headers: Record<string, string> = { 'Cache-Control': 'no-store' };
    if (view.status === 'pending') headers['Retry-After'] = '5';
    return c.json(view, 200, headers);
  });

  // ---- the user cancels an approval (pending, or approved but not yet used)
  app.delete('/approvals/:id', async (c) => {
    const p = await authenticate(c, rt);
    const id = c.req.param('id');
    const rec = p.user && ID_SHAPE.test(id) ? await service.revoke(id, p.user) : null;
    if (!rec) throw new WardenError('not_found', 'no such approval');
    return c.json(approvalStatusView(rec, rt.publicUrl), 200, { 'Cache-Control': 'no-store' });
  });

  // ---- the approver. review_auth says what lets someone decide: the secret
  // link, a signed-in approver (identity.login), or both.
  const reviewAuth = reviewAuthOf(rt.config);
  const sessions = rt.sessions;
  const findForReview = (id: string, t: string) =>
    !ID_SHAPE.test(id) ? Promise.resolve(null) : reviewAuth === 'login' ? service.repo.get(id) : service.reviewable(id, t);

  /** The signed-in person entitled to decide on `rec`, or the page to answer instead. */
  async function reviewer(c: Context, rec: ApprovalRecord, returnTo: string): Promise<SignedInPerson | Response> {
    if (sessions.mode === null)
      return html(c, 503, renderStatusPage('Sign-in is not configured', null, 'Deciding needs a signed-in approver, and this Warden has no identity.login.'));
    const person = await sessions.current(c);
    if (!person) {
      if (c.req.method !== 'GET') return html(c, 403, renderStatusPage('Not signed in', null, 'Your sign-in ended. Open the review link again.'));
      return c.body(null, 303, { ...REVIEW_HEADERS, Location: sessions.loginPath(returnTo) });
    }
    if (!(await service.mayDecide(rec, person.sub))) {
      rt.logger.warn({ approval_id: rec.id, signed_in: person.sub }, 'review refused: the signed-in person is not an approver');
      const needed = rec.approvers ? `someone with ${rec.approvers.relation} on ${rec.approvers.object}` : rec.request.user;
      return html(
        c,
        403,
        renderStatusPage('Not allowed', null, `You are signed in as ${person.sub}. This request must be decided by ${needed}. Nothing was decided.`),
      );
    }
    return person;
  }

  app.get('/approvals/:id/review', async (c) => {
    const id = c.req.param('id');
    const t = c.req.query('t') ?? '';
    const rec = await findForReview(id, t);
    if (!rec) return html(c, 404, renderStatusPage('Approval not found', null, 'The link is wrong or the request is gone.'));
    if (reviewAuth !== 'link') {
      const who = await reviewer(c, rec, `${basePath}/.warden/approvals/${id}/review${t ? `?t=${encodeURIComponent(t)}` : ''}`);
      if (who instanceof Response) return who;
    }
    const status = effectiveStatus(rec);
    if (status !== 'pending') return html(c, 200, renderStatusPage('Already decided', status));
    const csrf = randomId(24);
    setCookie(c, CSRF_COOKIE, csrf, {
      path: `${basePath}/.warden/approvals/${id}/review`,
      httpOnly: true,
      sameSite: 'Strict',
      secure: secureCookie,
      maxAge: Math.max(60, Math.ceil((rec.expiresAt - Date.now()) / 1000)),
    });
    const page = renderReviewPage(rec, { t, csrf, maxGrantMs: rt.config.approvals.max_grant, action: `${basePath}/.warden/approvals/${id}/review` });
    return html(c, 200, page);
  });

  app.post('/approvals/:id/review', async (c) => {
    const id = c.req.param('id');
    // Browsers say where a form came from; a cross-site post is refused before anything else.
    const site = c.req.header('sec-fetch-site');
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      return html(c, 403, renderStatusPage('Refused', null, 'Decisions must be made from the review page.'));
    }
    let form: Record<string, unknown> = {};
    try {
      form = (await c.req.parseBody()) as Record<string, unknown>;
    } catch {
      return html(c, 400, renderStatusPage('Bad request', null));
    }
    const field = (k: string) => (typeof form[k] === 'string' ? (form[k] as string) : '');
    const t = field('t');
    const csrf = field('csrf');
    const cookie = getCookie(c, CSRF_COOKIE) ?? '';
    const rec = await findForReview(id, t);
    if (!rec) return html(c, 404, renderStatusPage('Approval not found', null, 'The link is wrong or the request is gone.'));
    if (!csrf || !cookie || !safeEqual(csrf, cookie)) {
      return html(c, 403, renderStatusPage('Refused', null, 'The form token is missing or wrong; open the review link again.'));
    }
    let approver: string | undefined;
    if (reviewAuth !== 'link') {
      const who = await reviewer(c, rec, '');
      if (who instanceof Response) return who;
      approver = who.sub;
    }
    const decision = field('decision');
    if (decision !== 'approve' && decision !== 'deny') return html(c, 400, renderStatusPage('Bad request', null, 'Unknown decision.'));
    const minutes = Number(field('grant_minutes') || '0');
    const grantMs = Number.isFinite(minutes) && minutes > 0 ? Math.min(minutes * 60_000, rt.config.approvals.max_grant) : 0;
    const outcome = await service.decide(id, decision, 'review', { grantMs, ...(approver !== undefined ? { approver } : {}) });
    switch (outcome.kind) {
      case 'decided':
        return html(
          c,
          200,
          renderStatusPage(
            decision === 'approve' ? 'Approved' : 'Denied',
            outcome.record.status,
            outcome.record.grantMs
              ? `Matching requests are allowed without asking until ${new Date(outcome.record.decidedAt! + outcome.record.grantMs).toISOString()}.`
              : undefined,
          ),
        );
      case 'conflict':
        return html(c, 409, renderStatusPage('Already decided', effectiveStatus(outcome.record), 'A decision was already recorded; this one was not.'));
      case 'forbidden':
        return html(c, 403, renderStatusPage('Not allowed', null, 'You are not an approver for this request. You can still deny it.'));
      default:
        return html(c, 404, renderStatusPage('Approval not found', null));
    }
  });

  return app;
}

/** Admin listener: `GET /approvals[?status=pending&limit=100]`. */
export function createApprovalAdmin(service: ApprovalService, rt: Runtime): Hono {
  const app = new Hono();
  renderProblems(app, rt);
  app.get('/approvals', async (c) => {
    const want = c.req.query('status');
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 100) || 100, 1), 1000);
    const out: unknown[] = [];
    for (const id of await service.repo.listIds(10_000)) {
      const rec = await service.repo.get(id);
      if (!rec) continue;
      const status = effectiveStatus(rec);
      if (want && status !== want) continue;
      out.push({
        ...approvalStatusView(rec, rt.publicUrl),
        agent: rec.request.agent,
        user: rec.request.user,
        route: rec.request.route,
        created_at: new Date(rec.createdAt).toISOString(),
        decided_by: rec.decidedBy ?? null,
        decided_by_user: rec.decidedByUser ?? null,
      });
      if (out.length >= limit) break;
    }
    return c.json({ approvals: out }, 200, { 'Cache-Control': 'no-store' });
  });
  return app;
}
