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
import type { BudgetState, RateLimitResult, SettleWatcher } from '../store/store.js';
import { compileLimits, resolveAmount, type CompiledBudget, type CompiledLimits, type CompiledRateLimit, type LimitSite, type SiteLimits } from './compile.js';
import { wholeSeconds } from './headers.js';

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

interface Reservation {
  readonly budget: CompiledBudget;
  readonly key: string;
  readonly id: string;
  readonly amount: number;
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

/** One request's budget reservations: what to settle when the request ends, and what went over. */
interface BudgetRun {
  readonly state: RequestState;
  readonly reservations: Reservation[];
  overs?: Array<{ budget: CompiledBudget; key: string; amount: number; st: BudgetState }>;
}

interface Plan {
  budget: CompiledBudget;
  rendered: string;
  amount: number;
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
  const counted = (site: LimitSite, commit: boolean, amount: number) => {
    const c = countersOf(site);
    if (commit) (c.spent ??= metrics.counter('warden_budget_spent_total', site.labels)).inc(amount);
    else (c.released ??= metrics.counter('warden_budget_released_total', site.labels)).inc();
  };

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
  function checkRate(state: RequestState, rate: CompiledRateLimit, vars: TemplateVars): Promise<void> | void {
    const rendered = rate.render(vars);
    const key = rate.storeKey(rendered);
    if (!dryRun) {
      const now = store.rateLimitNow?.(key, rate.spec);
      if (now) return rateDecided(state, rate, rendered, now);
    }
    return store.rateLimit(key, rate.spec, dryRun ? PEEK : undefined).then((r) => rateDecided(state, rate, rendered, r));
  }

  function rateDecided(state: RequestState, rate: CompiledRateLimit, rendered: string, r: RateLimitResult): void {
    if (dryRun || state.limitTrace) {
      (state.limitTrace ??= []).push({
        kind: 'rate_limit',
        policy: rate.site.policy,
        key: rendered,
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
    if (!dryRun) (state.responseHeaders ??= []).push('RateLimit-Policy', rate.policyField, 'RateLimit', rate.field(r.remaining, r.resetAfterMs));
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

  // Reservation ids: unique per process (random prefix) and per reservation (counter); no entropy drawn per request.
  const idPrefix = randomBytes(9).toString('base64url');
  let idCounter = 0;
  const newId = () => `${idPrefix}${(idCounter++).toString(36)}`;

  /** Commit or release one reservation: settled now where the store can (no promise), else asked. */
  function settle(r: Reservation, commit: boolean): void {
    const site = r.budget.site;
    try {
      if (store.budgetSettleNow?.(r.key, r.budget.perMs, r.id, r.amount, commit, countersOf(site).watcher)) {
        counted(site, commit, r.amount);
        return;
      }
    } catch (err) {
      settleFailed(site, commit, err);
      return;
    }
    const op = commit ? store.budgetCommit(r.key, r.budget.perMs, r.id, r.amount) : store.budgetRelease(r.key, r.id, r.amount);
    track(
      op.then(
        () => counted(site, commit, r.amount),
        (err: unknown) => settleFailed(site, commit, err),
      ),
    );
  }

  /** Every budget's key and amount, checked before anything is counted (a 400 consumes and reserves nothing). */
  function planBudgets(own: SiteLimits | undefined, tool: SiteLimits | undefined, vars: TemplateVars): Plan[] | undefined {
    let plans: Plan[] | undefined;
    for (const budget of [own?.budget, tool?.budget]) {
      if (budget) (plans ??= []).push({ budget, rendered: budget.render(vars), amount: resolveAmount(budget.amount, vars) });
    }
    return plans;
  }

  function reserveBudgets(state: RequestState, plans: Plan[]): Promise<void> | void {
    const run: BudgetRun = { state, reservations: [] };
    if (!dryRun) {
      const prior = state.onSettled;
      let settled = false;
      state.onSettled = (forwarded, status) => {
        prior?.(forwarded, status);
        if (settled) return;
        settled = true;
        const commit = forwarded && status !== undefined && status < 500;
        for (const r of run.reservations) settle(r, commit);
      };
    }
    return reserveFrom(run, plans, 0);
  }

  /** Reserve plans[i..] in order: synchronous while the store decides now, then one promise per store call. */
  function reserveFrom(run: BudgetRun, plans: Plan[], i: number): Promise<void> | void {
    for (; i < plans.length; i++) {
      const plan = plans[i];
      const b = plan.budget;
      const key = b.storeKey(plan.rendered);
      const reservation = { id: newId(), amount: plan.amount, leaseMs: b.leaseMs };
      if (!dryRun) {
        const now = store.budgetReserveNow?.(key, b.spec, reservation);
        if (now) {
          reserved(run, plan, key, reservation.id, now);
          continue;
        }
      }
      const next = i + 1;
      return store.budgetReserve(key, b.spec, reservation, dryRun ? PEEK : undefined).then((r) => {
        reserved(run, plan, key, reservation.id, r);
        return reserveFrom(run, plans, next);
      });
    }
    escalate(run);
  }

  /** One reservation's answer: kept for settling, traced, and over budget denied (throws) or noted for approval. */
  function reserved(run: BudgetRun, plan: Plan, key: string, id: string, r: BudgetState & { reserved: boolean }): void {
    const b = plan.budget;
    if (r.reserved && !dryRun) run.reservations.push({ budget: b, key, id, amount: plan.amount });
    const state = run.state;
    if (dryRun || state.limitTrace) {
      (state.limitTrace ??= []).push({
        kind: 'budget',
        policy: b.site.policy,
        key: plan.rendered,
        outcome: r.reserved ? 'reserved' : b.over === 'approve' ? 'over_approve' : 'over_deny',
        detail: { amount: plan.amount, max: b.max, per: formatWindow(b.perMs), spent: r.spent, held: r.held, remaining: remainingOf(b, r) },
      });
    }
    if (r.reserved) return;
    metrics.inc('warden_budget_over_total', labelsOf(b.site, b.over));
    // The pipeline's onSettled releases what was reserved so far.
    if (b.over === 'deny') throw budgetExceeded(b, plan.amount, r);
    (run.overs ??= []).push({ budget: b, key, amount: plan.amount, st: r });
  }

  /** Over budget, escalate: the approvals service holds the exact request. */
  function escalate(run: BudgetRun): void {
    const overs = run.overs;
    if (!overs) return;
    // The budget's rule comes first so its figures are what the approver reads.
    const first = overs[0];
    run.state.policy.approval.unshift({ rule: { message: overMessage(first.budget, first.amount, first.st) }, source: `${first.budget.site.at}.budget` });
    run.state.afterApprove = async () => {
      // Approved: the spend counts too (reserved past max, committed like any other).
      for (const o of overs) {
        const id = newId();
        await store.budgetReserve(o.key, o.budget.spec, { id, amount: o.amount, leaseMs: o.budget.leaseMs, force: true });
        run.reservations.push({ budget: o.budget, key: o.key, id, amount: o.amount });
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
      const tool = state.mcp?.tool === undefined ? undefined : compiled.tool(route.name, state.mcp.tool);
      if (!own && !tool) return;
      const vars = templateVars(state);
      const plans = planBudgets(own, tool, vars);
      // Rate limits, then reservations. Decided now where the store can (the warm
      // path creates no promise); what must wait is asked at once (one round trip
      // of waiting, not two). A reservation made for a request a rate limit then
      // refuses is released by onSettled like any other refused request's; 429
      // wins over 403.
      let pending: Array<Promise<void>> | undefined;
      for (const rate of [own?.rate, tool?.rate]) {
        if (!rate) continue;
        try {
          const p = checkRate(state, rate, vars);
          if (p) (pending ??= []).push(p);
        } catch (err) {
          if (!pending) throw err;
          pending.push(Promise.reject(err as Error));
        }
      }
      if (!plans) return pending && Promise.all(pending).then(noop);
      let budgets: Promise<void> | void;
      try {
        budgets = reserveBudgets(state, plans);
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
