/**
 * Help text (and, for gauges, how a cluster primary combines its workers) of
 * the metric families the gateway declares up front. Families counted by a
 * feature without an entry here are still exported, without HELP.
 */

import type { MetricInfo } from './metrics.js';

export const METRICS: Record<string, MetricInfo> = {
  warden_requests_total: { help: 'Requests by route, decision and status' },
  warden_responses_cut_total: {
    help: 'Answers that did not reach the agent whole, by route and by whom: agent (it closed the connection first) | upstream (it broke off or went silent mid-answer)',
  },
  warden_request_duration_seconds: { help: 'Time from request to response headers (or error), seconds' },
  warden_upstream_duration_seconds: {
    help: 'Time from dispatching a request to its upstream until the upstream answered with a status line (or failed), seconds, by route',
  },
  warden_authz_check_duration_seconds: {
    help: 'Time the authorization engine (embedded | openfga) took to answer a check or batch check the decision cache could not, seconds',
  },
  warden_authz_cache_total: { help: 'Decision cache lookups by result (hit | miss | bypass)' },
  warden_approvals_pending: {
    help: 'Approvals waiting for a human decision, counted in the shared store at scrape time (the same value on every instance)',
    aggregator: 'max',
  },
  warden_push_notifications_total: {
    help: 'Web Push deliveries of new approvals, one per browser, by result (sent | gone: 404/410, subscription removed | failed | timeout | refused: endpoint rule)',
  },
  warden_approval_decisions_total: { help: 'Approvals decided, by outcome status (approved | denied | expired) and by whom' },
  warden_config_reloads_total: { help: 'Configuration reloads by result (success | failure)' },
  warden_config_last_reload_success_timestamp_seconds: {
    help: 'Unix time of the last configuration load that succeeded (startup or reload); with workers, the oldest over them',
    aggregator: 'min',
  },
  warden_metrics_collect_errors_total: { help: 'Scrape-time collectors that failed (the gauge keeps its previous value)' },
  warden_jwks_fetches_total: { help: 'JWKS fetches by issuer and outcome (ok | error)' },
  warden_vault_refresh_total: { help: 'Vault token refreshes by provider and result' },
  warden_tracing_exported_spans_total: { help: 'Spans accepted by the OTLP traces endpoint' },
  warden_tracing_dropped_spans_total: {
    help: 'Spans dropped, by reason: queue_full (collector slow or down), export_failed, shut_down',
  },
  warden_vault_refresh_seconds: { help: 'Time a vault token refresh took, seconds, by provider' },
};
