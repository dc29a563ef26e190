/**
 * Keeping a tick object alive (#17, src/core/tick-shape.ts): without it,
 * full collections that find no tick queued free the class of Node's tick
 * objects, V8 deoptimizes process.nextTick for it ("weak objects"), and the
 * code it compiles afterwards costs ~8× per call. The child process shows the
 * deoptimization without the kept tick and none with it (V8's own trace, no
 * timing), the unit tests what is kept and that it is renewed.
 */

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REPO_ROOT } from '../support/gateway.js';

const FIXTURE = join(REPO_ROOT, 'test/core/fixtures/tick-gc.mjs');
const MODULE = join(REPO_ROOT, 'dist/src/core/tick-shape.js');

/** Lines of V8's deoptimization trace that deoptimize nextTick because an object its code held weakly died. */
function weakDeopts(mode: 'pin' | 'none'): string[] {
  const run = spawnSync(process.execPath, ['--expose-gc', '--trace-deopt', FIXTURE, mode, MODULE], { encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  expect(run.stdout).toContain('done');
  return run.stdout.split('\n').filter((l) => l.includes('nextTick') && l.includes('reason: weak objects'));
}

/** Own keys of a tick object as Node 20 builds it: callback, args and two symbols (async ids). */
function isTickObject(o: unknown): boolean {
  if (typeof o !== 'object' || o === null) return false;
  return typeof (o as { callback?: unknown }).callback === 'function' && 'args' in o && Object.getOwnPropertySymbols(o).length === 2;
}

describe('process.nextTick after full collections with no tick queued', () => {
  it('is deoptimized when its tick objects died (the control: this Node has the problem)', () => {
    expect(weakDeopts('none').length).toBeGreaterThan(0);
  });

  it('is not, with a tick object kept alive as `warden start` keeps one', () => {
    expect(weakDeopts('pin')).toEqual([]);
  });
});

describe('keepTickShape', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.resetModules();
  });

  it('keeps the tick it ran in, and a fresh one every REPIN_MS', async () => {
    vi.resetModules();
    vi.useFakeTimers({ toFake: ['setInterval'] });
    const { keepTickShape, keptTick, REPIN_MS } = await import('../../src/core/tick-shape.js');
    expect(keptTick()).toBeUndefined();
    await keepTickShape();
    const first = keptTick();
    expect(isTickObject(first)).toBe(true);

    await keepTickShape(); // idempotent: the same object, no second timer
    expect(keptTick()).toBe(first);
    expect(vi.getTimerCount()).toBe(1);

    vi.advanceTimersByTime(REPIN_MS);
    await new Promise((resolve) => setImmediate(resolve)); // the renewal runs in a tick of its own
    const second = keptTick();
    expect(isTickObject(second)).toBe(true);
    expect(second).not.toBe(first);
  });
});
