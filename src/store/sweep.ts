/**
 * Background expiry a slice at a time: each tick looks at a bounded number of
 * a map's entries, carrying on where the last tick stopped (a pass starts
 * again at the beginning once it reached the end). No tick's cost grows with
 * the map, so a store with a million keys never stalls the event loop for a
 * whole pass. Reads expire keys lazily anyway; this only bounds the memory
 * held by keys nobody reads again.
 */

/** How many entries one tick looks at, per map. */
export const SWEEP_SLICE = 2048;

/** A sweep of `map`: each call deletes the entries `expired` names among the next `slice`. */
export function sliceSweeper<K, V>(map: Map<K, V>, expired: (value: V, now: number) => boolean, slice = SWEEP_SLICE): (now: number) => void {
  let at: Iterator<[K, V]> | undefined;
  return (now) => {
    at ??= map.entries();
    for (let n = 0; n < slice; n++) {
      const next = at.next();
      if (next.done === true) {
        at = undefined;
        return;
      }
      // Deleting the entry just visited leaves a Map iterator valid.
      if (expired(next.value[1], now)) map.delete(next.value[0]);
    }
  };
}
