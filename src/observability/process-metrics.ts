/**
 * Process-level Prometheus metrics from prom-client: the default process and
 * Node.js collectors (CPU, memory, heap, GC, event-loop lag, handles) and
 * `warden_build_info`. Its registry is per gateway (never prom-client's global
 * one) and is created on the first scrape, so nothing here runs on the request
 * path and an instance nobody scrapes pays nothing.
 */

import { readFileSync } from 'node:fs';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricSnapshot } from './metrics.js';

/** What /metrics appends after Warden's own request metrics. */
export interface ProcessMetrics {
  render(): Promise<string>;
  /** The same in prom-client's JSON shape (for the cluster primary to combine workers). */
  snapshot(): Promise<MetricSnapshot[]>;
}

/** Warden's package.json version, from src/ (tests) or dist/src/ (built). */
export function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'warden' && pkg.version) return pkg.version;
    } catch {
      // not at this depth
    }
  }
  return 'unknown';
}

/** Process and build metrics for one gateway; the collectors start at the first `render()`. */
export function createProcessMetrics(): ProcessMetrics {
  let registry: Registry | undefined;
  const build = (): Registry => {
    const r = new Registry();
    collectDefaultMetrics({ register: r });
    new Gauge({
      name: 'warden_build_info',
      help: 'Always 1; the labels say which Warden and Node.js are running',
      labelNames: ['version', 'node'],
      registers: [r],
      aggregator: 'first',
    }).set({ version: packageVersion(), node: process.versions.node }, 1);
    return r;
  };
  return {
    async render() {
      registry ??= build();
      return registry.metrics();
    },
    async snapshot() {
      registry ??= build();
      return (await registry.getMetricsAsJSON()) as unknown as MetricSnapshot[];
    },
  };
}
