/**
 * What a pipeline stage is. Each feature folder exports a factory for its own
 * stage (identity/stage.ts, authz/stage.ts, …); gateway/stages.ts puts them in
 * order, and pipeline.ts runs them. See DESIGN.md in this folder.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hono } from 'hono';
import type { CompiledRoute } from './compile.js';
import type { RequestState } from './context.js';

/**
 * One step between matching a route and forwarding. `run` reads and writes the
 * request state and denies by throwing a WardenError. A stage that can finish
 * without I/O (nothing to do, a warm cache) returns undefined instead of a
 * promise: while every stage does, a request runs without a single promise.
 */
export interface Stage {
  /** For traces and docs only; nothing looks a stage up by name. */
  readonly name: string;
  /**
   * True when running the stage acts on the world (holds a request for a human,
   * fetches credentials): `warden explain` stops before the first such stage.
   */
  readonly effects?: boolean;
  /** Whether the stage can have work on `route`; asked once per route when the pipeline is built (default: every route). */
  appliesTo?(route: CompiledRoute): boolean;
  /** `req` and `res` are absent when the pipeline evaluates without a connection (`warden explain`). */
  run(state: RequestState, req?: IncomingMessage, res?: ServerResponse): Promise<void> | void;
  /** Endpoints the stage's feature serves, mounted at `/.warden` on the agent listener. */
  readonly routes?: Hono;
  /** Mounted at `/.well-known` on the agent listener. */
  readonly wellKnown?: Hono;
  /** Mounted at `/` on the admin listener. */
  readonly admin?: Hono;
  /** Public keys the stage's feature publishes at `/.warden/jwks.json` (identity assertions). */
  jwks?(): readonly object[];
  /**
   * Set the feature's scrape-time gauges (read from the shared store, so every
   * instance reports the same) before /metrics is rendered. Should reject
   * rather than hang: the scrape waits for it (bounded by a timeout).
   */
  collect?(): Promise<void>;
  /** Release what the stage holds (pools, subscriptions) when its config generation ends. */
  close?(): Promise<void>;
}
