/**
 * Coalescing of concurrent checks for a remote engine (OpenFGA): checks asked
 * in the same event-loop turn leave together in one batch request, and a check
 * identical to one already in flight waits for that one instead of asking
 * again (single-flight). Under load, every request of one turn shares one
 * round trip; alone, a check leaves at the end of its own turn (no timer, no
 * added wait).
 *
 * Fail closed: when the batch request fails, every caller in it gets the
 * error; when the engine answers one item with an error, only that caller
 * does. A `higher_consistency` check never joins one already in flight (that
 * one may have left before the write the caller wants to see) and is batched
 * only with other `higher_consistency` checks.
 */

import { canonicalJson } from '../core/canonical-json.js';
import type { CheckOptions, CheckRequest } from './authorizer.js';

/** One item's answer from the engine: allowed, or the error this caller gets. */
export type BatchItemResult = { allowed: boolean } | { error: Error };

/** Sends one batch (at most `maxBatch` checks) and answers item by item, in order. */
export type SendBatch = (checks: CheckRequest[], consistency: CheckOptions['consistency']) => Promise<BatchItemResult[]>;

/** Options of `createCheckBatcher`. */
export interface CheckBatcherOptions {
  send: SendBatch;
  /** Most checks per batch request (OpenFGA's default server limit is 50); a full batch leaves at once. */
  maxBatch: number;
}

/** `check()` through the batcher; `inflight` counts distinct checks waiting for an answer (tests, metrics). */
export interface CheckBatcher {
  check(request: CheckRequest, options?: CheckOptions): Promise<boolean>;
  readonly inflight: number;
}

interface Waiting {
  request: CheckRequest;
  resolve: (allowed: boolean) => void;
  reject: (err: unknown) => void;
}

/** Everything that can change an answer, as one string (single-flight key). */
function keyOf(r: CheckRequest): string {
  const context = r.context && Object.keys(r.context).length > 0 ? canonicalJson(r.context) : '';
  const tuples = r.contextualTuples && r.contextualTuples.length > 0 ? canonicalJson(r.contextualTuples) : '';
  // Length-prefixed: no field can run into the next, whatever it contains.
  return [r.user, r.relation, r.object, context, tuples].map((s) => `${s.length}:${s}`).join('');
}

export function createCheckBatcher(options: CheckBatcherOptions): CheckBatcher {
  const inflight = new Map<string, Promise<boolean>>();
  const queues = new Map<'minimize_latency' | 'higher_consistency', Waiting[]>();
  let scheduled = false;

  const dispatch = (consistency: 'minimize_latency' | 'higher_consistency', batch: Waiting[]) => {
    // Through a resolved promise: a synchronous throw in send() reaches every caller like a rejection.
    const sent = Promise.resolve().then(() =>
      options.send(
        batch.map((w) => w.request),
        consistency === 'higher_consistency' ? 'higher_consistency' : undefined,
      ),
    );
    sent.then(
      (results) => {
        for (let i = 0; i < batch.length; i++) {
          const r = results[i];
          if (r === undefined) batch[i].reject(new Error('the engine did not answer this check'));
          else if ('error' in r) batch[i].reject(r.error);
          else batch[i].resolve(r.allowed);
        }
      },
      (err: unknown) => {
        for (const w of batch) w.reject(err);
      },
    );
  };

  const flush = () => {
    scheduled = false;
    for (const [consistency, queue] of queues) {
      if (queue.length === 0) continue;
      queues.set(consistency, []);
      for (let i = 0; i < queue.length; i += options.maxBatch) dispatch(consistency, queue.slice(i, i + options.maxBatch));
    }
  };

  const enqueue = (request: CheckRequest, consistency: 'minimize_latency' | 'higher_consistency'): Promise<boolean> =>
    new Promise<boolean>((resolve, reject) => {
      let queue = queues.get(consistency);
      if (!queue) queues.set(consistency, (queue = []));
      queue.push({ request, resolve, reject });
      if (queue.length >= options.maxBatch) {
        queues.set(consistency, []);
        dispatch(consistency, queue);
      } else if (!scheduled) {
        scheduled = true;
        // After the I/O callbacks of this turn: every check they asked for joins the batch.
        setImmediate(flush);
      }
    });

  return {
    check(request, opts) {
      if (opts?.consistency === 'higher_consistency') return enqueue(request, 'higher_consistency');
      const key = keyOf(request);
      const pending = inflight.get(key);
      if (pending) return pending;
      const started = enqueue(request, 'minimize_latency').finally(() => inflight.delete(key));
      inflight.set(key, started);
      return started;
    },
    get inflight() {
      return inflight.size;
    },
  };
}
