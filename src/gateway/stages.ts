/**
 * The pipeline's stages, in order: the one place that says what runs between
 * matching a route and forwarding it. Adding a stage is one `add(...)` line
 * here plus its factory in the feature's folder (see pipeline/DESIGN.md).
 *
 *   authenticate → body → mcp → authorize → limits → approve → after-approve → credentials → assertion
 */

import { createApprovalsStage, type ApprovalsStage } from '../approvals/stage.js';
import type { ActivitySource } from '../audit/activity.js';
import { createAuthorizeStage } from '../authz/stage.js';
import { createConsoleStage } from '../console/stage.js';
import type { Runtime } from '../core/runtime.js';
import { createIdentityStage } from '../identity/stage.js';
import { createAssertionStage, wantsAuthzClaim } from '../identity/assertion/stage.js';
import { afterApproveStage, createLimitsStage } from '../limits/stage.js';
import { createMcpStage } from '../mcp/stage.js';
import { createBodyStage } from '../pipeline/body.js';
import type { Stage } from '../pipeline/stage.js';
import { shadowed, shadowRoutes } from '../pipeline/shadow.js';
import { createCredentialsStage } from '../vault/stage.js';

export interface StageOptions {
  /** `warden explain`: stages decide without side effects and keep every check in the trace. */
  dryRun?: boolean;
  /** Called with the approve stage once built (the evaluator asks it whether a request would be held). */
  onApprovals?: (stage: ApprovalsStage) => void;
  /** Where the console reads a person's activity from. */
  activity?: ActivitySource;
}

/** Build every stage for one config generation; a failure closes those already built. */
export async function buildStages(rt: Runtime, options: StageOptions = {}): Promise<Stage[]> {
  const stages: Stage[] = [];
  const add = async <S extends Stage>(stage: S | Promise<S>): Promise<S> => {
    const built = await stage;
    stages.push(built);
    return built;
  };
  try {
    await add(createIdentityStage(rt));
    await add(createBodyStage(rt.config.server.limits.body_bytes));
    await add(createMcpStage(rt, { dryRun: options.dryRun }));
    // Routes whose identity assertion lists the allowed checks need them recorded.
    const traceRoutes = new Set(rt.config.routes.flatMap((r, i) => (wantsAuthzClaim(r) ? [i] : [])));
    // The decision log records every check with its answer, whatever the log level.
    const shadow = shadowRoutes(rt.config);
    const authorize = createAuthorizeStage(rt, { trace: options.dryRun || Boolean(rt.config.audit.decisions), traceRoutes });
    await add(shadowed(authorize, shadow));
    const limits = await add(createLimitsStage(rt, { dryRun: options.dryRun }));
    const approve = await add(shadowed(await createApprovalsStage(rt, authorize), shadow));
    options.onApprovals?.(approve);
    await add(afterApproveStage);
    const credentials = await add(createCredentialsStage(rt));
    // After credentials: the assertion may take Authorization on a route that has none.
    await add(createAssertionStage(rt));
    // Endpoints only: the signed-in person's console (runs on no agent request).
    await add(
      createConsoleStage(rt, {
        approvals: approve.service,
        push: approve.push,
        vault: rt.config.vault.keys.length > 0 ? credentials.services : null,
        limits: limits.service,
        activity: options.activity ?? null,
      }),
    );
  } catch (err) {
    await closeStages(stages, rt);
    throw err;
  }
  return stages;
}

/** Close every stage, logging (not throwing) failures. */
export async function closeStages(stages: readonly Stage[], rt: Pick<Runtime, 'logger'>): Promise<void> {
  await Promise.all(stages.map(async (s) => s.close?.().catch((err: unknown) => rt.logger.warn({ err, stage: s.name }, 'stage close failed'))));
}
