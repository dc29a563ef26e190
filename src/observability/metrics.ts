/**
 * Prometheus metrics in text exposition format, kept in the instance (no
 * module-level registry), served on the admin listener only.
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

function computeKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, '_')}"`)
    .join(',');
}

export interface Metrics {
  inc(name: string, labels?: Labels, by?: number): void;
  observe(name: string, seconds: number, labels?: Labels): void;
  gauge(name: string, value: number, labels?: Labels): void;
  render(): string;
}

/** A small registry: counters, gauges and fixed-bucket histograms. */
export function createMetrics(help: Record<string, string> = {}): Metrics {
  const counters = new Map<string, Map<string, number>>();
  const gauges = new Map<string, Map<string, number>>();
  const histos = new Map<string, Map<string, { counts: number[]; sum: number; count: number }>>();

  const series = <T>(m: Map<string, Map<string, T>>, name: string) => {
    let s = m.get(name);
    if (!s) m.set(name, (s = new Map()));
    return s;
  };

  return {
    inc(name, labels = {}, by = 1) {
      const s = series(counters, name);
      const k = labelKey(labels);
      s.set(k, (s.get(k) ?? 0) + by);
    },
    gauge(name, value, labels = {}) {
      series(gauges, name).set(labelKey(labels), value);
    },
    observe(name, seconds, labels = {}) {
      const s = series(histos, name);
      const k = labelKey(labels);
      let h = s.get(k);
      if (!h) s.set(k, (h = { counts: new Array(BUCKETS.length).fill(0), sum: 0, count: 0 }));
      // Count in the first matching bucket only; render() accumulates.
      let i = 0;
      while (i < BUCKETS.length && seconds > BUCKETS[i]) i++;
      if (i < BUCKETS.length) h.counts[i]++;
      h.sum += seconds;
      h.count++;
    },
    render() {
      const out: string[] = [];
      const head = (name: string, type: string) => {
        if (help[name]) out.push(`# HELP ${name} ${help[name]}`);
        out.push(`# TYPE ${name} ${type}`);
      };
      const wrap = (k: string, extra = '') => {
        const inner = [k, extra].filter(Boolean).join(',');
        return inner ? `{${inner}}` : '';
      };
      for (const [name, s] of counters) {
        head(name, 'counter');
        for (const [k, v] of s) out.push(`${name}${wrap(k)} ${v}`);
      }
      for (const [name, s] of gauges) {
        head(name, 'gauge');
        for (const [k, v] of s) out.push(`${name}${wrap(k)} ${v}`);
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
  };
}
