/**
 * Keeps `process.nextTick` fast for the life of the process.
 *
 * Node builds the object that queues each tick with an object literal whose
 * first keys are computed (two symbols), so the hidden class it ends in lives
 * only as long as some object of that shape does (nextTick's optimized code
 * holds it weakly). A full garbage collection that finds no tick queued (an
 * idle gateway: V8's memory reducer collects then; a long synchronous load,
 * such as a million tuples) frees that class, and V8 deoptimizes nextTick
 * ("weak objects"). Once this has happened a few times, the code V8
 * compiles again defines the two symbol keys through the runtime on every
 * call: measured on Node 20, nextTick then costs 260–440 ns instead of
 * 30–50 ns, for good. A request costs Warden about eleven ticks (Node's
 * streams and HTTP code): a few microseconds per request.
 *
 * One tick object kept alive keeps its class alive, and with it the code
 * that expects it. It is taken inside a tick (the tick being run is the
 * execution resource there, no async hook needed) and taken again now and
 * then, so that a class V8 replaced since (a field's representation
 * generalized) is held as well. Cost: one tick every 10 s.
 */

import { executionAsyncResource } from 'node:async_hooks';

/** How often the kept tick object is replaced by a fresh one. */
export const REPIN_MS = 10_000;

let kept: object | undefined;
let timer: NodeJS.Timeout | undefined;

function takeRunningTick(): void {
  kept = executionAsyncResource();
}

/**
 * Keep a tick object alive from now on (idempotent); resolves once the first
 * is kept. The refresh timer does not hold the process open.
 */
export function keepTickShape(): Promise<void> {
  timer ??= setInterval(() => process.nextTick(takeRunningTick), REPIN_MS).unref();
  if (kept !== undefined) return Promise.resolve();
  return new Promise((resolve) =>
    process.nextTick(() => {
      takeRunningTick();
      resolve();
    }),
  );
}

/** The tick object kept now (for tests). */
export function keptTick(): object | undefined {
  return kept;
}
