/**
 * Upstream deadlines of relayed requests, checked by one coarse interval
 * instead of a timer per request, and measured in the interval's own ticks
 * instead of clock reads per event.
 */

/** One exchange under a deadline (forward.ts's Relay). */
export interface Deadline {
  /**
   * The tick (Deadlines.tick) at which the upstream's current wait began: its
   * request dispatched, or its last bytes received. NOT_WAITING while the wait
   * is not the upstream's fault (the agent's backpressure, a head hook).
   */
  armedAt: number;
  /** How long the upstream may stay silent, in ms. */
  readonly timeoutMs: number;
  /** Called once the upstream has been silent for timeoutMs. */
  timeOut(): void;
}

/** `armedAt` of an exchange that is not waiting on its upstream. */
export const NOT_WAITING = -1;

/**
 * Why ticks (undici's own headers/body timeouts create a timer object per
 * request that lives until its timer wheel's next sweep, long enough to be
 * promoted out of V8's young generation: at 25k req/s that was ~3 MB/s of
 * old-generation garbage and a mark-compact every few seconds). An exchange
 * re-arms on every event (dispatch, head, each body chunk) by copying the
 * current tick, a field read where a `Date.now()` was: a clock read cost
 * about as much as five small allocations on the loaded bench host.
 *
 * Never early: an exchange armed at tick k was armed after sweep k, so at
 * sweep t at least (t - k - 1) ticks of real time have passed (an interval
 * never fires early; a late or blocked one only makes timeouts later). It
 * times out at the first sweep where (t - k - 1) × tickMs ≥ timeoutMs, i.e.
 * at most two ticks late. The interval runs only while exchanges are live.
 */
export class Deadlines {
  /** Sweeps so far. */
  tick = 0;
  private readonly live = new Set<Deadline>();
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly tickMs: number) {}

  add(deadline: Deadline): void {
    this.live.add(deadline);
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), this.tickMs);
      this.timer.unref();
    }
  }

  delete(deadline: Deadline): void {
    this.live.delete(deadline);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private sweep(): void {
    // Stop after a quiet tick; the next request starts the interval again.
    if (this.live.size === 0) return this.stop();
    const tick = ++this.tick;
    const tickMs = this.tickMs;
    for (const d of this.live) if (d.armedAt !== NOT_WAITING && (tick - d.armedAt - 1) * tickMs >= d.timeoutMs) d.timeOut();
  }
}
