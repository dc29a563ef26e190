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

  it('looks at a silent exchange about once per timeout, not on every tick', () => {
    const deadlines = new Deadlines(50);
    let reads = 0;
    const streams: Deadline[] = [];
    for (let i = 0; i < 1_000; i++) {
      let armedAt = deadlines.tick;
      const d: Deadline = {
        get armedAt() {
          reads++;
          return armedAt;
        },
        set armedAt(v: number) {
          armedAt = v;
        },
        timeoutMs: 60_000,
        timeOut: () => deadlines.delete(d),
      };
      deadlines.add(d);
      streams.push(d);
    }
    const atStart = reads;
    // 30 s: 600 sweeps. The full scan read each exchange on each of them (600,000 reads).
    vi.advanceTimersByTime(30_000);
    expect(reads - atStart).toBe(0);
    expect(deadlines.size).toBe(1_000);
    // Past the timeout, each is read and times out once.
    vi.advanceTimersByTime(31_000);
    expect(deadlines.size).toBe(0);
    expect(reads - atStart).toBeLessThanOrEqual(2_000);
    deadlines.stop();
  });

  it('fires every timeout at the very sweep a full scan of all exchanges fires it (random re-arms, pauses, deletes)', () => {
    // The reference: the sweep as it was, every exchange read on every tick.
    for (let seed = 1; seed <= 20; seed++) {
      let x = seed;
      const random = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
      const deadlines = new Deadlines(50);
      const live: Array<{ d: Deadline; name: number; timeoutMs: number }> = [];
      const fired: Array<[number, number]> = [];
      const expected: Array<[number, number]> = [];
      let next = 0;
      for (let step = 0; step < 400; step++) {
        // Between sweeps: new exchanges, re-arms, pauses and resumes, agents leaving.
        for (let n = Math.floor(random() * 4); n > 0; n--) {
          const name = next++;
          const timeoutMs = [0, 50, 75, 100, 130, 400, 1_000][Math.floor(random() * 7)];
          const d: Deadline = {
            armedAt: random() < 0.2 ? NOT_WAITING : deadlines.tick,
            timeoutMs,
            timeOut() {
              fired.push([name, deadlines.tick]);
              // Most owners settle at once; some stay live a few ticks (a queued request's answer).
              if (random() < 0.7) {
                deadlines.delete(d);
                live.splice(
                  live.findIndex((e) => e.d === d),
                  1,
                );
              }
            },
          };
          deadlines.add(d);
          live.push({ d, name, timeoutMs });
        }
        for (const e of [...live]) {
          const r = random();
          if (r < 0.1) e.d.armedAt = deadlines.tick;
          else if (r < 0.15) e.d.armedAt = NOT_WAITING;
          else if (r < 0.18) {
            deadlines.delete(e.d);
            live.splice(live.indexOf(e), 1);
          }
        }
        // What the full scan decides at the coming sweep, from the state now (with nothing live, no sweep counts).
        const tick = deadlines.size > 0 ? deadlines.tick + 1 : deadlines.tick;
        for (const { d, name, timeoutMs } of live) {
          if (d.armedAt !== NOT_WAITING && (tick - d.armedAt - 1) * 50 >= timeoutMs) expected.push([name, tick]);
        }
        vi.advanceTimersByTime(50);
        expect(deadlines.tick).toBe(tick);
      }
      expect(fired.length).toBeGreaterThan(50);
      // Within one sweep, exchanges fire in slot order; compare per sweep.
      const bySweep = (a: [number, number], b: [number, number]) => a[1] - b[1] || a[0] - b[0];
      expect(fired.sort(bySweep), `seed ${seed}`).toEqual(expected.sort(bySweep));
      deadlines.stop();
    }
  });

  it('a timeout changed while live (retimed) counts from the same wait: shorter fires sooner, longer later', () => {
    const deadlines = new Deadlines(50);
    const fired = new Map<string, number>();
    const shorter = exchange(deadlines, 10_000, fired, 'shorter') as { timeoutMs: number } & Deadline;
    const longer = exchange(deadlines, 200, fired, 'longer') as { timeoutMs: number } & Deadline;
    vi.advanceTimersByTime(100);
    shorter.timeoutMs = 300;
    deadlines.retimed(shorter);
    longer.timeoutMs = 1_000;
    deadlines.retimed(longer);
    vi.advanceTimersByTime(500);
    expect(fired.get('shorter')).toBeGreaterThanOrEqual(300);
    expect(fired.get('shorter')).toBeLessThanOrEqual(400);
    expect(fired.has('longer')).toBe(false);
    vi.advanceTimersByTime(600);
    expect(fired.get('longer')).toBeGreaterThanOrEqual(1_000);
    expect(fired.get('longer')).toBeLessThanOrEqual(1_100);
    deadlines.stop();
  });
});
