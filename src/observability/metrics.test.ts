import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

describe('metrics', () => {
  it('renders cumulative histogram buckets, sum and count', () => {
    const m = createMetrics({ latency: 'request latency' });
    m.observe('latency', 0.0007, { route: 'a' });
    m.observe('latency', 0.003, { route: 'a' });
    m.observe('latency', 99, { route: 'a' });
    const text = m.render();
    expect(text).toContain('# HELP latency request latency');
    expect(text).toContain('latency_bucket{route="a",le="0.0005"} 0');
    expect(text).toContain('latency_bucket{route="a",le="0.001"} 1');
    expect(text).toContain('latency_bucket{route="a",le="0.005"} 2');
    expect(text).toContain('latency_bucket{route="a",le="30"} 2');
    expect(text).toContain('latency_bucket{route="a",le="+Inf"} 3');
    expect(text).toContain('latency_count{route="a"} 3');
  });

  it('keys counters by label values whether or not the label object is reused', () => {
    const m = createMetrics();
    const frozen = Object.freeze({ b: '2', a: '1' });
    m.inc('c', frozen);
    m.inc('c', frozen);
    m.inc('c', { a: '1', b: '2' });
    m.inc('c', { a: 'x"y', b: '2' });
    expect(m.render()).toContain('c{a="1",b="2"} 3');
    expect(m.render()).toContain('c{a="x_y",b="2"} 1');
  });

  it('bound series add to the same series as inc/observe, and snapshot() has prom-client’s shape', () => {
    const m = createMetrics({ g: { help: 'a gauge', aggregator: 'max' } });
    const c = m.counter('c', { a: '1' });
    c.inc();
    c.inc(2);
    m.inc('c', { a: '1' });
    const h = m.histogram('h', { r: 'x' });
    h.observe(0.002);
    m.observe('h', 0.2, { r: 'x' });
    m.gauge('g', 7);
    expect(m.render()).toContain('c{a="1"} 4');
    expect(m.render()).toContain('h_count{r="x"} 2');
    const snap = m.snapshot();
    expect(snap.find((f) => f.name === 'c')).toEqual({ name: 'c', help: '', type: 'counter', aggregator: 'sum', values: [{ value: 4, labels: { a: '1' } }] });
    expect(snap.find((f) => f.name === 'g')).toMatchObject({ type: 'gauge', aggregator: 'max', help: 'a gauge', values: [{ value: 7, labels: {} }] });
    const hist = snap.find((f) => f.name === 'h')!;
    expect(hist.values).toContainEqual({ value: 1, labels: { r: 'x', le: 0.0025 }, metricName: 'h_bucket' });
    expect(hist.values).toContainEqual({ value: 2, labels: { r: 'x', le: '+Inf' }, metricName: 'h_bucket' });
    expect(hist.values).toContainEqual({ value: 2, labels: { r: 'x' }, metricName: 'h_count' });
  });
});
