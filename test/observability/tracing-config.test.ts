/**
 * observability.tracing plus the OTEL_* environment: when tracing is on, where
 * it exports, with which headers and service name (tracing-config.ts).
 */

import { describe, expect, it } from 'vitest';
import { observabilitySchema } from '../../src/config/schema.js';
import { parseOtelHeaders, resolveTracing } from '../../src/observability/tracing-config.js';

/** `observability: { tracing: v }` as gateway.yaml would say it. */
const cfg = (v: Record<string, unknown> = {}) => observabilitySchema.parse({ tracing: v }).tracing;

describe('resolveTracing', () => {
  it('is off by default: no endpoint in gateway.yaml or the environment', () => {
    expect(resolveTracing(cfg(), {})).toBeNull();
  });

  it('takes gateway.yaml first, with its defaults', () => {
    const r = resolveTracing(cfg({ endpoint: 'http://collector:4318/v1/traces' }), { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://other:4318/v1/traces' });
    expect(r).toEqual({
      endpoint: 'http://collector:4318/v1/traces',
      headers: {},
      serviceName: 'warden',
      sampling: 1,
      parentBased: true,
      timeoutMs: 10_000,
      maxQueue: 2048,
      maxBatch: 512,
      flushIntervalMs: 5000,
    });
  });

  it('honours the standard environment variables', () => {
    const env = {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_SERVICE_NAME: 'gw-eu',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc,x-tenant=t1,broken',
    };
    expect(resolveTracing(cfg(), env)).toMatchObject({
      endpoint: 'http://collector:4318/v1/traces',
      serviceName: 'gw-eu',
      headers: { authorization: 'Bearer abc', 'x-tenant': 't1' },
    });
    // The signal-specific URL is used as is.
    expect(resolveTracing(cfg(), { ...env, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t.example/otlp' })?.endpoint).toBe('https://t.example/otlp');
    // gateway.yaml's service name and headers win.
    expect(resolveTracing(cfg({ service_name: 'mine', headers: { 'X-Key': 'k' } }), env)).toMatchObject({ serviceName: 'mine', headers: { 'x-key': 'k' } });
  });

  it('enabled: false wins over the environment; OTEL_SDK_DISABLED turns env-configured tracing off', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
    expect(resolveTracing(cfg({ enabled: false, endpoint: 'http://c:4318/v1/traces' }), env)).toBeNull();
    expect(resolveTracing(cfg(), { ...env, OTEL_SDK_DISABLED: 'true' })).toBeNull();
    expect(resolveTracing(cfg({ enabled: true }), { ...env, OTEL_SDK_DISABLED: 'true' })).not.toBeNull();
  });

  it('refuses an endpoint from the environment that is not an http(s) URL (at startup)', () => {
    expect(() => resolveTracing(cfg(), { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector:4318' })).toThrow(/not an http\(s\) URL/);
  });

  it('the schema bounds sampling and batch sizes; a batch never exceeds the queue', () => {
    expect(() => cfg({ sampling: 1.5 })).toThrow();
    expect(() => cfg({ sampling: -0.1 })).toThrow();
    expect(() => cfg({ max_queue: 0 })).toThrow();
    expect(() => cfg({ endpoint: 'grpc://collector:4317' })).toThrow();
    expect(resolveTracing(cfg({ endpoint: 'http://c/v1/traces', max_queue: 10, max_batch: 100 }), {})?.maxBatch).toBe(10);
  });

  it('parses OTEL header lists leniently, skipping malformed entries', () => {
    expect(parseOtelHeaders(' a=1 , b = x%3Dy ,=bad, c')).toEqual({ a: '1', b: 'x=y' });
    expect(parseOtelHeaders(undefined)).toEqual({});
  });
});
