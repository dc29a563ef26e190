/**
 * Waiting for decisions without polling: one store subscription per instance
 * fans decision events out to the requests held here. With Redis the event
 * comes from whichever instance recorded the decision. Events are only hints:
 * a woken waiter re-reads the record, and a waiter re-reads once more when its
 * hold ends, so a lost message costs at most one hold period, never a wrong answer.
 */

import type { Store, Unsubscribe } from '../store/store.js';
import type { Logger } from '../observability/logger.js';
import { EVENTS_CHANNEL, type ApprovalEvent } from './records.js';

export interface DecisionBus {
  /**
   * Resolve when an event for `id` arrives (true) or after `ms` (false), or
   * when `signal` aborts (false). Register before reading the record, so an
   * event published in between is not missed.
   */
  waiter(id: string): { wait(ms: number, signal?: AbortSignal): Promise<boolean>; cancel(): void };
  close(): Promise<void>;
}

/** Subscribe to the events channel and return the bus. */
export async function createDecisionBus(store: Store, logger: Logger): Promise<DecisionBus> {
  const waiters = new Map<string, Set<() => void>>();

  const deliver = (event: ApprovalEvent) => {
    const set = waiters.get(event.id);
    if (!set) return;
    for (const wake of [...set]) wake();
  };

  const unsubscribe: Unsubscribe = await store.subscribe(EVENTS_CHANNEL, (message) => {
    try {
      const event = JSON.parse(message) as ApprovalEvent;
      if (typeof event?.id === 'string') deliver(event);
    } catch {
      logger.warn({ channel: EVENTS_CHANNEL }, 'ignoring a malformed approval event');
    }
  });

  return {
    waiter(id) {
      let woken = false;
      let wake: (() => void) | undefined;
      const onEvent = () => {
        woken = true;
        wake?.();
      };
      let set = waiters.get(id);
      if (!set) waiters.set(id, (set = new Set()));
      set.add(onEvent);
      const cancel = () => {
        const s = waiters.get(id);
        if (!s) return;
        s.delete(onEvent);
        if (s.size === 0) waiters.delete(id);
      };
      return {
        cancel,
        wait(ms, signal) {
          if (woken) {
            woken = false;
            return Promise.resolve(true);
          }
          return new Promise<boolean>((resolve) => {
            const done = (v: boolean) => {
              clearTimeout(timer);
              signal?.removeEventListener('abort', onAbort);
              wake = undefined;
              woken = false;
              resolve(v);
            };
            const onAbort = () => done(false);
            const timer = setTimeout(() => done(false), Math.max(0, ms));
            wake = () => done(true);
            signal?.addEventListener('abort', onAbort, { once: true });
            if (signal?.aborted) done(false);
          });
        },
      };
    },
    async close() {
      // Wake every held request so it answers now (202) instead of at the end of its hold.
      for (const set of [...waiters.values()]) for (const wake of [...set]) wake();
      waiters.clear();
      await unsubscribe();
    },
  };
}
