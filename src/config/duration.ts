/** Durations and sizes as written in gateway.yaml ("250ms", "30s", "10m", "1h", "1d"; "10MB"). */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds for a duration string or a number of seconds; null when invalid. */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
  if (typeof value !== 'string') return null;
  const m = DURATION.exec(value.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * UNIT_MS[m[2]]);
}

const SIZE = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$/i;
const UNIT_BYTES: Record<string, number> = { b: 1, kb: 1000, kib: 1024, mb: 1_000_000, mib: 1_048_576, gb: 1e9, gib: 1_073_741_824 };

/** Bytes for a size (number of bytes or "64KiB", "10MB"); null when invalid. */
export function parseSize(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const m = SIZE.exec(value.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT_BYTES[(m[2] ?? 'b').toLowerCase()];
}
