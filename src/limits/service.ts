/**
 * Rate limits and spend budgets on the request path. One decision per limit,
 * made atomically by the store (exact across instances on Redis). A budget's
 * amount is reserved before forwarding and committed once the upstream
 * answered below 500, released otherwise; a request over its budget is
 * refused (403 budget_exceeded) or held for the user by the approvals service.
 */

import { randomBytes } from 'node:crypto';
import { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import type { TemplateVars } from '../templates/template.js';
import { templateVars } from '../templates/request-vars.js';
import type { Runtime } from '../core/runtime.js';
import type { BoundCounter } from '../observability/metrics.js';
import type { BudgetState, LocalReservation, RateLimitResult, SettleWatcher } from '../store/store.js';
import { compileLimits, resolveAmount, type CompiledBudget, type CompiledLimits, type CompiledRateLimit, type LimitSite } from './compile.js';
import { wholeSeconds } from './headers.js';
import { shadowRoutes } from '../pipeline/shadow.js';

/** A budget as the caller sees it (GET /.warden/budgets). */
export interface BudgetView {
  route: string;
  tool?: string;
  key: string | null;
  max: number;
  window_seconds: number;
  over: 'approve' | 'deny';
  spent?: number;
  held?: number;
  remaining?: number;
  next_release_seconds?: number;
  /** The key depends on each request (path, body, args…): no single figure to show. */
  per_request?: true;
  /** Asked by a signed-in person and the key names {agent}: one figure per agent, none shown. */
  per_agent?: true;
}

export interface LimitsService {
  /** True when the request's route (or its tool) has a limit: the stage is skipped otherwise. */
  applies(state: RequestState): boolean;
  /** True when the route or one of its MCP tools has a limit (asked once per route). */
  routeHasLimits(route: string): boolean;
  /** The stage: rate limits, then budget reservations (peek only when `dryRun`); no promise when every decision is made now. */
  stage(state: RequestState): Promise<void> | void;
  /** The budgets of a caller: an agent acting for a user, or a signed-in person (agent null). */
  budgetsFor(caller: { agent: string | null; user: string | null; claims: Record<string, unknown> }): Promise<BudgetView[]>;
  close(): Promise<void>;
}

// Reservation ids: unique per process (random prefix) and per reservation (counter); no entropy drawn per request.
const idPrefix = randomBytes(9).toString('base64url');
let idCounter = 0;
const newId = () => `${idPrefix}${(idCounter++).toString(36)}`;

/**
 * One budget reservation of one request: its budget, store key and amount.
 * Its id is made only when a store needs one (a Redis local quota block holds
 * the reservation by this record instead, `lot`: nothing is kept per request).
 */
class Reservation implements LocalReservation {
  lot: unknown = undefined;
  /** Reserved in the store (and so to be settled once the request ends). */
  reserved = false;
  #id: string | undefined = undefined;
  readonly leaseMs: number;
  readonly force: boolean | undefined;
  constructor(
    readonly budget: CompiledBudget,
    readonly key: string,
    readonly amount: number,
    force?: true,
  ) {
    this.leaseMs = budget.leaseMs;
    this.force = force;
  }
  get id(): string {
    return (this.#id ??= newId());
  }
}

const round = (x: number) => Number(x.toPrecision(15));

/** "24h", "1m", "90s": the window as configured people read it. */
export function formatWindow(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const PEEK = Object.freeze({ peek: true });
const noop = () => undefined;

function throwFirstRejection(outcomes: PromiseSettledResult<unknown>[]): void {
  for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
}

/** One request's budget reservations (the route's, then its tool's): what to settle when the request ends, and what went over. */
interface BudgetRun {
  readonly state: RequestState;
  readonly first: Reservation;
  readonly second: Reservation | undefined;
  /** Approved over-budget spends (reserved by force after the approval). */
  approved?: Reservation[];
  overs?: Array<{ r: Reservation; st: BudgetState }>;
  settled: boolean;
}

/** Counters of one site, bound on first use; `watcher` hears about settlements a store records later. */
interface SiteCounters {
  spent?: BoundCounter;
  released?: BoundCounter;
  watcher: SettleWatcher;
}

/** Build the limits of one config generation. */
export function createLimitsService(rt: Runtime, options: { dryRun?: boolean } = {}): LimitsService {
  const compiled: CompiledLimits = compileLimits(rt.config);
  const dryRun = options.dryRun === true;
  // Shadow routes hold nothing for approval (the approve stage only records a would-hold), and limits are not shadowed.
  const shadow = shadowRoutes(rt.config);
  const { store, metrics } = rt;
  const log = rt.logger.child({ feature: 'limits' });
  const background = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const q = p.finally(() => background.delete(q));
    background.add(q);
  };

  const labels = new Map<string, Readonly<Record<string, string>>>();
  const labelsOf = (site: LimitSite, extra: string) => {
    const k = `${site.policy}\n${extra}`;
    let l = labels.get(k);
    if (!l) {
      l = Object.freeze({ ...site.labels, action: extra });
      labels.set(k, l);
    }
    return l;
  };

  // The reservation could not be settled: it lapses with its lease (a release is not lost
  // for long); a commit that fails leaves the spend uncounted after the lease, so say so.
  const settleFailed = (site: LimitSite, commit: boolean, err: unknown) => {
    metrics.inc('warden_budget_settle_failures_total', site.labels);
    log.error({ err, budget: site.policy, commit }, 'could not settle a budget reservation');
  };
  const counters = new Map<LimitSite, SiteCounters>();
  const countersOf = (site: LimitSite): SiteCounters => {
    let c = counters.get(site);
    if (!c) counters.set(site, (c = { watcher: { done: noop, failed: (err) => settleFailed(site, true, err) } }));
    return c;
  };
  const counted = (c: SiteCounters, site: LimitSite, commit: boolean, amount: number) => {
    if (commit) (c.spent ??= metrics.counter('warden_budget_spent_total', site.labels)).inc(amount);
    else (c.released ??= metrics.counter('warden_budget_released_total', site.labels)).inc();
  };

  /**
   * The store key of a limit for this request: a key of only `{agent}`/`{user}`
   * needs no template variables (identityKey); any other renders from `vars`
   * (made by the caller when a site needs them: SiteLimits.needsVars).
   */
  function keyOf(limit: CompiledRateLimit | CompiledBudget, state: RequestState, vars: TemplateVars | undefined): string {
    const identity = limit.identityKey;
    if (identity) {
      const p = state.principal;
      return identity(p ? p.agent : null, p ? p.user : null);
    }
    return limit.storeKey(limit.render(vars as TemplateVars));
  }

  /** A budget's reservation for this request: its key and amount (a bad amount or key: 400, nothing reserved). */
  const reservationOf = (b: CompiledBudget, state: RequestState, vars: TemplateVars | undefined) =>
    new Reservation(b, keyOf(b, state, vars), 'constant' in b.amount ? b.amount.constant : resolveAmount(b.amount, vars as TemplateVars));

  /** The rendered key, for traces (`warden explain`, limitTrace) only. */
  const renderedOf = (limit: CompiledRateLimit | CompiledBudget, state: RequestState) => limit.render(templateVars(state));

  // ------------------------------------------------------------ rate limits

  function rateLimited(rate: CompiledRateLimit, r: RateLimitResult): WardenError {
    const retry = wholeSeconds(r.retryAfterMs);
    const policy = rate.policyField;
    // The effective window is the wait (the draft: Retry-After not earlier than its end).
    const field = rate.field(0, retry * 1000);
    return new WardenError(
      'rate_limited',
      `rate limit exceeded: ${rate.requests} requests per ${formatWindow(rate.perMs)} on ${rate.site.policy}; retry in ${retry}s`,
      {
        headers: { 'Retry-After': String(retry), 'RateLimit-Policy': policy, RateLimit: field },
        extra: { policy: rate.site.policy, retry_after: retry, ratelimit_policy: policy, ratelimit: field },
        reason: 'rate_limited',
      },
    );
  }

  /** A rate decision: decided now where the store can (no promise), else asked. Throws or rejects with 429. */
  function checkRate(state: RequestState, rate: CompiledRateLimit, key: string): Promise<void> | void {
    if (!dryRun) {
      const now = store.rateLimitNow?.(key, rate.spec);
      if (now) return rateDecided(state, rate, now);
    }
    return store.rateLimit(key, rate.spec, dryRun ? PEEK : undefined).then((r) => rateDecided(state, rate, r));
  }

  function rateDecided(state: RequestState, rate: CompiledRateLimit, r: RateLimitResult): void {
    if (dryRun || state.limitTrace) {
      (state.limitTrace ??= []).push({
        kind: 'rate_limit',
        policy: rate.site.policy,
        key: renderedOf(rate, state),
        outcome: r.allowed ? 'allowed' : 'limited',
        detail: {
          requests: rate.requests,
          per: formatWindow(rate.perMs),
          remaining: r.remaining,
          ...(r.allowed ? {} : { retry_after_seconds: wholeSeconds(r.retryAfterMs) }),
        },
      });
    }
    if (!r.allowed) {
      metrics.inc('warden_rate_limited_total', rate.site.labels);
      throw rateLimited(rate, r);
    }
    // Let through: the agent's answer says where it stands (added after any fields of the upstream's own).
    if (dryRun) return;
    const field = rate.field(r.remaining, r.resetAfterMs);
    const extra = state.responseHeaders;
    if (extra === undefined) state.responseHeaders = ['RateLimit-Policy', rate.policyField, 'RateLimit', field];
    else extra.push('RateLimit-Policy', rate.policyField, 'RateLimit', field);
  }

  /** One rate decision of the stage: a refusal throws now while nothing waits, else joins what waits. */
  function rateStep(state: RequestState, rate: CompiledRateLimit, key: string, pending: Array<Promise<void>> | undefined): Array<Promise<void>> | undefined {
    try {
      const p = checkRate(state, rate, key);
      if (p) (pending ??= []).push(p);
    } catch (err) {
      if (!pending) throw err;
      pending.push(Promise.reject(err as Error));
    }
    return pending;
  }

  // ------------------------------------------------------------ budgets

  const remainingOf = (b: CompiledBudget, st: BudgetState) => Math.max(0, round(b.max - st.spent - st.held));

  function budgetExceeded(b: CompiledBudget, amount: number, st: BudgetState): WardenError {
    const remaining = remainingOf(b, st);
    return new WardenError(
      'budget_exceeded',
      `budget exceeded on ${b.site.policy}: this request spends ${amount}, ${remaining} of ${b.max} per ${formatWindow(b.perMs)} remain`,
      {
        extra: {
          budget: b.site.policy,
          amount,
          max: b.max,
          spent: st.spent,
          held: st.held,
          remaining,
          window_seconds: wholeSeconds(b.perMs),
          ...(st.nextReleaseMs > 0 ? { next_release_seconds: wholeSeconds(st.nextReleaseMs) } : {}),
        },
        reason: 'budget_exceeded',
      },
    );
  }

  /** The approval message: what the approver must know to decide (numbers only, no agent text). */
  function overMessage(b: CompiledBudget, amount: number, st: BudgetState): string {
    const name = b.site.policy.replace(/[{}]/g, '');
    return (
      `Over budget ${name}: this request spends ${amount}. ` +
      `Spent ${st.spent}${st.held > 0 ? ` (+${st.held} in flight)` : ''} of ${b.max} in the last ${formatWindow(b.perMs)}; remaining ${remainingOf(b, st)}. ` +
      'Approving lets this request through and counts it against the budget.'
    );
  }

  /** Commit or release one reservation: settled now where the store can (no promise), else asked. */
  function settle(r: Reservation, commit: boolean): void {
    const site = r.budget.site;
    const c = countersOf(site);
    try {
      if (
        r.lot !== undefined
          ? store.budgetSettleLocal?.(r, commit, c.watcher)
          : store.budgetSettleNow?.(r.key, r.budget.perMs, r.id, r.amount, commit, c.watcher)
      ) {
        counted(c, site, commit, r.amount);
        return;
      }
      // A reservation the store held locally but cannot settle now (closed): asked by id like any other.
      if (r.lot !== undefined && store.budgetSettleNow?.(r.key, r.budget.perMs, r.id, r.amount, commit, c.watcher)) {
        counted(c, site, commit, r.amount);
        return;
      }
    } catch (err) {
      settleFailed(site, commit, err);
      return;
    }
    const op = commit ? store.budgetCommit(r.key, r.budget.perMs, r.id, r.amount) : store.budgetRelease(r.key, r.id, r.amount);
    track(
      op.then(
        () => counted(c, site, commit, r.amount),
        (err: unknown) => settleFailed(site, commit, err),
      ),
    );
  }

  /**
   * The request ended: every reservation made is committed (forwarded, answered below 500) or released, once.
   * An agent that closed its connection after the request went upstream (before or while the answer came)
   * spends too: the upstream may have acted on it, and releasing would let an agent that always hangs up
   * spend without limit. Only a cut before forwarding releases (the pipeline leaves upstreamStartedAt
   * unset for a request whose agent had left: the proxy sends it nowhere).
   */
  function settleRun(run: BudgetRun, forwarded: boolean, status: number | undefined): void {
    if (run.settled) return;
    run.settled = true;
    const state = run.state;
    const commit = forwarded && status !== undefined ? status < 500 : state.cut === 'agent' && state.upstreamStartedAt !== undefined;
    if (run.first.reserved) settle(run.first, commit);
    if (run.second?.reserved) settle(run.second, commit);
    if (run.approved) for (const r of run.approved) settle(r, commit);
  }

  /** Reserve the run's reservations in order: synchronous while the store decides now, then one promise per store call. */
  function reserveFrom(run: BudgetRun, r: Reservation | undefined): Promise<void> | void {
    for (; r !== undefined; r = r === run.first ? run.second : undefined) {
      if (!dryRun) {
        const now = store.budgetReserveLocal ? store.budgetReserveLocal(r.key, r.budget.spec, r) : store.budgetReserveNow?.(r.key, r.budget.spec, r);
        if (now) {
          reserved(run, r, now);
          continue;
        }
      }
      const mine = r;
      return store.budgetReserve(r.key, r.budget.spec, r, dryRun ? PEEK : undefined).then((st) => {
        reserved(run, mine, st);
        return reserveFrom(run, mine === run.first ? run.second : undefined);
      });
    }
    escalate(run);
  }

  /** One reservation's answer: kept for settling, traced, and over budget denied (throws) or noted for approval. */
  function reserved(run: BudgetRun, r: Reservation, st: BudgetState & { reserved: boolean }): void {
    const b = r.budget;
    if (st.reserved && !dryRun) r.reserved = true;
    const state = run.state;
    // On a shadow route an escalation would be forwarded as a mere would-hold (the approve stage
    // holds nothing there), i.e. no budget at all: it is refused as over: deny is.
    const over = b.over === 'approve' && !(state.routeIndex !== undefined && shadow[state.routeIndex]) ? 'approve' : 'deny';
    if (dryRun || state.limitTrace) {
      (state.limitTrace ??= []).push({
        kind: 'budget',
        policy: b.site.policy,
        key: renderedOf(b, state),
        outcome: st.reserved ? 'reserved' : over === 'approve' ? 'over_approve' : 'over_deny',
        detail: { amount: r.amount, max: b.max, per: formatWindow(b.perMs), spent: st.spent, held: st.held, remaining: remainingOf(b, st) },
      });
    }
    if (st.reserved) return;
    metrics.inc('warden_budget_over_total', labelsOf(b.site, over));
    // The pipeline's onSettled releases what was reserved so far.
    if (over === 'deny') throw budgetExceeded(b, r.amount, st);
    (run.overs ??= []).push({ r, st });
  }

  /** Over budget, escalate: the approvals service holds the exact request. */
  function escalate(run: BudgetRun): void {
    const overs = run.overs;
    if (!overs) return;
    // The budget's rule comes first so its figures are what the approver reads.
    const first = overs[0];
    const b = first.r.budget;
    // A grant given on this hold binds what the approver read in its figures: each budget's key and amount over it.
    run.state.policy.approval.unshift({
      rule: { message: overMessage(b, first.r.amount, first.st) },
      source: `${b.site.at}.budget`,
      bound: { names: ['budget amount'], values: overs.map((o) => [o.r.budget.site.at, o.r.key, o.r.amount]) },
    });
    run.state.afterApprove = async () => {
      // Approved: the spend counts too (reserved past max, committed like any other).
      for (const o of overs) {
        const forced = new Reservation(o.r.budget, o.r.key, o.r.amount, true);
        await store.budgetReserve(forced.key, forced.budget.spec, forced);
        forced.reserved = true;
        (run.approved ??= []).push(forced);
      }
    };
  }

  return {
    routeHasLimits: (route) => compiled.route(route) !== undefined || compiled.routeHasToolLimits(route),

    applies(state) {
      const route = state.route;
      if (!route) return false;
      return compiled.route(route.name) !== undefined || (state.mcp?.tool !== undefined && compiled.tool(route.name, state.mcp.tool) !== undefined);
    },

    stage(state) {
      const route = state.route;
      if (!route) return;
      const own = compiled.route(route.name);
      const toolName = state.mcp?.tool;
      const tool = toolName === undefined ? undefined : compiled.tool(route.name, toolName);
      if (!own && !tool) return;
      // Template variables only where a key or an amount needs them.
      const vars = own?.needsVars || tool?.needsVars ? templateVars(state) : undefined;
      // Every budget's key and amount first: a 400 consumes and reserves nothing.
      let first = own?.budget && reservationOf(own.budget, state, vars);
      let second: Reservation | undefined;
      if (tool?.budget) {
        if (first) second = reservationOf(tool.budget, state, vars);
        else first = reservationOf(tool.budget, state, vars);
      }
      // Rate limits, then reservations. Decided now where the store can (the warm
      // path creates no promise); what must wait is asked at once (one round trip
      // of waiting, not two). A reservation made for a request a rate limit then
      // refuses is released by onSettled like any other refused request's; 429
      // wins over 403.
      let pending: Array<Promise<void>> | undefined;
      if (own?.rate) pending = rateStep(state, own.rate, keyOf(own.rate, state, vars), pending);
      if (tool?.rate) pending = rateStep(state, tool.rate, keyOf(tool.rate, state, vars), pending);
      if (first === undefined) return pending && Promise.all(pending).then(noop);
      const run: BudgetRun = { state, first, second, settled: false };
      if (!dryRun) {
        const prior = state.onSettled;
        state.onSettled = prior
          ? (forwarded, status) => {
              prior(forwarded, status);
              settleRun(run, forwarded, status);
            }
          : (forwarded, status) => settleRun(run, forwarded, status);
      }
      let budgets: Promise<void> | void;
      try {
        budgets = reserveFrom(run, first);
      } catch (err) {
        if (!pending) throw err;
        budgets = Promise.reject(err as Error);
      }
      if (!pending) return budgets;
      if (budgets) pending.push(budgets);
      return Promise.allSettled(pending).then(throwFirstRejection);
    },
    async budgetsFor(caller) {
      const vars: TemplateVars = { agent: caller.agent, user: caller.user, claims: caller.claims };
      const out: BudgetView[] = [];
      for (const b of compiled.budgets()) {
        const view: BudgetView = {
          route: b.site.route,
          ...(b.site.tool !== undefined ? { tool: b.site.tool } : {}),
          key: null,
          max: b.max,
          window_seconds: wholeSeconds(b.perMs),
          over: b.over,
        };
        // Only keys made of who is asking can be shown; the rest vary per request.
        if (b.key.refs.some((r) => !/^(agent|user|claims)(\.|$)/.test(r))) {
          out.push({ ...view, per_request: true });
          continue;
        }
        // A person (not an agent) has one figure per agent: none to show for keys naming {agent}.
        if (caller.agent === null && b.key.refs.includes('agent')) {
          out.push({ ...view, per_agent: true });
          continue;
        }
        let rendered: string;
        try {
          rendered = b.render(vars);
        } catch {
          out.push({ ...view, per_request: true });
          continue;
        }
        const st = await store.budgetRead(b.storeKey(rendered), b.perMs);
        out.push({
          ...view,
          key: rendered,
          spent: st.spent,
          held: st.held,
          remaining: remainingOf(b, st),
          ...(st.nextReleaseMs > 0 ? { next_release_seconds: wholeSeconds(st.nextReleaseMs) } : {}),
        });
      }
      return out;
    },

    async close() {
      await Promise.allSettled([...background]);
    },
  };
}
