/**
 * The stage runner: a route's stages in order, synchronous for as long as
 * every stage is (a warm request runs without a promise), with or without a
 * span per stage. pipeline.ts calls it; see DESIGN.md in this folder.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestTrace } from '../observability/tracing.js';
import type { RequestState } from './context.js';
import type { Stage } from './stage.js';

/**
 * Run `plan` from stage `i`. A stage that finishes from a warm cache returns
 * no promise, so the chain stays synchronous (and this returns undefined)
 * until a stage really waits on I/O; the rest of the plan continues when that
 * promise settles. Throws (synchronously) or rejects with the denying error.
 */
export function runStages(plan: readonly Stage[], i: number, state: RequestState, req?: IncomingMessage, res?: ServerResponse): Promise<void> | void {
  for (; i < plan.length; i++) {
    const pending = plan[i].run(state, req, res);
    if (pending) {
      const next = i + 1;
      return pending.then(() => runStages(plan, next, state, req, res));
    }
  }
}

/**
 * `runStages` with a span per stage (tracing on, request sampled). Same
 * contract: synchronous until a stage returns a promise.
 */
export function runTracedStages(
  plan: readonly Stage[],
  i: number,
  state: RequestState,
  trace: RequestTrace,
  req?: IncomingMessage,
  res?: ServerResponse,
): Promise<void> | void {
  for (; i < plan.length; i++) {
    const span = trace.stage(plan[i].name);
    let pending: Promise<void> | void;
    try {
      pending = plan[i].run(state, req, res);
    } catch (err) {
      span.fail(err);
      throw err;
    }
    if (pending) {
      const next = i + 1;
      return pending.then(
        () => {
          span.end();
          return runTracedStages(plan, next, state, trace, req, res);
        },
        (err: unknown) => {
          span.fail(err);
          throw err;
        },
      );
    }
    span.end();
  }
}
