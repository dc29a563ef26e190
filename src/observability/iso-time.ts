/**
 * ISO 8601 text of a time in milliseconds, as `new Date(ms).toISOString()`
 * writes it, for serializers that stamp one record per request (the decision
 * record, the console's activity items): Date's formatter runs once per
 * second of input, and only the milliseconds are written per call.
 */

/** Date's range: ±100,000,000 days from 1970. */
const MAX_TIME = 8.64e15;

/** A formatter with its own one-second cache (one per serializer: the times it sees are close together). */
export function createIsoTime(): (ms: number) => string {
  let second = NaN;
  // `…T03:24:19.`: the text up to the milliseconds, the same for the whole second.
  let prefix = '';
  return function isoTime(ms) {
    // Fractions of a millisecond and times out of Date's range: as Date writes them (or throws).
    if (!Number.isInteger(ms) || ms > MAX_TIME || ms < -MAX_TIME) return new Date(ms).toISOString();
    const s = Math.floor(ms / 1000) * 1000;
    if (s !== second) {
      prefix = new Date(ms).toISOString().slice(0, -4);
      second = s;
    }
    const r = ms - s;
    return `${prefix}${r < 10 ? '00' : r < 100 ? '0' : ''}${r}Z`;
  };
}
