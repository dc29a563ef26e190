/**
 * Shadow mode (`mode: shadow` on a route, or the top-level default): the
 * authorize and approve stages decide as usual, but a would-deny or would-hold
 * is recorded on the request (`state.shadow`) instead of enforced, and the
 * request goes on as if allowed; an MCP tools/list answer is forwarded
 * unfiltered and the tools enforce mode would hide are recorded (would_filter).
 * Authentication, limits and credentials are not shadowed. `gateway/stages.ts` wraps the two stages; the audit step
 * counts `warden_shadow_decisions_total` and the decision log records it.
 */

import type { Config } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import type { RequestState } from './context.js';
import type { Stage } from './stage.js';

/** What enforce mode would have done with a shadow request. */
export type { ShadowOutcome } from './context.js';

/** A stage that knows how to decide without acting (approve: would it hold?). */
export interface ShadowCapableStage extends Stage {
  shadowRun?(state: RequestState): Promise<void> | void;
}

/** Per route index: true when the route runs in shadow mode. */
export function shadowRoutes(config: Pick<Config, 'routes' | 'mode'>): boolean[] {
  return config.routes.map((r) => (r.mode ?? config.mode) === 'shadow');
}

/** Record on a shadow request what enforce mode would have answered (the first refusal wins). */
export function recordShadowRefusal(state: RequestState, err: unknown): void {
  state.shadowMode = true;
  if (state.shadow) return;
  if (err instanceof WardenError)
    state.shadow = {
      outcome: err.status >= 500 ? 'would_error' : err.code === 'approval_pending' ? 'would_hold' : 'would_deny',
      code: err.code,
      reason: err.reason,
    };
  else state.shadow = { outcome: 'would_error', reason: 'internal' };
}

/**
 * Record on a shadow request the tools an MCP `tools/list` answer listed that
 * enforce mode would have hidden (`verdicts`: tool name → `shown` or why not),
 * as outcome `would_filter`. A refusal recorded earlier wins (enforce mode
 * would not have forwarded the request at all); several lists in one answer
 * add up.
 */
export function recordShadowFilter(state: RequestState, listed: readonly string[], verdicts: ReadonlyMap<string, string>): void {
  state.shadowMode = true;
  // In the order the upstream listed them.
  const hidden = listed.filter((tool) => verdicts.get(tool) !== 'shown');
  if (hidden.length === 0) return;
  if (!state.shadow) state.shadow = { outcome: 'would_filter', tools: hidden };
  else if (state.shadow.outcome === 'would_filter') state.shadow.tools = [...(state.shadow.tools ?? []), ...hidden];
}

/** The stage, with its refusals recorded instead of enforced on shadow routes. */
export function shadowed<S extends ShadowCapableStage>(stage: S, shadow: readonly boolean[]): S {
  if (!shadow.includes(true)) return stage;
  const record = recordShadowRefusal;
  return {
    ...stage,
    run(state, req, res) {
      if (state.routeIndex === undefined || !shadow[state.routeIndex]) return stage.run(state, req, res);
      state.shadowMode = true;
      try {
        const pending = stage.shadowRun ? stage.shadowRun(state) : stage.run(state, req, res);
        if (pending) return pending.catch((err: unknown) => record(state, err));
      } catch (err) {
        record(state, err);
      }
    },
  };
}
