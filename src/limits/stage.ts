/**
 * The `limits` stage: rate limits and budget reservations (after authorize,
 * before approve), `GET /.warden/budgets`, and the small stage after approve
 * that counts an approved over-budget spend.
 */

import { Hono, type Context } from 'hono';
import { WardenError } from '../core/errors.js';
import { createOnError } from '../http/problem.js';
import { bearerToken } from '../identity/bearer.js';
import type { Principal } from '../core/principal.js';
import type { Stage } from '../pipeline/stage.js';
import type { Runtime } from '../core/runtime.js';
import { createLimitsService, type LimitsService } from './service.js';

/**
 * Who asks: an agent's bearer token (on its user's behalf), or else the person
 * signed in to this browser. A request that sends Authorization is judged by
 * the token alone, never by a cookie riding along.
 */
async function callerOf(rt: Runtime, c: Context): Promise<{ agent: string | null; user: string | null; claims: Record<string, unknown> }> {
  const header = c.req.header('authorization');
  if (header === undefined) {
    const person = await rt.sessions.current(c);
    if (person) return { agent: null, user: person.sub, claims: { ...person.claims } };
    throw new WardenError('unauthenticated', 'a bearer token or a signed-in session is required', { reason: 'missing_token' });
  }
  const token = bearerToken(header);
  if (token === null) throw new WardenError('unauthenticated', 'the Authorization header must be "Bearer <token>"', { reason: 'bad_authorization_header' });
  const principal: Principal = await rt.authenticator.authenticate(token);
  return { agent: principal.agent, user: principal.user, claims: principal.claims as Record<string, unknown> };
}

/** `GET /budgets`: the caller's budgets (the agent's token on its user's behalf, or the signed-in person). */
export function createBudgetRoutes(rt: Runtime, limits: LimitsService): Hono {
  const app = new Hono();
  app.onError(createOnError(rt.logger, 'budgets endpoint'));
  app.get('/budgets', async (c) => {
    const caller = await callerOf(rt, c);
    const budgets = await limits.budgetsFor(caller);
    return c.json({ agent: caller.agent, user: caller.user, budgets }, 200, { 'cache-control': 'no-store' });
  });
  return app;
}

/** Build the stage for one config generation; `dryRun` (`warden explain`) peeks instead of consuming. */
export function createLimitsStage(rt: Runtime, options: { dryRun?: boolean } = {}): Stage & { service: LimitsService } {
  const limits = createLimitsService(rt, { dryRun: options.dryRun });
  return {
    service: limits,
    name: 'limits',
    appliesTo: (route) => limits.routeHasLimits(route.config.name),
    // No promise for requests without limits (stage answers undefined at once): the warm chain stays synchronous.
    run: (state) => limits.stage(state),
    routes: createBudgetRoutes(rt, limits),
    close: () => limits.close(),
  };
}

/** After approve: an over-budget spend a human approved is counted (set per request by the limits stage). */
export const afterApproveStage: Stage = {
  name: 'after-approve',
  effects: true,
  appliesTo: (route) => Boolean(route.config.budget || Object.values(route.config.mcp?.tools ?? {}).some((t) => t.budget)),
  run: (state) => state.afterApprove?.(),
};
