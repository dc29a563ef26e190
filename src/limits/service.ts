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
import type { BudgetState, RateLimitResult } from '../store/store.js';
import {
  compileLimits,
  renderKey,
  resolveAmount,
  storeKeyCache,
  type CompiledBudget,
  type CompiledLimits,
  type CompiledRateLimit,
  type LimitSite,
  type SiteLimits,
} from './compile.js';
import { rateLimitField, wholeSeconds } from './headers.js';

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
  /** The stage: rate limits, then budget reservations (peek only when `dryRun`). */
  stage(state: RequestState): Promise<void>;
  /** The budgets of a caller: an agent acting for a user, or a signed-in person (agent null). */
  budgetsFor(caller: { agent: string | null; user: string | null; claims: Record<string, unknown> }): Promise<BudgetView[]>;
  close(): Promise<void>;
}

interface Reservation {
  budget: CompiledBudget;
  key: string;
  id: string;
  amount: number;
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

  // Store keys hash the rendered key: remembered per site for the keys seen recently.
  const keyCaches = new Map<string, (rendered: string) => string>();
  const keyFor = (kind: 'rate' | 'budget', where: LimitSite, rendered: string) => {
    const id = `${kind}\n${where.policy}`;
    let cache = keyCaches.get(id);
    if (!cache) keyCaches.set(id, (cache = storeKeyCache(kind, where)));
    return cache(rendered);
  };

  const labels = new Map<string, Readonly<Record<string, string>>>();
  const labelsOf = (site: LimitSite, extra = '') => {
    const k = `${site.policy}\n${extra}`;
    let l = labels.get(k);
    if (!l) {
      l = Object.freeze({ route: site.route, tool: site.tool ?? '', ...(extra ? { action: extra } : {}) });
      labels.set(k, l);
    }
    return l;
  };

  function sitesOf(state: RequestState): SiteLimits[] {
    const route = state.route;
    if (!route) return [];
    const out: SiteLimits[] = [];
    const own = compiled.route(route.name);
    if (own) out.push(own);
    const tool = state.mcp?.tool;
    if (tool !== undefined) {
      const t = compiled.tool(route.name, tool);
      if (t) out.push(t);
    }
    return out;
  }

  // ------------------------------------------------------------ rate limits

  function rateLimited(rate: CompiledRateLimit, r: RateLimitResult): WardenError {
    const retry = wholeSeconds(r.retryAfterMs);
    const policy = rate.policyField;
    // The effective window is the wait (the draft: Retry-After not earlier than its end).
    const field = rateLimitField(rate.site.policy, 0, retry * 1000);
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

  async function checkRate(state: RequestState, rate: CompiledRateLimit, vars: TemplateVars): Promise<void> {
    const rendered = renderKey(rate.key, vars);
    const r = await store.rateLimit(keyFor('rate', rate.site, rendered), rate.spec, dryRun ? { peek: true } : undefined);
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
      metrics.inc('warden_rate_limited_total', labelsOf(rate.site));
      throw rateLimited(rate, r);
    }
    // Let through: the agent's answer says where it stands (added after any fields of the upstream's own).
    if (!dryRun) {
      (state.responseHeaders ??= []).push('RateLimit-Policy', rate.policyField, 'RateLimit', rateLimitField(rate.site.policy, r.remaining, r.resetAfterMs));
    }
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

  function settleAll(reservations: Reservation[], commit: boolean): void {
    for (const r of reservations) {
      const labels = labelsOf(r.budget.site);
      const op = commit ? store.budgetCommit(r.key, r.budget.perMs, r.id, r.amount) : store.budgetRelease(r.key, r.id, r.amount);
      track(
        op.then(
          () => {
            if (commit) metrics.inc('warden_budget_spent_total', labels, r.amount);
            else metrics.inc('warden_budget_released_total', labels);
          },
          (err: unknown) => {
            // The reservation lapses with its lease: a release is not lost for long; a
            // commit that fails leaves the spend uncounted after the lease, so say so.
            metrics.inc('warden_budget_settle_failures_total', labels);
            log.error({ err, budget: r.budget.site.policy, commit }, 'could not settle a budget reservation');
          },
        ),
      );
    }
  }

  interface Plan {
    budget: CompiledBudget;
    rendered: string;
    amount: number;
  }

  /** Every budget's key and amount, checked before anything is counted (a 400 consumes and reserves nothing). */
  function planBudgets(sites: SiteLimits[], vars: TemplateVars): Plan[] {
    return sites
      .flatMap((s) => (s.budget ? [s.budget] : []))
      .map((budget) => ({ budget, rendered: renderKey(budget.key, vars), amount: resolveAmount(budget.amount, vars) }));
  }

  async function reserveBudgets(state: RequestState, plans: Plan[]): Promise<void> {
    const reservations: Reservation[] = [];
    const overs: Array<{ budget: CompiledBudget; key: string; amount: number; st: BudgetState }> = [];
    let settled = false;
    if (!dryRun) {
      const prior = state.onSettled;
      state.onSettled = (forwarded, status) => {
        prior?.(forwarded, status);
        if (settled) return;
        settled = true;
        settleAll(reservations, forwarded && status !== undefined && status < 500);
      };
    }
    for (const plan of plans) {
      const b = plan.budget;
      const key = keyFor('budget', b.site, plan.rendered);
      const id = newId();
      const r = await store.budgetReserve(
        key,
        { max: b.max, windowMs: b.perMs },
        { id, amount: plan.amount, leaseMs: b.leaseMs },
        dryRun ? { peek: true } : undefined,
      );
      if (r.reserved && !dryRun) reservations.push({ budget: b, key, id, amount: plan.amount });
      const outcome = r.reserved ? 'reserved' : b.over === 'approve' ? 'over_approve' : 'over_deny';
      if (dryRun || state.limitTrace) {
        (state.limitTrace ??= []).push({
          kind: 'budget',
          policy: b.site.policy,
          key: plan.rendered,
          outcome,
          detail: { amount: plan.amount, max: b.max, per: formatWindow(b.perMs), spent: r.spent, held: r.held, remaining: remainingOf(b, r) },
        });
      }
      if (r.reserved) continue;
      metrics.inc('warden_budget_over_total', labelsOf(b.site, b.over));
      // The pipeline's onSettled releases what was reserved so far.
      if (b.over === 'deny') throw budgetExceeded(b, plan.amount, r);
      overs.push({ budget: b, key, amount: plan.amount, st: r });
    }
    if (overs.length === 0) return;
    // Over budget, escalate: the approvals service holds the exact request; the
    // budget's rule comes first so its figures are what the approver reads.
    const first = overs[0];
    state.policy.approval.unshift({ rule: { message: overMessage(first.budget, first.amount, first.st) }, source: `${first.budget.site.at}.budget` });
    state.afterApprove = async () => {
      // Approved: the spend counts too (reserved past max, committed like any other).
      for (const o of overs) {
        const id = newId();
        await store.budgetReserve(o.key, { max: o.budget.max, windowMs: o.budget.perMs }, { id, amount: o.amount, leaseMs: o.budget.leaseMs, force: true });
        reservations.push({ budget: o.budget, key: o.key, id, amount: o.amount });
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

    async stage(state) {
      const sites = sitesOf(state);
      if (sites.length === 0) return;
      const vars = templateVars(state);
      const plans = planBudgets(sites, vars);
      const rates = sites.flatMap((s) => (s.rate ? [checkRate(state, s.rate, vars)] : []));
      if (plans.length === 0) {
        await Promise.all(rates);
        return;
      }
      // Rate limits and reservations are asked at once (one round trip of waiting,
      // not two). A reservation made for a request a rate limit then refuses is
      // released by onSettled like any other refused request's; 429 wins over 403.
      const outcomes = await Promise.allSettled([...rates, reserveBudgets(state, plans)]);
      for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
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
          rendered = renderKey(b.key, vars);
        } catch {
          out.push({ ...view, per_request: true });
          continue;
        }
        const st = await store.budgetRead(keyFor('budget', b.site, rendered), b.perMs);
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
