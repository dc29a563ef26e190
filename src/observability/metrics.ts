/**
 * Prometheus metrics in text exposition format, kept in the instance (no
 * module-level registry), served on the admin listener only.
 *
 * Hot paths bind a series once (`counter(name, labels)`, `histogram(name,
 * labels)`) and then only add numbers: no label key, map lookup or object per
 * request. `snapshot()` gives the same series in prom-client's JSON shape so a
 * cluster primary can sum every worker's (see cluster-metrics.ts).
 */

type Labels = Record<string, string>;

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

// Hot callers pass frozen label objects they reuse; their keys are computed once.
const frozenKeys = new WeakMap<Labels, string>();

function labelKey(labels: Labels): string {
  if (Object.isFrozen(labels)) {
    let key = frozenKeys.get(labels);
    if (key === undefined) frozenKeys.set(labels, (key = computeKey(labels)));
    return key;
  }
  return computeKey(labels);
}

const clean = (v: unknown) => String(v).replace(/["\\\n]/g, '_');

function computeKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${clean(labels[k])}"`)
    .join(',');
}

/** How a cluster primary combines one gauge over its workers (prom-client's aggregator names); counters and histograms are summed. */
export type Aggregator = 'sum' | 'first' | 'min' | 'max' | 'omit';

/** Help text and (for gauges) how workers combine, per metric family. */
export interface MetricInfo {
  help: string;
  aggregator?: Aggregator;
}

/** One series bound to fixed labels: `inc(by = 1)`. */
export interface BoundCounter {
  inc(by?: number): void;
}

/** One histogram series bound to fixed labels: `observe(seconds)`. */
export interface BoundHistogram {
  observe(seconds: number): void;
}

/** A metric family in prom-client's `getMetricsAsJSON()` shape. */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: Aggregator;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

export interface Metrics {
  /** False for the registry of `observability.metrics.enabled: false` (createDisabledMetrics): callers may skip building labels. */
  readonly enabled: boolean;
  inc(name: string, labels?: Labels, by?: number): void;
  observe(name: string, seconds: number, labels?: Labels): void;
  gauge(name: string, value: number, labels?: Labels): void;
  /** Bind a counter series once; its `inc` is one addition. */
  counter(name: string, labels?: Labels): BoundCounter;
  /** Bind a histogram series once; its `observe` is a bucket search and three additions. */
  histogram(name: string, labels?: Labels): BoundHistogram;
  render(): string;
  snapshot(): MetricSnapshot[];
}

interface Cell {
  v: number;
  labels: Labels;
}
interface Histo {
  counts: number[];
  sum: number;
  count: number;
  labels: Labels;
}

/** A small registry: counters, gauges and fixed-bucket histograms. */
export function createMetrics(info: Record<string, string | MetricInfo> = {}): Metrics {
  const counters = new Map<string, Map<string, Cell>>();
  const gauges = new Map<string, Map<string, Cell>>();
  const histos = new Map<string, Map<string, Histo>>();
  const helpOf = (name: string) => {
    const i = info[name];
    return typeof i === 'string' ? i : (i?.help ?? '');
  };
  const aggregatorOf = (name: string, fallback: Aggregator): Aggregator => {
    const i = info[name];
    return (typeof i === 'object' && i.aggregator) || fallback;
  };

  const series = <T>(m: Map<string, Map<string, T>>, name: string) => {
    let s = m.get(name);
    if (!s) m.set(name, (s = new Map()));
    return s;
  };
  const cell = (m: Map<string, Map<string, Cell>>, name: string, labels: Labels): Cell => {
    const s = series(m, name);
    const k = labelKey(labels);
    let c = s.get(k);
    if (!c) s.set(k, (c = { v: 0, labels: { ...labels } }));
    return c;
  };
  const histo = (name: string, labels: Labels): Histo => {
    const s = series(histos, name);
    const k = labelKey(labels);
    let h = s.get(k);
    if (!h) s.set(k, (h = { counts: new Array<number>(BUCKETS.length).fill(0), sum: 0, count: 0, labels: { ...labels } }));
    return h;
  };
  const record = (h: Histo, seconds: number) => {
    // Count in the first matching bucket only; render() accumulates.
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]) i++;
    if (i < BUCKETS.length) h.counts[i]++;
    h.sum += seconds;
    h.count++;
  };

  return {
    enabled: true,
    inc(name, labels = {}, by = 1) {
      cell(counters, name, labels).v += by;
    },
    gauge(name, value, labels = {}) {
      cell(gauges, name, labels).v = value;
    },
    observe(name, seconds, labels = {}) {
      record(histo(name, labels), seconds);
    },
    counter(name, labels = {}) {
      const c = cell(counters, name, labels);
      return {
        inc(by = 1) {
          c.v += by;
        },
      };
    },
    histogram(name, labels = {}) {
      const h = histo(name, labels);
      return { observe: (seconds) => record(h, seconds) };
    },
    render() {
      const out: string[] = [];
      const head = (name: string, type: string) => {
        const help = helpOf(name);
        if (help) out.push(`# HELP ${name} ${help}`);
        out.push(`# TYPE ${name} ${type}`);
      };
      const wrap = (k: string, extra = '') => {
        const inner = [k, extra].filter(Boolean).join(',');
        return inner ? `{${inner}}` : '';
      };
      for (const [name, s] of counters) {
        head(name, 'counter');
        for (const [k, c] of s) out.push(`${name}${wrap(k)} ${c.v}`);
      }
      for (const [name, s] of gauges) {
        head(name, 'gauge');
        for (const [k, c] of s) out.push(`${name}${wrap(k)} ${c.v}`);
      }
      for (const [name, s] of histos) {
        head(name, 'histogram');
        for (const [k, h] of s) {
          let cumulative = 0;
          BUCKETS.forEach((b, i) => out.push(`${name}_bucket${wrap(k, `le="${b}"`)} ${(cumulative += h.counts[i])}`));
          out.push(`${name}_bucket${wrap(k, 'le="+Inf"')} ${h.count}`);
          out.push(`${name}_sum${wrap(k)} ${h.sum}`);
          out.push(`${name}_count${wrap(k)} ${h.count}`);
        }
      }
      return out.join('\n') + '\n';
    },
    snapshot() {
      const out: MetricSnapshot[] = [];
      const labelsOf = (l: Labels) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, clean(v)]));
      for (const [name, s] of counters) {
        out.push({
          name,
          help: helpOf(name),
          type: 'counter',
          aggregator: 'sum',
          values: [...s.values()].map((c) => ({ value: c.v, labels: labelsOf(c.labels) })),
        });
      }
      for (const [name, s] of gauges) {
        out.push({
          name,
          help: helpOf(name),
          type: 'gauge',
          aggregator: aggregatorOf(name, 'sum'),
          values: [...s.values()].map((c) => ({ value: c.v, labels: labelsOf(c.labels) })),
        });
      }
      for (const [name, s] of histos) {
        const values: MetricSnapshot['values'] = [];
        for (const h of s.values()) {
          const labels = labelsOf(h.labels);
          let cumulative = 0;
          BUCKETS.forEach((b, i) => values.push({ value: (cumulative += h.counts[i]), labels: { ...labels, le: b }, metricName: `${name}_bucket` }));
          values.push({ value: h.count, labels: { ...labels, le: '+Inf' }, metricName: `${name}_bucket` });
          values.push({ value: h.sum, labels, metricName: `${name}_sum` });
          values.push({ value: h.count, labels, metricName: `${name}_count` });
        }
        out.push({ name, help: helpOf(name), type: 'histogram', aggregator: 'sum', values });
      }
      return out;
    },
  };
}

const NOOP_COUNTER: BoundCounter = Object.freeze({ inc() {} });
const NOOP_HISTOGRAM: BoundHistogram = Object.freeze({ observe() {} });

/**
 * The registry with metrics off (`observability.metrics.enabled: false`):
 * every call does nothing, bound series are shared no-ops, nothing is kept.
 */
export function createDisabledMetrics(): Metrics {
  return {
    enabled: false,
    inc() {},
    observe() {},
    gauge() {},
    counter: () => NOOP_COUNTER,
    histogram: () => NOOP_HISTOGRAM,
    render: () => '',
    snapshot: () => [],
  };
}
