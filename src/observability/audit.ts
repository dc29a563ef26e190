/**
 * The audit step: after a request is answered (or cut), count it, record it in
 * the decision log (when on) and write one audit line (at debug when the
 * decision log is on, written as text by audit-line.ts). Runs for every request, allowed or not, so it is not a stage of
 * the list but the pipeline's last step (see pipeline/DESIGN.md).
 */

import type { WardenError } from '../core/errors.js';
import type { RequestState } from '../pipeline/context.js';
import { lineFraming, type Logger } from './logger.js';
import { auditFields, createAuditLineSerializer } from './audit-line.js';
import type { BoundCounter, BoundHistogram, Metrics } from './metrics.js';
import type { DecisionLog } from '../audit/decision-log.js';
import type { ActivityRing } from '../audit/activity.js';

/** One route's metric series and request-counter labels (see createAudit). */
interface RouteSeries {
  duration: BoundHistogram;
  upstream: BoundHistogram;
  /** decision → status → the request counter's series, bound (no label key is looked up per request). */
  requests: Map<string, Map<number, BoundCounter>>;
  lastDecision: string;
  lastStatus: number;
  lastCounter: BoundCounter | undefined;
}

/** Labels `{ route, [name]: value }` for a counter of rare events, each pair made once and frozen. */
function routeLabels(name: string): (route: string, value: string) => Readonly<Record<string, string>> {
  const made = new Map<string, Readonly<Record<string, string>>>();
  return (route, value) => {
    const k = `${route}\0${value}`;
    let l = made.get(k);
    if (!l) made.set(k, (l = Object.freeze({ route, [name]: value })));
    return l;
  };
}

/** Record one finished request; `err` is the error it was answered with, if any. */
export type Audit = (state: RequestState, err?: WardenError) => void;

/** Build the audit step for one config generation; `ring` keeps each user's recent decisions for the console when the decision log cannot be read back. */
export function createAudit({ logger, metrics }: { logger: Logger; metrics: Metrics }, decisions?: DecisionLog, ring?: Pick<ActivityRing, 'record'>): Audit {
  const shadowLabels = routeLabels('outcome');
  const cutLabels = routeLabels('by');
  // Per route: every series bound once (observing is a bucket search and three
  // additions, counting one addition; no label key per request). Most requests
  // of a route repeat the last decision and status: that pair is checked before
  // any map.
  const routeSeries = new Map<string, RouteSeries>();
  const seriesOf = (route: string) => {
    let s = routeSeries.get(route);
    if (!s) {
      const labels = { route };
      routeSeries.set(
        route,
        (s = {
          duration: metrics.histogram('warden_request_duration_seconds', labels),
          upstream: metrics.histogram('warden_upstream_duration_seconds', labels),
          requests: new Map(),
          lastDecision: '',
          lastStatus: -1,
          lastCounter: undefined,
        }),
      );
    }
    return s;
  };
  const requestsOf = (series: RouteSeries, route: string, decision: string, status: number): BoundCounter => {
    if (series.lastCounter !== undefined && series.lastStatus === status && series.lastDecision === decision) return series.lastCounter;
    let byStatus = series.requests.get(decision);
    if (!byStatus) series.requests.set(decision, (byStatus = new Map()));
    let c = byStatus.get(status);
    if (!c) {
      // Statuses come from upstreams: bound what one route keeps bound (a series once counted stays in the registry).
      if (byStatus.size > 1_000) byStatus.clear();
      byStatus.set(status, (c = metrics.counter('warden_requests_total', { route, decision, status: String(status) })));
    }
    series.lastDecision = decision;
    series.lastStatus = status;
    series.lastCounter = c;
    return c;
  };

  const lineLevel = decisions ? 'debug' : 'info';
  // The line as text straight into the logger's destination (audit-line.ts); through pino for a logger of unknown framing.
  const framing = lineFraming(logger, lineLevel, 'request');
  const auditLine = createAuditLineSerializer(framing?.tail);
  const metricsOn = metrics.enabled;

  return function audit(state, err) {
    const now = Date.now();
    const latencyMs = now - state.startedAt;
    const routeName = state.route?.name ?? '-';
    // Metrics off (observability.metrics.enabled: false): no label lookup at all.
    if (metricsOn) {
      const series = seriesOf(routeName);
      requestsOf(series, routeName, state.decision ?? 'error', state.status ?? 0).inc();
      series.duration.observe(latencyMs / 1000);
      // Upstream latency: to the upstream's status line, or to the failure that stood for it (refused, timed out).
      if (state.upstreamStartedAt !== undefined) {
        if (state.upstreamHeadersAt !== undefined) series.upstream.observe((state.upstreamHeadersAt - state.upstreamStartedAt) / 1000);
        else if (err?.code === 'upstream_unavailable') series.upstream.observe((performance.now() - state.upstreamStartedAt) / 1000);
      }
      if (state.shadowMode) {
        metrics.inc('warden_shadow_decisions_total', shadowLabels(routeName, state.shadow?.outcome ?? 'allow'));
      }
      if (state.cut !== undefined) metrics.inc('warden_responses_cut_total', cutLabels(routeName, state.cut));
    }
    decisions?.record(state, err, latencyMs);
    ring?.record(state, err);
    // Audit lines are written at info (at debug with the decision log on: its
    // record carries all they say and more); don't build lines nobody will write.
    if (!logger.isLevelEnabled(lineLevel)) return;
    if (framing) framing.write(auditLine(state, err, latencyMs, framing.head(now)));
    else logger[lineLevel](auditFields(state, err, latencyMs), 'request');
  };
}
