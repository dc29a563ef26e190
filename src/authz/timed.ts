/**
 * `warden_authz_check_duration_seconds{engine}`: how long the engine itself
 * (embedded | openfga) takes for the checks the decision cache could not
 * answer. Sits between the cache and the engine, so cache hits cost nothing
 * here; failures are timed too (a timing-out OpenFGA is what this should show).
 */

import type { Metrics } from '../observability/metrics.js';
import type { Authorizer } from './authorizer.js';

/** `engine` with its check and batch check timed; everything else delegates. */
export function withCheckTiming(engine: Authorizer, metrics: Metrics): Authorizer {
  const histogram = metrics.histogram('warden_authz_check_duration_seconds', { engine: engine.engine });
  const timed = <T>(call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const done = () => histogram.observe((performance.now() - started) / 1000);
    const pending = call();
    pending.then(done, done);
    return pending;
  };
  const sync = engine.batchCheckSync?.bind(engine);
  const timedSync = sync
    ? (requests: Parameters<typeof sync>[0], options: Parameters<typeof sync>[1]): boolean[] => {
        const started = performance.now();
        try {
          return sync(requests, options);
        } finally {
          histogram.observe((performance.now() - started) / 1000);
        }
      }
    : undefined;
  const cheap = engine.checkIfCheap?.bind(engine);
  const timedCheap = cheap
    ? (request: Parameters<typeof cheap>[0]): boolean | undefined => {
        const started = performance.now();
        let answer: boolean | undefined;
        try {
          answer = cheap(request);
        } catch (err) {
          histogram.observe((performance.now() - started) / 1000);
          throw err;
        }
        // Not cheap: the full check through the cache is timed instead.
        if (answer !== undefined) histogram.observe((performance.now() - started) / 1000);
        return answer;
      }
    : undefined;
  const known = engine.checkIfKnown?.bind(engine);
  // A remembered answer takes a Map lookup, less than reading the clock twice: observed as taking no time,
  // so the histogram still counts every check the decision cache did not answer.
  const timedKnown = known
    ? (request: Parameters<typeof known>[0]): boolean | undefined => {
        const answer = known(request);
        if (answer !== undefined) histogram.observe(0);
        return answer;
      }
    : undefined;
  return {
    engine: engine.engine,
    // OpenFGA resolves its model id at start (and on reload): read it through.
    get modelId() {
      return (engine as { modelId?: string }).modelId;
    },
    check: (request, options) => timed(() => engine.check(request, options)),
    batchCheck: (requests, options) => timed(() => engine.batchCheck(requests, options)),
    ...(timedSync ? { batchCheckSync: timedSync } : {}),
    ...(timedCheap ? { checkIfCheap: timedCheap } : {}),
    ...(timedKnown ? { checkIfKnown: timedKnown } : {}),
    listObjects: (request, options) => engine.listObjects(request, options),
    relations: () => engine.relations(),
    ready: () => engine.ready(),
    close: () => engine.close(),
  } as Authorizer;
}
