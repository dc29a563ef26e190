/**
 * Background expiry a slice at a time: each tick looks at a bounded number of
 * a map's entries, carrying on where the last tick stopped (a pass starts
 * again at the beginning once it reached the end). No tick's cost grows with
 * the map, so a store with a million keys never stalls the event loop for a
 * whole pass. Reads expire keys lazily anyway; this only bounds the memory
 * held by keys nobody reads again.
 */

/** How many entries one tick looks at, per map (plus what the map grew by since the last tick). */
export const SWEEP_SLICE = 2048;

/** A sweep of `map`: each call deletes the entries `expired` names among the next `slice` (and as many more as the map grew by). */
export function sliceSweeper<K, V>(map: Map<K, V>, expired: (value: V, now: number) => boolean, slice = SWEEP_SLICE): (now: number) => void {
  let at: Iterator<[K, V]> | undefined;
  // A Map iterator also visits entries added after it was made, so while more keys arrive
  // per tick than a slice, a pass would never end and the oldest keys, expired long ago,
  // would never be looked at again: memory an agent drives up by sending requests. Each
  // tick therefore also looks at as many entries as the map grew by since the last one
  // (the cost stays proportional to the writes, never to the map).
  let sizeAfter = map.size;
  return (now) => {
    at ??= map.entries();
    const budget = slice + Math.max(0, map.size - sizeAfter);
    for (let n = 0; n < budget; n++) {
      const next = at.next();
      if (next.done === true) {
        at = undefined;
        break;
      }
      // Deleting the entry just visited leaves a Map iterator valid.
      if (expired(next.value[1], now)) map.delete(next.value[0]);
    }
    sizeAfter = map.size;
  };
}
