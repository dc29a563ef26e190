import { describe, expect, it } from 'vitest';
import { WardenError } from '../core/errors.js';
import type { RequestState } from './context.js';
import type { RequestTrace } from '../observability/tracing.js';
import { runStages, runTracedStages } from './run-stages.js';
import type { Stage } from './stage.js';
import { newState } from './state.js';

const state = (): RequestState => newState({ method: 'GET', target: { path: '/x', segments: ['x'], query: '' }, headers: {}, clientIp: '127.0.0.1' });

function recorder() {
  const ran: string[] = [];
  const sync = (name: string): Stage => ({ name, run: () => void ran.push(name) });
  const later = (name: string): Stage => ({ name, run: () => new Promise<void>((r) => setTimeout(() => (ran.push(name), r()), 5)) });
  return { ran, sync, later };
}

describe('runStages', () => {
  it('returns no promise when every stage finishes synchronously (the warm path)', () => {
    const { ran, sync } = recorder();
    expect(runStages([sync('a'), sync('b'), sync('c')], 0, state())).toBeUndefined();
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('continues after the first stage that waits, in order, and runs nothing early', async () => {
    const { ran, sync, later } = recorder();
    const pending = runStages([sync('a'), later('b'), sync('c'), later('d'), sync('e')], 0, state());
    expect(pending).toBeInstanceOf(Promise);
    expect(ran).toEqual(['a']);
    await pending;
    expect(ran).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('stops at a denying stage, thrown synchronously or rejected', async () => {
    const { ran, sync, later } = recorder();
    const deny: Stage = {
      name: 'deny',
      run: () => {
        throw new WardenError('forbidden', 'no');
      },
    };
    expect(() => runStages([sync('a'), deny, sync('never')], 0, state())).toThrow(WardenError);
    const rejecting: Stage = { name: 'reject', run: () => Promise.reject(new WardenError('forbidden', 'no')) };
    await expect(runStages([later('b'), rejecting, sync('never')], 0, state())).rejects.toMatchObject({ code: 'forbidden' });
    expect(ran).toEqual(['a', 'b']);
  });
});

describe('runTracedStages (tracing on, request sampled)', () => {
  /** A RequestTrace that records what the runner did with each stage's span. */
  function spans() {
    const log: string[] = [];
    const trace: RequestTrace = {
      recording: true,
      stage: (name) => {
        log.push(`start ${name}`);
        return { end: () => log.push(`end ${name}`), fail: (err) => log.push(`fail ${name} ${err instanceof WardenError ? err.code : 'other'}`) };
      },
      upstream: () => ({ traceparent: '', end() {} }),
      end() {},
    };
    return { log, trace };
  }

  it('keeps the warm path synchronous and ends each stage span before the next starts', () => {
    const { ran, sync } = recorder();
    const { log, trace } = spans();
    expect(runTracedStages([sync('a'), sync('b')], 0, state(), trace)).toBeUndefined();
    expect(ran).toEqual(['a', 'b']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('ends a waiting stage span when its promise settles, and fails the span of a denying stage', async () => {
    const { sync, later } = recorder();
    const { log, trace } = spans();
    await runTracedStages([sync('a'), later('b'), sync('c')], 0, state(), trace);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);

    const denied = spans();
    const deny: Stage = {
      name: 'deny',
      run: () => {
        throw new WardenError('forbidden', 'no');
      },
    };
    expect(() => runTracedStages([sync('a'), deny, sync('never')], 0, state(), denied.trace)).toThrow(WardenError);
    expect(denied.log).toEqual(['start a', 'end a', 'start deny', 'fail deny forbidden']);

    const rejected = spans();
    const later403: Stage = { name: 'late', run: () => Promise.reject(new WardenError('forbidden', 'no')) };
    await expect(runTracedStages([later403, sync('never')], 0, state(), rejected.trace)).rejects.toThrow(WardenError);
    expect(rejected.log).toEqual(['start late', 'fail late forbidden']);
  });
});
