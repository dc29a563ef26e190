/**
 * How a feature (approvals, vault, MCP) plugs into the gateway: endpoints under
 * the reserved `/.warden/` prefix, a pipeline stage, and a lifecycle. The
 * gateway builds every feature once per config generation and closes it on
 * reload or shutdown.
 */

import type { Hono } from 'hono';
import type { Runtime } from '../core/runtime.js';
import type { RequestState, Stage } from './context.js';

/** A feature's plug points; all optional. */
export interface Feature {
  readonly name: string;
  /** Mounted at `/.warden` on the agent listener (so '/approvals/:id' is `/.warden/approvals/:id`). */
  readonly routes?: Hono;
  /** Mounted at `/.well-known` on the agent listener. */
  readonly wellKnown?: Hono;
  /** Mounted at `/` on the admin listener. */
  readonly admin?: Hono;
  readonly stage?: Stage;
  close?(): Promise<void>;
}

/** What the pipeline offers features that must re-enter it. */
export interface PipelineHooks {
  /** Run the authorize stage again with higher consistency (approval release). */
  reauthorize(state: RequestState): Promise<void>;
  /** `warden explain`: stages decide without side effects (limits peek instead of consuming). */
  readonly dryRun?: boolean;
}

export type FeatureFactory = (rt: Runtime, hooks: PipelineHooks) => Promise<Feature> | Feature;
