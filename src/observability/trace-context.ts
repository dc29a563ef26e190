/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) without the
 * OpenTelemetry SDK: parse an inbound `traceparent`, keep the valid members
 * of `tracestate`, make trace and span ids, and decide sampling. Tracing
 * (tracing.ts) decides once per request here, so an unsampled request never
 * reaches the SDK; with tracing off the pipeline only builds the upstream
 * `traceparent` (createTraceparent).
 */

import { randomFillSync } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;

/** An inbound `traceparent` that parsed: the caller's trace, its span and its sampled flag. */
export interface ParentContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

// version "-" trace-id "-" parent-id "-" trace-flags, then (versions above 00 only) "-" and more.
const PARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/**
 * Parse `traceparent` as the spec's §3.2 says: version `ff` and all-zero ids
 * are invalid; version 00 is exactly 55 characters; a higher version is read
 * by its version-00 prefix (anything after must start with "-"). Undefined
 * when invalid or repeated: the request then starts a new trace.
 */
export function parseTraceparent(value: string | string[] | undefined): ParentContext | undefined {
  if (typeof value !== 'string' || value.length < 55) return undefined;
  const m = PARENT.exec(value);
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  if (m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return undefined;
  return { traceId: m[2], spanId: m[3], sampled: (parseInt(m[4], 16) & 1) === 1 };
}

// §3.3.1: simple-key or tenant@system key; a value of printable ASCII without "," and "=", not ending in a space.
const MEMBER =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_TRACESTATE = 512;
const MAX_MEMBERS = 32;

/**
 * The caller's `tracestate` to send on (only with a valid traceparent): its
 * valid list members in order, the first of a repeated key, at most 32;
 * none when it is longer than 512 characters. Undefined when nothing is left.
 */
export function normalizeTracestate(value: string | string[] | undefined): string | undefined {
  const text = typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : undefined;
  if (!text || text.length > MAX_TRACESTATE) return undefined;
  const kept: string[] = [];
  const keys = new Set<string>();
  for (const raw of text.split(',')) {
    const member = raw.trim();
    if (!member || !MEMBER.test(member)) continue;
    const key = member.slice(0, member.indexOf('='));
    if (keys.has(key)) continue;
    keys.add(key);
    kept.push(member);
    if (kept.length === MAX_MEMBERS) break;
  }
  return kept.length ? kept.join(',') : undefined;
}

/** Trace and span ids in lower-case hex, never all zeros. */
export interface IdSource {
  traceId(): string;
  spanId(): string;
}

/**
 * Ids from a pooled random buffer: one randomFillSync and one hex conversion
 * per ~170 requests; an id is then a slice of that text (no call into the
 * buffer per id).
 */
export function createIdSource(): IdSource {
  const pool = Buffer.alloc(4096);
  let text = '';
  let at = 0;
  const hex = (chars: number, zero: string): string => {
    for (;;) {
      if (at + chars > text.length) {
        randomFillSync(pool);
        text = pool.toString('hex');
        at = 0;
      }
      const id = text.slice(at, at + chars);
      at += chars;
      if (id !== zero) return id;
    }
  };
  return { traceId: () => hex(32, ZERO_TRACE), spanId: () => hex(16, ZERO_SPAN) };
}

/**
 * The TraceIdRatioBased decision of the OpenTelemetry specification (its
 * consistent-probability form): a trace is kept when the randomness in the
 * last 56 bits of its id reaches the threshold (1 − ratio) × 2^56, so every
 * service sampling at the same ratio keeps the same traces.
 */
export function createRatioSampler(ratio: number): (traceId: string) => boolean {
  if (!(ratio > 0)) return () => false;
  if (ratio >= 1) return () => true;
  // R >= T compared exactly on two 28-bit halves (56 bits do not fit a double's 53).
  const threshold = Math.ceil((1 - ratio) * 2 ** 56);
  const thresholdHigh = Math.floor(threshold / 2 ** 28);
  const thresholdLow = threshold - thresholdHigh * 2 ** 28;
  return (traceId) => {
    const high = parseInt(traceId.slice(18, 25), 16);
    return high > thresholdHigh || (high === thresholdHigh && parseInt(traceId.slice(25, 32), 16) >= thresholdLow);
  };
}

/**
 * The sampling decision for one request, made once at its start: with
 * `parentBased`, a valid inbound traceparent's sampled flag decides (the
 * OpenTelemetry ParentBased sampler's defaults for a remote parent);
 * otherwise the ratio decides, on the trace id when Warden made it. A trace id
 * the caller sent is the caller's choice, and so would be the decision of a
 * ratio on it (an agent picks ids whose last bits clear any threshold and has
 * every request traced): the ratio then decides on Warden's own randomness.
 */
export function createSampler(ratio: number, parentBased: boolean): (traceId: string, parent: ParentContext | undefined) => boolean {
  const byRatio = createRatioSampler(ratio);
  const drawn = ratio >= 1 ? () => true : ratio > 0 ? () => Math.random() < ratio : () => false;
  return (traceId, parent) => (parent === undefined ? byRatio(traceId) : parentBased ? parent.sampled : drawn());
}

/** A traceparent builder with its own random pool (one per pipeline), for when tracing is off. */
export function createTraceparent(): (inbound: string | string[] | undefined) => string {
  const ids = createIdSource();
  return (inbound) => {
    const span = ids.spanId();
    const m = typeof inbound === 'string' ? TRACEPARENT.exec(inbound) : null;
    if (m && m[1] !== ZERO_TRACE) return `00-${m[1]}-${span}-${m[2]}`;
    return `00-${ids.traceId()}-${span}-01`;
  };
}
