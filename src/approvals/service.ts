/**
 * The approval state machine: hold a risky request, merge duplicates, rate
 * limit, notify, wait for a decision (pub/sub), release exactly once, honour
 * grants and revocations. One instance per config generation; all state that
 * matters lives in the Store so any instance can continue what another began.
 */

import type { ApprovalRuleConfig } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import type { AuthorizeStage } from '../authz/stage.js';
import type { ApprovalEntry, RequestState } from '../pipeline/context.js';
import type { Runtime } from '../core/runtime.js';
import type { CibaClient } from './ciba.js';
import type { DecisionBus } from './decision-bus.js';
import { confirmationCode, randomId, safeEqual } from './ids.js';
import { sha256Hex } from '../core/canonical-json.js';
import { approvalNotice, type Notifier } from './notifiers.js';
import { effectiveStatus, type ApprovalRecord, type ApprovalRepo, type GrantRecord } from './records.js';
import { captureRequest, celVars, forwardableHeaders, grantMatchKey, requestDigest, storedTemplateVars, type StoredRequest } from './request-capture.js';
import { grantBinding, grantBoundNames } from './grant-binding.js';
import { selectRule, type CelVars, type RuleCompiler } from './rules.js';
import { renderMessage } from '../templates/template.js';
import { scrubString } from '../observability/logger.js';

/** How a decision attempt ended. */
/** Deliveries per channel and notice (the first try included), and the first retry's delay (doubling). */
const NOTIFY_ATTEMPTS = 5;
const NOTIFY_BACKOFF_MS = 500;

export type DecideOutcome =
  | { kind: 'decided'; record: ApprovalRecord }
  | { kind: 'conflict'; record: ApprovalRecord }
  | { kind: 'not_found' }
  | { kind: 'forbidden'; record: ApprovalRecord };

export interface ApprovalService {
  /** The pipeline's `approve` stage. */
  stage(state: RequestState): Promise<void>;
  /** Shadow mode: whether `stage` would hold this request (a rule selects it and no grant covers it), without holding or storing anything. */
  wouldHold(state: RequestState): Promise<boolean>;
  /**
   * Record a decision (exactly one wins; later ones get `conflict`). `adminStop`: the signed-in
   * `approver` is a console admin denying a request they may not decide themselves (a stop, never consent).
   */
  decide(
    id: string,
    decision: 'approve' | 'deny',
    source: 'review' | 'ciba',
    options?: { grantMs?: number; approver?: string; adminStop?: boolean },
  ): Promise<DecideOutcome>;
  /** May the signed-in person `approver` decide on `rec`? One of the rule's `approvers` (checked fresh), else the request's user. */
  mayDecide(rec: ApprovalRecord, approver: string): Promise<boolean>;
  /** The record when `t` is its review secret, else null. */
  reviewable(id: string, t: string): Promise<ApprovalRecord | null>;
  /** Cancel an approval the caller's user owns (pending or approved but unused → denied). */
  revoke(id: string, user: string): Promise<ApprovalRecord | null>;
  listGrants(user: string): Promise<GrantRecord[]>;
  /** Remove a grant; an approval it came with that is approved but unused is revoked too. */
  revokeGrant(user: string, grantId: string): Promise<boolean>;
  readonly repo: ApprovalRepo;
  close(): Promise<void>;
}

export interface ApprovalServiceDeps {
  rt: Runtime;
  /** The authorize stage: a release re-checks authorization before it runs. */
  authorize: Pick<AuthorizeStage, 'reauthorize'>;
  repo: ApprovalRepo;
  bus: DecisionBus;
  compiler: RuleCompiler;
  notifiers: Notifier[];
  ciba?: CibaClient;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLAIM_MS = 30_000;

/** Build the service. */
export function createApprovalService(deps: ApprovalServiceDeps): ApprovalService {
  const { rt, authorize, repo, bus, compiler, notifiers, ciba } = deps;
  const cfg = rt.config.approvals;
  const log = rt.logger.child({ feature: 'approvals' });
  const background = new Set<Promise<unknown>>();
  const cibaPolls = new Map<string, AbortController>();
  let closed = false;

  const track = (p: Promise<unknown>) => {
    const q = p.catch((err) => log.error({ err }, 'approval background task failed')).finally(() => background.delete(q));
    background.add(q);
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  const basePath = new URL(rt.publicUrl).pathname.replace(/\/+$/, '');
  const pollPath = (id: string) => `${basePath}/.warden/approvals/${id}`;

  // ------------------------------------------------------------ outcomes as errors

  function pendingError(rec: ApprovalRecord, merged: boolean): WardenError {
    const remaining = Math.max(1, Math.ceil((rec.expiresAt - Date.now()) / 1000));
    return new WardenError('approval_pending', 'this request is waiting for a human decision', {
      extra: {
        approval_id: rec.id,
        approval_status: 'pending',
        expires_at: iso(rec.expiresAt),
        poll_url: `${rt.publicUrl.replace(/\/+$/, '')}/.warden/approvals/${rec.id}`,
        confirmation_code: rec.code,
        merged,
      },
      headers: { Location: pollPath(rec.id), 'Retry-After': String(Math.min(5, remaining)) },
      reason: 'approval_pending',
    });
  }

  function outcomeError(rec: ApprovalRecord): WardenError {
    const extra = { approval_id: rec.id };
    switch (effectiveStatus(rec)) {
      case 'used':
        return new WardenError('approval_mismatch', 'this approval was already used; send a new request to ask again later', {
          extra,
          reason: 'approval_used',
        });
      case 'denied':
        return new WardenError('approval_denied', rec.decidedBy === 'revoked' ? 'the approval was revoked' : 'the request was denied by the approver', {
          extra,
          reason: rec.decidedBy === 'revoked' ? 'approval_revoked' : 'approval_denied',
        });
      default:
        return new WardenError('approval_expired', 'the approval expired before it was used', { extra, reason: 'approval_expired' });
    }
  }

  // ------------------------------------------------------------ transitions

  async function afterDecision(rec: ApprovalRecord): Promise<void> {
    await repo.releasePending(rec.request.user, rec.request.agent, rec.id).catch((err) => log.warn({ err }, 'could not release pending slot'));
    if (rec.decidedBy !== 'expiry') await repo.noteDecided(rec.id).catch((err) => log.warn({ err }, 'could not note the decision for the console'));
    await repo.publish({ id: rec.id, status: rec.status }).catch((err) => log.warn({ err }, 'could not publish approval event'));
    rt.metrics.inc('warden_approval_decisions_total', { status: rec.status, by: rec.decidedBy ?? 'unknown' });
  }

  async function expire(id: string): Promise<void> {
    const now = Date.now();
    const { record, changed } = await repo.update(id, (cur) =>
      cur.status === 'pending' && now >= cur.expiresAt ? { ...cur, status: 'expired', decidedAt: now, decidedBy: 'expiry' } : null,
    );
    if (changed && record) await afterDecision(record);
  }

  async function mayDecide(rec: ApprovalRecord, approver: string): Promise<boolean> {
    if (!rec.approvers) return approver === rec.request.user;
    // `approvers:` names an OpenFGA relation the signed-in person must hold; checked fresh, not from cache.
    return rt.authorizer.check(
      { user: `user:${approver}`, relation: rec.approvers.relation, object: rec.approvers.object },
      { consistency: 'higher_consistency' },
    );
  }

  async function decide(
    id: string,
    decision: 'approve' | 'deny',
    source: 'review' | 'ciba',
    options: { grantMs?: number; approver?: string; adminStop?: boolean } = {},
  ): Promise<DecideOutcome> {
    const before = await repo.get(id);
    if (!before) return { kind: 'not_found' };
    // An admin stop can only deny, and only in someone's name (the caller checked the admin role).
    const adminStop = options.adminStop === true && decision === 'deny' && options.approver !== undefined;
    if (options.adminStop && !adminStop) return { kind: 'forbidden', record: before };
    if (options.approver !== undefined && !adminStop) {
      // A signed-in decision: the person, not the link, must be entitled to decide either way.
      if (effectiveStatus(before) === 'pending' && !(await mayDecide(before, options.approver))) return { kind: 'forbidden', record: before };
    } else if (decision === 'approve' && before.approvers && effectiveStatus(before) === 'pending') {
      // `approvers:` names an OpenFGA relation the deciding user must hold; checked fresh, not from cache.
      const ok = await rt.authorizer.check(
        { user: `user:${before.request.user}`, relation: before.approvers.relation, object: before.approvers.object },
        { consistency: 'higher_consistency' },
      );
      if (!ok) return { kind: 'forbidden', record: before };
    }
    const now = Date.now();
    const grantMs = decision === 'approve' ? Math.min(Math.max(0, Math.floor(options.grantMs ?? 0)), cfg.max_grant) : 0;
    const { record, changed } = await repo.update(id, (cur) => {
      if (effectiveStatus(cur, now) !== 'pending') return null;
      const next: ApprovalRecord = { ...cur, status: decision === 'approve' ? 'approved' : 'denied', decidedAt: now, decidedBy: source };
      if (options.approver !== undefined) next.decidedByUser = options.approver;
      if (adminStop) next.decidedAsAdmin = true;
      if (decision === 'approve') {
        // The agent gets the rule's own ttl from the decision to come back for the release (#12 A.4).
        next.expiresAt = Math.max(cur.expiresAt, now + (cur.ttlMs ?? cfg.ttl));
        if (grantMs > 0) {
          next.grantMs = grantMs;
          next.grantId = grantMatchKey(cur.request);
        }
      }
      return next;
    });
    if (!record) return { kind: 'not_found' };
    if (!changed) {
      if (record.status === 'pending' && effectiveStatus(record) === 'expired') await expire(id);
      return { kind: 'conflict', record: (await repo.get(id)) ?? record };
    }
    if (record.status === 'approved') {
      await repo.setDigest(record.digest, record.id, record.expiresAt - Date.now()).catch(() => undefined);
      if (record.grantMs && record.grantId) {
        const r = record.request;
        await repo.putGrant({
          id: record.grantId,
          user: r.user,
          agent: r.agent,
          route: r.route,
          method: r.method,
          path: r.path,
          ...(r.tool !== undefined ? { tool: r.tool } : {}),
          ...(record.grantBinding ? { binding: record.grantBinding } : {}),
          approvalId: record.id,
          createdAt: now,
          expiresAt: now + record.grantMs,
        });
        // Revoked between the decision and the grant's write: revoke() found no grant to remove, so remove it here.
        if ((await repo.get(record.id))?.status === 'denied') await dropGrant(r.user, record);
      }
    }
    await afterDecision(record);
    log.info(
      {
        approval_id: id,
        status: record.status,
        by: source,
        ...(options.approver !== undefined ? { approver: options.approver } : {}),
        ...(adminStop ? { admin_stop: true } : {}),
        grant_ms: record.grantMs ?? 0,
      },
      'approval decided',
    );
    return { kind: 'decided', record };
  }

  async function revoke(id: string, user: string): Promise<ApprovalRecord | null> {
    const now = Date.now();
    const { record, changed } = await repo.update(id, (cur) => {
      if (cur.request.user !== user) return null;
      const st = effectiveStatus(cur, now);
      return st === 'pending' || st === 'approved' ? { ...cur, status: 'denied', decidedAt: now, decidedBy: 'revoked' } : null;
    });
    if (!record || record.request.user !== user) return null;
    if (changed) {
      // An approved request's "allow this again" grant ends with it.
      await dropGrant(user, record);
      await afterDecision(record);
    }
    return record;
  }

  /** Remove the grant `rec` made, if it is still that approval's (a later approval of the same request may own it now). */
  async function dropGrant(user: string, rec: ApprovalRecord): Promise<void> {
    if (!rec.grantId) return;
    const grant = await repo.getGrant(user, rec.grantId);
    if (grant?.approvalId === rec.id) await repo.deleteGrant(user, rec.grantId);
  }

  // ------------------------------------------------------------ hold and release

  async function release(rec: ApprovalRecord, state: RequestState, digest: string): Promise<void> {
    // Authorization may have changed while the request waited: ask again, bypassing caches.
    state.releasing = true;
    await authorize.reauthorize(state);
    const now = Date.now();
    const { record, changed } = await repo.update(rec.id, (cur) =>
      effectiveStatus(cur, now) === 'approved' && cur.digest === digest ? { ...cur, status: 'used', usedAt: now } : null,
    );
    if (!record) throw new WardenError('approval_expired', 'the approval no longer exists', { extra: { approval_id: rec.id } });
    if (!changed) throw outcomeError(record);
    state.approvalId = record.id;
    state.forwardOnlyHeaders = forwardableHeaders(state);
    state.approval = {
      id: record.id,
      approvedBy: record.decidedByUser ?? record.request.user,
      decidedAt: record.decidedAt ?? now,
      digest: record.digest,
      via: record.decidedBy === 'ciba' ? 'ciba' : 'review',
    };
    rt.metrics.inc('warden_approval_releases_total', {});
    log.info({ approval_id: record.id, request_id: state.id }, 'approved request released');
    await repo.publish({ id: record.id, status: 'used' }).catch(() => undefined);
  }

  /**
   * The agent's connection, when the pipeline exposes it (`signal`, aborted on
   * disconnect): a request whose agent is gone is never released, so the
   * approval stays unused for the agent's retry instead of running unseen.
   */
  const signalOf = (state: RequestState): AbortSignal | undefined => (state as RequestState & { signal?: AbortSignal }).signal;

  async function resolve(rec: ApprovalRecord, state: RequestState, digest: string, merged: boolean): Promise<void> {
    const signal = signalOf(state);
    const waiter = bus.waiter(rec.id);
    try {
      const deadline = Math.min(Date.now() + cfg.hold, rec.expiresAt);
      let cur: ApprovalRecord | null = rec;
      for (;;) {
        cur = await repo.get(rec.id);
        if (!cur) throw new WardenError('approval_expired', 'the approval no longer exists', { extra: { approval_id: rec.id } });
        const st = effectiveStatus(cur);
        if (signal?.aborted) break;
        if (st === 'approved') return await release(cur, state, digest);
        if (st === 'expired' && cur.status === 'pending') await expire(cur.id);
        if (st !== 'pending') throw outcomeError(cur);
        const remaining = deadline - Date.now();
        if (remaining <= 0 || closed) break;
        await waiter.wait(remaining, signal);
      }
      state.decision = 'pending';
      throw pendingError(cur, merged);
    } finally {
      waiter.cancel();
    }
  }

  // ------------------------------------------------------------ creation

  function reviewUrl(id: string, t: string): string {
    return `${rt.publicUrl.replace(/\/+$/, '')}/.warden/approvals/${id}/review?t=${t}`;
  }

  /**
   * Deliver the notice on every channel. A failed delivery is retried with
   * backoff (0.5 s doubling, NOTIFY_ATTEMPTS in all, stopped at close); one
   * that never succeeds is counted (`result: failed`) and written on the
   * approval record (`notifyFailures`), so operators and the review list see
   * that nobody was told.
   */
  async function notifyAll(rec: ApprovalRecord, t: string): Promise<void> {
    const notice = approvalNotice(rec, reviewUrl(rec.id, t));
    await Promise.all(
      notifiers.map(async (n) => {
        let lastError = '';
        for (let attempt = 1; attempt <= NOTIFY_ATTEMPTS; attempt++) {
          try {
            await n.notify(notice, rec);
            rt.metrics.inc('warden_approval_notifications_total', { channel: n.kind, result: attempt === 1 ? 'sent' : 'sent_after_retry' });
            return;
          } catch (err) {
            // Shown to reviewers and kept on the record: scrubbed as a log line is (a URL's password, a token).
            lastError = err instanceof Error ? scrubString(err.message).slice(0, 200) : 'delivery failed';
            rt.metrics.inc('warden_approval_notification_attempts_failed_total', { channel: n.kind });
            log.warn({ approval_id: rec.id, channel: n.kind, attempt, err }, 'approval notification failed');
          }
          if (attempt < NOTIFY_ATTEMPTS) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, NOTIFY_BACKOFF_MS * 2 ** (attempt - 1));
              timer.unref();
            });
            if (closed) break;
          }
        }
        rt.metrics.inc('warden_approval_notifications_total', { channel: n.kind, result: 'failed' });
        const failure = { channel: n.kind, error: lastError, at: Date.now() };
        await repo
          .update(rec.id, (cur) => ({ ...cur, notifyFailures: [...(cur.notifyFailures ?? []), failure].slice(-10) }))
          .catch((err: unknown) => {
            log.warn({ approval_id: rec.id, err }, 'could not record the failed notification on the approval');
          });
      }),
    );
  }

  async function create(
    stored: StoredRequest,
    digest: string,
    rule: ApprovalRuleConfig,
    source: string,
    binding: string,
    covers: string[],
  ): Promise<ApprovalRecord | 'claimed' | 'limited'> {
    const id = randomId();
    const now = Date.now();
    const ttlMs = rule.ttl ?? cfg.ttl;
    const expiresAt = now + ttlMs;
    if (!(await repo.claimDigest(digest, id, CLAIM_MS))) return 'claimed';
    let reserved = false;
    try {
      reserved = await repo.reservePending(stored.user, stored.agent, id, expiresAt, cfg.max_pending_per_user);
      if (!reserved) {
        await repo.releaseDigest(digest, id);
        return 'limited';
      }
      const vars = storedTemplateVars(stored);
      const t = randomId(24);
      const rec: ApprovalRecord = {
        v: 1,
        id,
        status: 'pending',
        digest,
        code: confirmationCode(digest),
        message: rule.message ? renderMessage(rule.message, vars).slice(0, 2000) : '',
        request: stored,
        source,
        createdAt: now,
        expiresAt,
        reviewHash: sha256Hex(t),
        ttlMs,
        grantBinding: binding,
        grantCovers: covers,
        ...(rule.approvers ? { approvers: { relation: rule.approvers.relation, object: renderMessage(rule.approvers.object, vars) } } : {}),
      };
      await repo.create(rec);
      await repo.setDigest(digest, id, expiresAt - now);
      rt.metrics.inc('warden_approvals_created_total', { route: stored.route });
      log.info(
        { approval_id: id, agent: stored.agent, user: stored.user, route: stored.route, method: stored.method, confirmation_code: rec.code },
        'approval requested',
      );
      track(notifyAll(rec, t));
      if (ciba) track(startCiba(rec));
      return rec;
    } catch (err) {
      if (reserved) await repo.releasePending(stored.user, stored.agent, id).catch(() => undefined);
      await repo.releaseDigest(digest, id).catch(() => undefined);
      throw err;
    }
  }

  // ------------------------------------------------------------ CIBA

  async function startCiba(rec: ApprovalRecord): Promise<void> {
    if (!ciba || !cfg.ciba) return;
    const vars = storedTemplateVars(rec.request);
    const loginHint = renderMessage(cfg.ciba.login_hint, vars);
    if (!loginHint) throw new Error('CIBA login_hint rendered empty');
    const requested = cfg.ciba.requested_expiry ?? rec.expiresAt - Date.now();
    const req = await ciba.start({ loginHint, bindingMessage: rec.code, requestedExpirySeconds: Math.ceil(requested / 1000) });
    const { changed } = await repo.update(rec.id, (cur) =>
      cur.status === 'pending' ? { ...cur, ciba: { authReqId: req.authReqId, interval: req.interval, expiresAt: req.expiresAt } } : null,
    );
    if (changed) await pollCiba(rec.id, req); // decided meanwhile (review link): nothing to wait for
  }

  async function pollCiba(id: string, req: { authReqId: string; interval: number; expiresAt: number }): Promise<void> {
    if (!ciba || cibaPolls.has(id)) return;
    // One poller per approval across instances: a lease the poller keeps renewing.
    const lock = await rt.store.tryLock(`approval:ciba:${id}`, 60_000);
    if (!lock) return;
    const controller = new AbortController();
    cibaPolls.set(id, controller);
    const waiter = bus.waiter(id);
    const renew = setInterval(
      () =>
        void lock
          .renew(60_000)
          .then((ok) => ok || controller.abort())
          .catch(() => controller.abort()),
      20_000,
    );
    // Another decision (review link, expiry) ends the poll.
    void (async () => {
      while (!controller.signal.aborted) {
        if (!(await waiter.wait(3_600_000, controller.signal))) continue;
        const cur = await repo.get(id).catch(() => null);
        if (!cur || cur.status !== 'pending') controller.abort();
      }
    })();
    try {
      const { outcome, person } = await ciba.poll(req, controller.signal, (interval) =>
        log.info({ approval_id: id, interval }, 'CIBA provider asked to slow down'),
      );
      log.info({ approval_id: id, outcome }, 'CIBA outcome');
      if (outcome === 'approved') {
        // The provider's approval is the person its ID token names: the request's user, or one who holds `approvers`.
        const decided = await decide(id, 'approve', 'ciba', { approver: person });
        if (decided.kind === 'forbidden') {
          log.warn({ approval_id: id, approver: person }, 'CIBA approval by someone not entitled to approve: refused, the approval stays pending');
        }
      } else if (outcome === 'denied') await decide(id, 'deny', 'ciba');
      else if (outcome === 'expired') {
        const now = Date.now();
        const { record, changed } = await repo.update(id, (cur) =>
          cur.status === 'pending' ? { ...cur, status: 'expired', decidedAt: now, decidedBy: 'expiry', expiresAt: Math.min(cur.expiresAt, now) } : null,
        );
        if (changed && record) await afterDecision(record);
      }
    } finally {
      clearInterval(renew);
      controller.abort();
      waiter.cancel();
      cibaPolls.delete(id);
      await lock.release().catch(() => undefined);
    }
  }

  /** After a restart, continue polling the provider for pending CIBA approvals. */
  async function resumeCiba(): Promise<void> {
    if (!ciba) return;
    for (const id of await repo.listIds(10_000)) {
      const rec = await repo.get(id).catch(() => null);
      if (rec?.ciba && effectiveStatus(rec) === 'pending') track(pollCiba(id, rec.ciba));
    }
  }
  if (ciba) track(resumeCiba());

  // ------------------------------------------------------------ the stage

  async function stage(state: RequestState): Promise<void> {
    const rules = state.policy.approval;
    if (rules.length === 0) return;
    const cel = celVars(state);
    const selected = selectRule(rules, compiler, cel);
    if (!selected) return;
    const stored = captureRequest(state);
    const digest = requestDigest(stored);
    const { binding, covers } = grantTerms(rules, selected, cel, stored);

    const named = state.headers['warden-approval'];
    if (named !== undefined) {
      const id = String(Array.isArray(named) ? named[0] : named).trim();
      const rec = await repo.get(id);
      if (!rec || rec.request.agent !== stored.agent || rec.request.user !== stored.user) {
        throw new WardenError('approval_mismatch', 'no such approval for this agent and user', { reason: 'approval_unknown' });
      }
      if (rec.digest !== digest) {
        throw new WardenError('approval_mismatch', 'this request differs from the one that was approved (method, URL or body)', {
          extra: { approval_id: rec.id },
          reason: 'approval_digest_mismatch',
        });
      }
      return resolve(rec, state, digest, true);
    }

    // `when` was re-evaluated above: the grant must be of the rule that holds this request.
    const grant = await coveringGrant(stored, binding);
    if (grant) {
      state.approvalId = grant.approvalId;
      state.forwardOnlyHeaders = forwardableHeaders(state);
      // The grant's start is the moment its approval was decided.
      state.approval = { id: grant.approvalId, approvedBy: grant.user, decidedAt: grant.createdAt, digest, via: 'grant' };
      rt.metrics.inc('warden_approval_grant_hits_total', { route: stored.route });
      return;
    }

    for (let attempt = 0; attempt < 80; attempt++) {
      const owner = await repo.digestOwner(digest);
      if (owner) {
        const rec = await repo.get(owner);
        if (!rec) {
          await sleep(25); // another request is creating this approval right now
          continue;
        }
        if (effectiveStatus(rec) === 'expired') {
          // An expired approval never runs; an identical new request asks afresh.
          if (rec.status === 'pending') await expire(rec.id);
          await repo.releaseDigest(digest, rec.id);
          continue;
        }
        rt.metrics.inc('warden_approvals_merged_total', { route: stored.route });
        return resolve(rec, state, digest, true);
      }
      const created = await create(stored, digest, selected.rule, selected.source, binding, covers);
      if (created === 'claimed') continue;
      if (created === 'limited') {
        rt.metrics.inc('warden_approvals_rate_limited_total', { route: stored.route });
        throw new WardenError('rate_limited', `too many approvals are waiting for this user and agent (max ${cfg.max_pending_per_user})`, {
          headers: { 'Retry-After': String(Math.max(1, Math.ceil(cfg.hold / 1000))) },
          reason: 'approval_rate_limited',
        });
      }
      return resolve(created, state, digest, false);
    }
    throw new WardenError('store_unavailable', 'could not register the approval; try again', { reason: 'approval_contention' });
  }

  async function wouldHold(state: RequestState): Promise<boolean> {
    const rules = state.policy.approval;
    if (rules.length === 0) return false;
    const cel = celVars(state);
    const selected = selectRule(rules, compiler, cel);
    if (!selected) return false;
    const stored = captureRequest(state);
    return !(await coveringGrant(stored, grantTerms(rules, selected, cel, stored).binding));
  }

  /**
   * What a time-boxed grant given on this hold binds (its digest) and covers
   * (the names the review page lists). An entry with values of its own (a
   * budget escalation: the amount and key over the budget) binds them, and,
   * as it comes before the route's and tool's own rules, the values of the
   * rule that would have held the request without it: a grant on "80 over the
   * budget" is neither a grant on 5000 nor on what another rule asks about.
   */
  function grantTerms(rules: readonly ApprovalEntry[], selected: ApprovalEntry, cel: CelVars, stored: StoredRequest): { binding: string; covers: string[] } {
    const shown = storedTemplateVars(stored);
    if (selected.bound === undefined) return { binding: grantBinding(selected.source, selected.rule, cel, shown), covers: grantBoundNames(selected.rule) };
    const next = selectRule(
      rules.filter((r) => r.bound === undefined),
      compiler,
      cel,
    );
    const bound = [selected.bound.values, next ? grantBinding(next.source, next.rule, cel, shown) : null];
    const covers = new Set([...selected.bound.names, ...grantBoundNames(selected.rule), ...(next ? grantBoundNames(next.rule) : [])]);
    return { binding: grantBinding(selected.source, selected.rule, cel, shown, bound), covers: [...covers].sort() };
  }

  /**
   * The standing grant that lets `stored` through, if any. A grant covers only
   * the values the approver agreed to: the same agent, route, method and path,
   * and the same binding of the rule's values.
   */
  async function coveringGrant(stored: StoredRequest, binding: string): Promise<GrantRecord | undefined> {
    const grant = await repo.getGrant(stored.user, grantMatchKey(stored));
    const covers =
      grant &&
      grant.agent === stored.agent &&
      grant.route === stored.route &&
      grant.method === stored.method &&
      grant.path === stored.path &&
      grant.binding !== undefined &&
      grant.binding === binding;
    if (!covers) return undefined;
    // A grant whose approval was revoked does not cover anything, even if removing it failed.
    return (await repo.get(grant.approvalId))?.status === 'denied' ? undefined : grant;
  }

  return {
    stage,
    wouldHold,
    decide,
    mayDecide,
    repo,
    async reviewable(id, t) {
      if (typeof t !== 'string' || t.length < 16 || t.length > 128) return null;
      const rec = await repo.get(id);
      if (!rec || !safeEqual(rec.reviewHash, sha256Hex(t))) return null;
      return rec;
    },
    revoke,
    listGrants: (user) => repo.listGrants(user),
    async revokeGrant(user, grantId) {
      const grant = await repo.deleteGrant(user, grantId);
      if (!grant) return false;
      await revoke(grant.approvalId, user); // an approved but unreleased request goes with its grant
      log.info({ grant_id: grantId, approval_id: grant.approvalId }, 'grant revoked');
      return true;
    },
    async close() {
      closed = true;
      for (const c of cibaPolls.values()) c.abort();
      await bus.close();
      await Promise.allSettled([...background]);
      await Promise.allSettled(notifiers.map(async (n) => n.close?.()));
    },
  };
}
