/**
 * The OTLP/HTTP traces receiver the tracing tests export to: a Python process
 * (otlp-receiver.py) that decodes what Warden sends with the OpenTelemetry
 * project's official protobuf bindings, as a collector's OTLP receiver does.
 * No OpenTelemetry Collector binary installs here (Debian has none, and `go
 * install` is reserved for OpenFGA); scripts/test-setup.mjs installs the
 * bindings into .test-deps/python.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './gateway.js';

export const OTLP_PYTHON_PATH = join(REPO_ROOT, '.test-deps/python');

/** One span as the receiver decoded it (ids in lower-case hex). */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  startTimeUnixNano: number;
  endTimeUnixNano: number;
  attributes: Record<string, unknown>;
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  status: { code: number; message: string };
  resource: Record<string, unknown>;
  scope: string;
}

export interface OtlpReceiver {
  /** The traces endpoint (`…/v1/traces`). */
  readonly endpoint: string;
  spans(): Promise<ReceivedSpan[]>;
  /** One entry per export request: its span count and request headers. */
  exports(): Promise<Array<{ spans: number; headers: Record<string, string> }>>;
  /** Answer exports with `status` from now on (200 = accept again). */
  setStatus(status: number): Promise<void>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Start the receiver on a free loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  if (!existsSync(join(OTLP_PYTHON_PATH, 'opentelemetry/proto'))) {
    throw new Error('the OTLP protobuf bindings are missing: run `node scripts/test-setup.mjs` (installs opentelemetry-proto into .test-deps/python)');
  }
  const child: ChildProcess = spawn('python3', [join(REPO_ROOT, 'test/support/otlp-receiver.py')], {
    env: { ...process.env, PYTHONPATH: OTLP_PYTHON_PATH, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`OTLP receiver did not start:\n${output}`)), 15_000);
    const onData = (c: Buffer) => {
      output += c.toString('utf8');
      const m = /listening (\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`OTLP receiver exited (${code}):\n${output}`));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5000) });
    return (await res.json()) as T;
  };
  const put = async (path: string) => {
    await fetch(`${base}${path}`, { method: 'PUT', signal: AbortSignal.timeout(5000) });
  };
  return {
    endpoint: `${base}/v1/traces`,
    spans: () => get<ReceivedSpan[]>('/spans'),
    exports: () => get('/exports'),
    setStatus: (status) => put(`/mode?status=${status}`),
    reset: () => put('/reset'),
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
