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
  /** How long the upstream may stay silent, in ms (after a change, call Deadlines.retimed). */
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
 *
 * Why a due tick per slot (held MCP streams, bench/streams.mjs): a sweep that
 * read every exchange's armedAt touched one object per live exchange 20 times
 * a second, a cache miss each; 4,000 silent held streams cost 1.2 % of a core
 * doing nothing, two thirds of it in the sweep. Each slot now carries the
 * earliest tick its exchange could time out at (a lower bound: armedAt only
 * ever moves to the tick of the moment, so a wait that starts later ends
 * later), in one Float64Array the sweep runs through; an exchange is looked
 * at when that tick comes, then either times out or gets its next bound.
 * A silent stream is read about once per timeout instead of every tick; the
 * timeouts fire at the very sweeps the full scan fired them at.
 */
/**
 * Where an exchange sits in Deadlines' slots (a property of the exchange itself,
 * so that adding and deleting touch no table).
 */
const SLOT = Symbol('deadline slot');
type Slotted = Deadline & { [SLOT]?: number };

/**
 * Why slots and not a Set (#17, G3's peak RSS): a Set whose entries churn (one
 * add and one delete per request) is rehashed into a new table every few
 * hundred requests, and V8 leaves the old table pointing at the new one (for
 * iterators). Once a table was in the old generation (a mark-compact under
 * load moves it there), each dead old table kept the next one alive through
 * every scavenge, that one the next, and each table the exchanges (request,
 * response, headers) it held when it was replaced: ~15 % of all allocation
 * was promoted, a mark-compact came every second or two, and after one V8
 * let the old generation grow to 4× its live size (180–200 MB of RSS against
 * ~115). An array of slots grows to the largest number of exchanges in flight
 * and keeps no link from one request's data to another's.
 */
export class Deadlines {
  /** Sweeps so far. */
  tick = 0;
  /** Live exchanges; a slot freed by delete is undefined until add reuses it. */
  private readonly slots: Array<Deadline | undefined> = [];
  /** Per slot: the first sweep at which its exchange may have timed out (Infinity for a free slot). */
  private due = new Float64Array(64);
  private readonly freeSlots: number[] = [];
  private live = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly tickMs: number) {}

  add(deadline: Deadline): void {
    const d = deadline as Slotted;
    if (d[SLOT] !== undefined && this.slots[d[SLOT]] === deadline) return;
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.slots.length;
    if (slot >= this.due.length) {
      const grown = new Float64Array(this.due.length * 2);
      grown.set(this.due);
      this.due = grown;
    }
    this.slots[slot] = deadline;
    this.due[slot] = this.earliest(deadline, this.tick);
    d[SLOT] = slot;
    this.live++;
    if (this.timer === null) {
      this.timer = setInterval(() => this.sweep(), this.tickMs);
      this.timer.unref();
    }
  }

  delete(deadline: Deadline): void {
    const d = deadline as Slotted;
    const slot = d[SLOT];
    if (slot === undefined || this.slots[slot] !== deadline) return;
    this.slots[slot] = undefined;
    this.due[slot] = Infinity;
    d[SLOT] = undefined;
    this.freeSlots.push(slot);
    this.live--;
  }

  /** `deadline`'s timeoutMs changed: its next look is reckoned again (a shorter timeout may be due sooner). */
  retimed(deadline: Deadline): void {
    const slot = (deadline as Slotted)[SLOT];
    if (slot !== undefined && this.slots[slot] === deadline) this.due[slot] = this.earliest(deadline, this.tick);
  }

  /** Exchanges under a deadline now. */
  get size(): number {
    return this.live;
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    // Nothing live: start the next busy spell with empty slots (a burst's length is not kept).
    if (this.live === 0) {
      this.slots.length = this.freeSlots.length = 0;
      if (this.due.length > 64) this.due = new Float64Array(64);
    }
  }

  /**
   * The earliest sweep at which `d` can time out, seen at sweep `tick`: armed
   * at k, it times out at the first t with (t - k - 1) × tickMs ≥ timeoutMs,
   * which is no earlier than k + 1 + ⌊timeoutMs / tickMs⌋ (the exact test
   * stays in sweep). Not waiting, its wait can start at `tick` at the earliest.
   */
  private earliest(d: Deadline, tick: number): number {
    const from = d.armedAt === NOT_WAITING || d.armedAt > tick ? tick : d.armedAt;
    return from + 1 + Math.floor(d.timeoutMs / this.tickMs);
  }

  private sweep(): void {
    // Stop after a quiet tick; the next request starts the interval again.
    if (this.live === 0) return this.stop();
    const tick = ++this.tick;
    const tickMs = this.tickMs;
    const slots = this.slots;
    const due = this.due;
    for (let i = 0; i < slots.length; i++) {
      if (due[i] > tick) continue;
      const d = slots[i];
      if (d === undefined) continue;
      if (d.armedAt !== NOT_WAITING && (tick - d.armedAt - 1) * tickMs >= d.timeoutMs) {
        d.timeOut();
        // Still here (its owner keeps it until it settles): looked at on every sweep, as before.
        if (slots[i] === d) due[i] = tick + 1;
      } else due[i] = Math.max(tick + 1, this.earliest(d, tick));
    }
  }
}
