/**
 * The `assertion` stage: after credentials, add the signed identity assertion
 * (Warden-Identity, or the route's header) for routes and MCP tools that ask
 * for it; and publish the assertion keys for `/.warden/jwks.json`.
 */

import { WardenError } from '../../core/errors.js';
import type { Runtime } from '../../core/runtime.js';
import type { RouteConfig } from '../../config/schema.js';
import type { RequestState } from '../../pipeline/context.js';
import type { Stage } from '../../pipeline/stage.js';
import type { AllowedCheck } from './claims.js';
import { createAssertionService, type AssertionService } from './service.js';

/** The checks that allowed this request, for the `authz` claim. */
function allowedChecks(state: RequestState): AllowedCheck[] {
  const out: AllowedCheck[] = [];
  for (const c of state.checks) if (c.allowed === true) out.push({ user: c.user, relation: c.relation, object: c.object });
  return out;
}

/** True when the route (or one of its tools) asks for the `authz` claim: its checks must be recorded. */
export function wantsAuthzClaim(route: RouteConfig): boolean {
  const own = route.assertion;
  if (typeof own === 'object' && own.authz) return true;
  return Object.values(route.mcp?.tools ?? {}).some((t) => typeof t.assertion === 'object' && t.assertion.authz);
}

/** Add the assertion for this request (no-op on routes without `assertion:`). Synchronous: one signature at most. */
export function runAssertion(service: AssertionService, state: RequestState): void {
  if (state.routeIndex === undefined) return;
  // Every assertion header of the route is Warden's, also on a call that carries none.
  state.assertionHeaders = service.plan.headersOf(state.routeIndex);
  const settings = service.plan.settingsFor(state.routeIndex, state.mcp?.tool);
  if (!settings) return;
  const principal = state.principal;
  // Fail closed: a route that promises its upstream an assertion never forwards without one.
  if (!principal) throw new WardenError('internal', 'an identity assertion needs an authenticated caller', { reason: 'assertion_no_principal' });
  let token: string;
  try {
    token = service.assertion(settings, principal, {
      requestId: state.id,
      requestIdGenerated: state.headers['x-request-id'] !== state.id,
      approval: state.approval,
      authz: settings.authz ? allowedChecks(state) : undefined,
    });
  } catch (err) {
    throw new WardenError('internal', 'could not sign the identity assertion', { cause: err, reason: 'assertion_failed' });
  }
  if (settings.authorization) state.upstreamAuthorization = `Bearer ${token}`;
  else state.upstreamHeaders.push([settings.header, token]);
}

export async function createAssertionStage(rt: Runtime): Promise<Stage> {
  const service = await createAssertionService(rt.config, { publicUrl: rt.publicUrl, dataDir: rt.dataDir });
  if (!service) return { name: 'assertion', appliesTo: () => false, run() {} };
  return {
    name: 'assertion',
    appliesTo: (route) => route.config.assertion !== undefined || Object.values(route.config.mcp?.tools ?? {}).some((t) => t.assertion !== undefined),
    run: (state) => runAssertion(service, state),
    jwks: () => service.jwks().keys,
  };
}
