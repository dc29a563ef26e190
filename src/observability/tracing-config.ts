/**
 * `observability.tracing` plus the standard OTEL_* environment variables,
 * resolved once per config generation into what the exporter needs (or null:
 * tracing off). gateway.yaml wins over the environment, key by key.
 */

import type { TracingConfig } from '../config/schema.js';

/** Tracing as it will run; null from `resolveTracing` means off. */
export interface ResolvedTracing {
  /** Full URL of the OTLP/HTTP traces endpoint. */
  endpoint: string;
  /** Secret-safe: sent to the collector only, never logged. */
  headers: Record<string, string>;
  serviceName: string;
  sampling: number;
  parentBased: boolean;
  timeoutMs: number;
  maxQueue: number;
  maxBatch: number;
  flushIntervalMs: number;
}

const TRUE = /^\s*true\s*$/i;

/** `key=value,key2=value2` (values URL-encoded), as OTEL_EXPORTER_OTLP_HEADERS is written; malformed entries are skipped. */
export function parseOtelHeaders(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const entry of text.split(',')) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    const name = entry.slice(0, eq).trim();
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) continue;
    let value = entry.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep it as written
    }
    out[name.toLowerCase()] = value;
  }
  return out;
}

/** The traces endpoint from the environment: the signal-specific URL as is, else the base URL + `/v1/traces`. */
function envEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (base) return `${base.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

/** Null when tracing is off: `enabled: false`, OTEL_SDK_DISABLED=true without `enabled: true`, or no endpoint anywhere. */
export function resolveTracing(cfg: TracingConfig, env: NodeJS.ProcessEnv): ResolvedTracing | null {
  if (cfg.enabled === false) return null;
  if (cfg.enabled === undefined && TRUE.test(env.OTEL_SDK_DISABLED ?? '')) return null;
  const endpoint = cfg.endpoint ?? envEndpoint(env);
  if (!endpoint) return null;
  if (!/^https?:\/\/[^/]/.test(endpoint) || !URL.canParse(endpoint)) {
    // Fail at startup, not per export: the value came from the environment (gateway.yaml's is checked by the schema).
    throw new Error('observability.tracing: the OTLP traces endpoint from OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is not an http(s) URL');
  }
  const headers = cfg.headers
    ? Object.fromEntries(Object.entries(cfg.headers).map(([k, v]) => [k.toLowerCase(), v]))
    : parseOtelHeaders(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS);
  return {
    endpoint,
    headers,
    serviceName: cfg.service_name ?? (env.OTEL_SERVICE_NAME?.trim() || 'warden'),
    sampling: cfg.sampling,
    parentBased: cfg.parent_based,
    timeoutMs: cfg.timeout,
    maxQueue: cfg.max_queue,
    maxBatch: Math.min(cfg.max_batch, cfg.max_queue),
    flushIntervalMs: cfg.flush_interval,
  };
}
