/**
 * A row loaded in slices (`node bench/run.mjs --slices N`) is one measurement: bench/lib/load.mjs's mergeWrk
 * turns its wrk runs into the result a single run would have given.
 */

import { describe, expect, it } from 'vitest';
import { mergeWrk, parseWrk, type WrkResult } from '../../bench/lib/load.mjs';

const run = (requests: number, seconds: number, p50: number, p99: number, non2xx = 0, socketErrors = 0): WrkResult => ({
  rps: requests / seconds,
  requests,
  non2xx,
  socket_errors: socketErrors,
  latency_ms: { p50, p99 },
});

describe('mergeWrk', () => {
  it('gives the throughput of the requests over the time the slices ran, not the mean of their rates', () => {
    // 1,000 requests in 1 s and 3,000 in 1 s: 2,000 req/s (the mean of the rates agrees here) ...
    expect(mergeWrk([run(1000, 1, 1, 2), run(3000, 1, 1, 2)]).rps).toBeCloseTo(2000, 9);
    // ... but 1,000 in 1 s and 3,000 in 2 s is 4,000 in 3 s, not (1,000 + 1,500) / 2.
    const merged = mergeWrk([run(1000, 1, 1, 2), run(3000, 2, 1, 2)]);
    expect(merged.rps).toBeCloseTo(4000 / 3, 9);
    expect(merged.requests).toBe(4000);
    expect(merged.slices).toEqual([1000, 1500]);
  });

  it('sums the errors, so that the run as a whole is judged by them', () => {
    const merged = mergeWrk([run(1000, 1, 1, 2, 3, 0), run(1000, 1, 1, 2, 0, 2)]);
    expect(merged.non2xx).toBe(3);
    expect(merged.socket_errors).toBe(2);
  });

  it('takes each latency percentile as the median of the slices’', () => {
    const merged = mergeWrk([run(100, 1, 1, 10), run(100, 1, 3, 30), run(100, 1, 2, 20), run(100, 1, 9, 90)]);
    expect(merged.latency_ms).toEqual({ p50: 2.5, p99: 25 });
    expect(mergeWrk([run(100, 1, 1, 10), run(100, 1, 5, 50), run(100, 1, 2, 20)]).latency_ms).toEqual({ p50: 2, p99: 20 });
  });

  it('leaves a single run as it is (the sequential measurement)', () => {
    const one = parseWrk(
      [
        'Running 7s test @ http://127.0.0.1:1/',
        '  Latency Distribution',
        '     50%  1.03ms',
        '     99%    3.19ms',
        '  150000 requests in 7.00s, 200.00MB read',
        'Requests/sec:  21428.57',
      ].join('\n'),
    );
    expect(mergeWrk([one])).toBe(one);
    expect(one.rps).toBeCloseTo(21428.57, 2);
    expect(one.requests).toBe(150000);
    expect(one.latency_ms).toEqual({ p50: 1.03, p99: 3.19 });
  });
});
