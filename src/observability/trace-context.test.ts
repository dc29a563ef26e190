import { describe, expect, it } from 'vitest';
import { createIdSource, createRatioSampler, createSampler, createTraceparent, normalizeTracestate, parseTraceparent } from './trace-context.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

describe('parseTraceparent (W3C Trace Context §3.2)', () => {
  it('reads version 00: trace id, parent id and the sampled flag', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: true });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: false });
    // Only bit 0 is "sampled"; other flag bits do not make a request sampled.
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-02`)?.sampled).toBe(false);
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.sampled).toBe(true);
  });

  it.each([
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['version 00 with more after the flags', `00-${TRACE}-${SPAN}-01-extra`],
    ['a short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['a higher version followed by something other than "-"', `cc-${TRACE}-${SPAN}-01x`],
    ['two headers joined', `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`],
    ['empty', ''],
  ])('refuses %s', (_what, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('reads a higher version by its version-00 prefix; refuses repeated headers', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-comes-next`)).toEqual({ traceId: TRACE, spanId: SPAN, sampled: true });
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-00`)?.sampled).toBe(false);
    expect(parseTraceparent([`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`])).toBeUndefined();
    expect(parseTraceparent(undefined)).toBeUndefined();
  });
});

describe('normalizeTracestate (W3C Trace Context §3.3)', () => {
  it('keeps valid list members in order, trimmed, without empty ones', () => {
    expect(normalizeTracestate('vendor=abc,other=1')).toBe('vendor=abc,other=1');
    expect(normalizeTracestate(' rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE ')).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    expect(normalizeTracestate('tenant1@sys=v')).toBe('tenant1@sys=v');
    expect(normalizeTracestate(['a=1', 'b=2'])).toBe('a=1,b=2');
  });

  it('drops invalid members and repeated keys; nothing left is undefined', () => {
    expect(normalizeTracestate('Upper=1,ok=2,no-equals,=x,bad=a=b,trail=x ,dup=1,dup=2')).toBe('ok=2,trail=x,dup=1');
    expect(normalizeTracestate('nokey')).toBeUndefined();
    expect(normalizeTracestate('')).toBeUndefined();
    expect(normalizeTracestate(undefined)).toBeUndefined();
  });

  it('keeps at most 32 members and nothing of a value over 512 characters', () => {
    const many = Array.from({ length: 40 }, (_, i) => `k${i}=v`).join(',');
    expect(normalizeTracestate(many)!.split(',')).toHaveLength(32);
    expect(normalizeTracestate(`a=${'x'.repeat(250)},b=${'y'.repeat(250)},c=${'z'.repeat(20)}`)).toBeUndefined();
  });
});

describe('sampling', () => {
  it('the ratio decides on the last 56 bits of the trace id (OpenTelemetry TraceIdRatioBased, consistent form)', () => {
    const half = createRatioSampler(0.5);
    expect(half('ffffffffffffffffff' + '80000000000000')).toBe(true);
    expect(half('ffffffffffffffffff' + '7fffffffffffff')).toBe(false);
    // The first 18 hex digits play no part.
    expect(half('000000000000000000' + '80000000000000')).toBe(true);
    expect(createRatioSampler(0)('f'.repeat(32))).toBe(false);
    expect(createRatioSampler(1)('0'.repeat(31) + '1')).toBe(true);
  });

  it('keeps about the configured share of random traces', () => {
    const ids = createIdSource();
    const sample = createRatioSampler(0.1);
    let kept = 0;
    for (let i = 0; i < 20_000; i++) if (sample(ids.traceId())) kept++;
    expect(kept / 20_000).toBeGreaterThan(0.08);
    expect(kept / 20_000).toBeLessThan(0.12);
  });

  it('parent-based: a valid parent’s sampled flag decides, whatever the ratio; without a parent the ratio does', () => {
    const parentBased = createSampler(0, true);
    expect(parentBased(TRACE, { traceId: TRACE, spanId: SPAN, sampled: true })).toBe(true);
    expect(parentBased(TRACE, undefined)).toBe(false);
    const always = createSampler(1, true);
    expect(always(TRACE, { traceId: TRACE, spanId: SPAN, sampled: false })).toBe(false);
    expect(always(TRACE, undefined)).toBe(true);
    // Not parent-based: the ratio, whatever the parent says.
    expect(createSampler(0, false)(TRACE, { traceId: TRACE, spanId: SPAN, sampled: true })).toBe(false);
    expect(createSampler(1, false)(TRACE, { traceId: TRACE, spanId: SPAN, sampled: false })).toBe(true);
  });

  it('not parent-based: a trace id the caller chose does not choose the sampling (an agent cannot have every request traced)', () => {
    // Its last 56 bits at their maximum: a ratio on the id keeps it at any ratio above 0.
    const chosen = '4bf92f3577b34da6a3ffffffffffffff';
    expect(createRatioSampler(0.01)(chosen)).toBe(true);
    const sample = createSampler(0.01, false);
    let kept = 0;
    for (let i = 0; i < 20_000; i++) if (sample(chosen, { traceId: chosen, spanId: SPAN, sampled: true })) kept++;
    expect(kept / 20_000).toBeGreaterThan(0.005);
    expect(kept / 20_000).toBeLessThan(0.02);
    // Warden's own trace ids keep the consistent ratio (the same traces as every service at that ratio).
    expect(sample(chosen, undefined)).toBe(true);
  });
});

describe('ids and the tracing-off traceparent', () => {
  it('ids are lower-case hex of the right length and differ', () => {
    const ids = createIdSource();
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = ids.traceId();
      const s = ids.spanId();
      expect(t).toMatch(/^[0-9a-f]{32}$/);
      expect(s).toMatch(/^[0-9a-f]{16}$/);
      seen.add(t);
    }
    expect(seen.size).toBe(1000);
  });

  it('tracing off: keeps the caller’s trace and flags with a new span id, else starts a trace', () => {
    const traceparent = createTraceparent();
    const kept = traceparent(`00-${TRACE}-${SPAN}-00`);
    expect(kept).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
    expect(kept).not.toContain(SPAN);
    expect(traceparent(undefined)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(traceparent(`00-${'0'.repeat(32)}-${SPAN}-01`)).not.toContain('0'.repeat(32));
  });
});
