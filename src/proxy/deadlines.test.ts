import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines, NOT_WAITING, type Deadline } from './deadlines.js';

/** An exchange that records when (fake ms since the test began) it timed out. */
function exchange(deadlines: Deadlines, timeoutMs: number, fired: Map<string, number>, name: string): Deadline {
  const d: Deadline = {
    armedAt: deadlines.tick,
    timeoutMs,
    timeOut() {
      fired.set(name, Date.now());
      deadlines.delete(d);
    },
  };
  deadlines.add(d);
  return d;
}

describe('Deadlines (tick-counted upstream deadlines)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never times out early, whatever the phase of the interval an exchange was armed at, and at most two ticks late', () => {
    const deadlines = new Deadlines(50);
    const fired = new Map<string, number>();
    const armed = new Map<string, number>();
    // Armed at every phase of a tick: right after a sweep, mid-tick, just before the next one.
    let now = 0;
    for (const at of [0, 1, 25, 49, 50, 99, 130]) {
      vi.advanceTimersByTime(at - now);
      now = at;
      exchange(deadlines, 200, fired, `at${at}`);
      armed.set(`at${at}`, at);
    }
    vi.advanceTimersByTime(1_000);
    for (const [name, at] of armed) {
      const when = fired.get(name);
      expect(when, name).toBeDefined();
      expect(when! - at, name).toBeGreaterThanOrEqual(200);
      expect(when! - at, name).toBeLessThanOrEqual(300);
    }
    deadlines.stop();
  });

  it('re-arming postpones the timeout; an exchange that is not waiting on its upstream never times out', () => {
    const deadlines = new Deadlines(50);
    const fired = new Map<string, number>();
    const busy = exchange(deadlines, 200, fired, 'busy');
    const held = exchange(deadlines, 200, fired, 'held');
    held.armedAt = NOT_WAITING;
    // Bytes keep arriving every 150 ms for a second: each re-arms.
    for (let t = 0; t < 1_000; t += 150) {
      vi.advanceTimersByTime(150);
      busy.armedAt = deadlines.tick;
    }
    expect(fired.has('busy')).toBe(false);
    expect(fired.has('held')).toBe(false);
    vi.advanceTimersByTime(400);
    expect(fired.has('busy')).toBe(true);
    expect(fired.has('held')).toBe(false);
    // The wait becomes the upstream's again: it gets its whole timeout from then.
    const from = Date.now();
    held.armedAt = deadlines.tick;
    vi.advanceTimersByTime(400);
    expect(fired.get('held')! - from).toBeGreaterThanOrEqual(200);
    deadlines.stop();
  });

  it('the interval stops when nothing is live and counts on from where it was when it starts again', () => {
    const deadlines = new Deadlines(50);
    const fired = new Map<string, number>();
    const first = exchange(deadlines, 100, fired, 'first');
    vi.advanceTimersByTime(300);
    expect(fired.has('first')).toBe(true);
    deadlines.delete(first);
    vi.advanceTimersByTime(5_000);
    expect(vi.getTimerCount()).toBe(0);
    const tick = deadlines.tick;
    const start = Date.now();
    exchange(deadlines, 100, fired, 'second');
    expect(deadlines.tick).toBe(tick);
    vi.advanceTimersByTime(300);
    expect(fired.get('second')! - start).toBeGreaterThanOrEqual(100);
    expect(fired.get('second')! - start).toBeLessThanOrEqual(200);
    deadlines.stop();
  });
});
