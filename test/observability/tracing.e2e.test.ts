/**
 * OpenTelemetry traces end to end, with real processes: `warden start` (dist/)
 * exports over OTLP/HTTP to a receiver that decodes with the OpenTelemetry
 * project's protobuf bindings (test/support/otlp-receiver.py: no Collector
 * binary installs here), and forwards to a recording upstream.
 *
 * A request carrying a traceparent produces a server span under the caller's
 * span, one child per stage and one for the upstream call, with the upstream
 * receiving that trace and the upstream span as its parent; refusals carry
 * error status; sampling 0 exports nothing; with sampling 0 and parent-based
 * sampling an unsampled request exports nothing yet sends the upstream a valid
 * traceparent (same trace, new parent id, flag clear) while a caller-sampled
 * one is recorded; a dead collector fails no request and its dropped spans
 * are counted.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDevIssuer } from '../../src/identity/dev-issuer.js';
import { CLI, requireBuiltCli } from '../support/cli.js';
import { until } from '../support/eventually.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;
const ERROR = 2;
const COLLECTOR_SECRET = 'otlp-secret-4c1d9e';

/** One public URL for every instance: the dev issuer's tokens name it. */
const PUBLIC_URL = 'http://warden.test';

const gatewayYaml = (tracing: string) => `
server:
  listen: 127.0.0.1:8080
  admin_listen: null
  public_url: ${PUBLIC_URL}
identity:
  dev_issuer: true
authz:
  engine: embedded
  model: ${join(REPO_ROOT, 'test/approvals/fixtures/model.fga')}
  tuples: ${join(REPO_ROOT, 'test/approvals/fixtures/tuples.yaml')}
observability:
  tracing:
${tracing}
routes:
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
`;

interface Instance {
  url: string;
  adminUrl: string;
  child: ChildProcess;
  output: () => string;
}

const hex = (bytes: number) =>
  Array.from({ length: bytes }, () =>
    Math.floor(Math.random() * 256)
      .toString(16)
      .padStart(2, '0'),
  ).join('');

describe('OpenTelemetry tracing (warden start → OTLP/HTTP receiver)', () => {
  let receiver: OtlpReceiver;
  let upstream: Upstream;
  let dir: string;
  const running = new Set<ChildProcess>();
  let token: (agent: string, user: string) => Promise<string>;

  /** Start Warden on fresh ports; again on others when one was taken between the pick and the bind (EADDRINUSE). */
  async function launch(name: string, tracing: string, extraEnv: Record<string, string> = {}): Promise<Instance> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await launchOnce(name, tracing, extraEnv);
      } catch (err) {
        if (attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err;
      }
    }
  }

  async function launchOnce(name: string, tracing: string, extraEnv: Record<string, string>): Promise<Instance> {
    const [port, adminPort] = [await freePort(), await freePort()];
    const url = `http://127.0.0.1:${port}`;
    const configFile = join(dir, `${name}.yaml`);
    writeFileSync(configFile, gatewayYaml(tracing));
    let out = '';
    const child = spawn(process.execPath, [CLI, 'start', '-c', configFile], {
      cwd: dir,
      env: {
        ...process.env,
        NODE_ENV: 'test',
        WARDEN_DATA_DIR: join(dir, 'data'),
        WARDEN_LISTEN: `127.0.0.1:${port}`,
        WARDEN_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
        UPSTREAM_URL: upstream.url,
        OTLP_TOKEN: COLLECTOR_SECRET,
        WARDEN_LOG_LEVEL: 'info',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    child.on('exit', () => running.delete(child));
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`warden exited early:\n${out}`);
      const ok = await fetch(`${url}/.warden/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`warden did not start:\n${out}`);
      await sleep(100);
    }
    return { url, adminUrl: `http://127.0.0.1:${adminPort}`, child, output: () => out };
  }

  const spansOf = async (traceId: string) => (await receiver.spans()).filter((s) => s.traceId === traceId);
  /** Wait until the trace's server span arrived (it ends last), then return the whole trace. */
  const traceOf = async (traceId: string): Promise<ReceivedSpan[]> => {
    await until(async () => (await spansOf(traceId)).some((s) => s.kind === SERVER), { timeoutMs: 10_000, intervalMs: 50 });
    return spansOf(traceId);
  };

  beforeAll(async () => {
    requireBuiltCli();
    receiver = await startOtlpReceiver();
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-tracing-'));
    // The dev issuer key is made once, before processes could race to create it.
    const issuer = await loadDevIssuer({ dataDir: join(dir, 'data'), publicUrl: PUBLIC_URL });
    token = (agent, user) => issuer.issue({ agent, user, scopes: [], ttlSeconds: 3600 });
  });

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await receiver?.close();
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('sampling 1 (the default), exporting to the receiver', () => {
    let warden: Instance;

    beforeAll(async () => {
      warden = await launch(
        'traced',
        `    endpoint: ${receiver.endpoint}
    service_name: warden-test
    flush_interval: 100ms
    headers: { authorization: "Bearer \${OTLP_TOKEN}" }`,
      );
    });

    it('continues the caller’s trace: server span, one span per stage, the upstream call, and the upstream joins the trace', async () => {
      const traceId = hex(16);
      const callerSpan = hex(8);
      const agentToken = await token('bot', 'alice');
      const res = await fetch(`${warden.url}/pay/acme/invoices?limit=5`, {
        headers: { authorization: `Bearer ${agentToken}`, traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=abc,other=1' },
      });
      expect(res.status).toBe(200);

      const spans = await traceOf(traceId);
      const server = spans.find((s) => s.kind === SERVER)!;
      expect(server.parentSpanId).toBe(callerSpan);
      expect(server.name).toBe('GET /pay/:account/**');
      expect(server.status.code).not.toBe(ERROR);
      expect(server.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.path': '/pay/acme/invoices',
        'http.route': '/pay/:account/**',
        'warden.route': 'pay',
        'http.response.status_code': 200,
        'warden.decision': 'allow',
        'warden.agent': 'bot',
      });
      expect(server.resource['service.name']).toBe('warden-test');
      // service.version: Warden's package version, as `warden --version` prints it.
      expect(server.resource['service.version']).toBe(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
      expect(server.scope).toBe('warden');

      const stages = spans.filter((s) => s.kind === INTERNAL);
      expect(stages.map((s) => s.name)).toEqual(expect.arrayContaining(['warden.authenticate', 'warden.authorize']));
      for (const s of stages) {
        expect(s.parentSpanId).toBe(server.spanId);
        expect(s.attributes['warden.stage.outcome']).toBe('ok');
        expect(s.status.code).not.toBe(ERROR);
        expect(s.startTimeUnixNano).toBeGreaterThanOrEqual(server.startTimeUnixNano);
        expect(s.endTimeUnixNano).toBeLessThanOrEqual(server.endTimeUnixNano);
      }
      // Stages run in pipeline order, one after the other.
      const ordered = [...stages].sort((a, b) => a.startTimeUnixNano - b.startTimeUnixNano).map((s) => s.name);
      expect(ordered.indexOf('warden.authenticate')).toBeLessThan(ordered.indexOf('warden.authorize'));

      const client = spans.filter((s) => s.kind === CLIENT);
      expect(client).toHaveLength(1);
      expect(client[0].parentSpanId).toBe(server.spanId);
      expect(client[0].name).toBe('upstream GET');
      expect(client[0].attributes).toMatchObject({
        'http.request.method': 'GET',
        'http.response.status_code': 200,
        'server.address': '127.0.0.1',
        'url.full': `${upstream.url}/acme/invoices`,
      });
      // The caller's tracestate travels with the trace.
      expect(client[0].traceState).toBe('vendor=abc,other=1');

      // The upstream saw the same trace, with Warden's upstream span as its parent.
      const forwarded = upstream.requests.find((r) => r.url === '/acme/invoices?limit=5')!;
      expect(forwarded.headers.traceparent).toBe(`00-${traceId}-${client[0].spanId}-01`);
      expect(forwarded.headers.tracestate).toBe('vendor=abc,other=1');

      // No token or credential in any span; the collector got its own credential.
      const everything = JSON.stringify(spans);
      expect(everything).not.toContain(agentToken);
      expect(everything).not.toContain(agentToken.split('.')[1]);
      expect(everything).not.toContain(COLLECTOR_SECRET);
      expect(everything).not.toContain('limit=5');
      const exports = await receiver.exports();
      expect(exports.length).toBeGreaterThan(0);
      expect(exports.every((e) => e.headers.authorization === `Bearer ${COLLECTOR_SECRET}`)).toBe(true);
      expect(warden.output()).not.toContain(COLLECTOR_SECRET);
    });

    it('a request without traceparent starts a new trace, with the same shape', async () => {
      const before = upstream.requests.length;
      const res = await fetch(`${warden.url}/pay/acme/new`, { headers: { authorization: `Bearer ${await token('bot', 'alice')}` } });
      expect(res.status).toBe(200);
      const sent = upstream.requests.slice(before).find((r) => r.url === '/acme/new')!;
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(sent.headers.traceparent));
      expect(m).not.toBeNull();
      const spans = await traceOf(m![1]);
      const server = spans.find((s) => s.kind === SERVER)!;
      expect(server.parentSpanId).toBe('');
      expect(spans.find((s) => s.kind === CLIENT)!.spanId).toBe(m![2]);
      expect(sent.headers.tracestate).toBeUndefined();
    });

    it('a refusal marks the refusing stage and the server span with error status; nothing reaches the upstream', async () => {
      const traceId = hex(16);
      const before = upstream.requests.length;
      // bob does not own account acme.
      const res = await fetch(`${warden.url}/pay/acme/invoices`, {
        headers: { authorization: `Bearer ${await token('bot', 'bob')}`, traceparent: `00-${traceId}-${hex(8)}-01` },
      });
      expect(res.status).toBe(403);
      expect(upstream.requests.length).toBe(before);

      const spans = await traceOf(traceId);
      const server = spans.find((s) => s.kind === SERVER)!;
      expect(server.status.code).toBe(ERROR);
      expect(server.attributes).toMatchObject({ 'warden.decision': 'deny', 'http.response.status_code': 403, 'error.type': 'forbidden' });
      const authorize = spans.find((s) => s.name === 'warden.authorize')!;
      expect(authorize.status).toEqual({ code: ERROR, message: 'forbidden' });
      expect(authorize.attributes['warden.stage.outcome']).toBe('deny');
      expect(spans.find((s) => s.name === 'warden.authenticate')!.status.code).not.toBe(ERROR);
      expect(spans.some((s) => s.kind === CLIENT)).toBe(false);
      // Stages after the refusal never ran.
      expect(spans.some((s) => s.name === 'warden.credentials' || s.name === 'warden.approve')).toBe(false);
    });

    it('a request without a valid token: the authenticate span fails, with the error code, not the token', async () => {
      const traceId = hex(16);
      const res = await fetch(`${warden.url}/pay/acme/x`, {
        headers: { authorization: 'Bearer not.a.jwt-secretish', traceparent: `00-${traceId}-${hex(8)}-01` },
      });
      expect(res.status).toBe(401);
      const spans = await traceOf(traceId);
      const auth = spans.find((s) => s.name === 'warden.authenticate')!;
      expect(auth.status.code).toBe(ERROR);
      expect(auth.attributes['warden.stage.outcome']).toBe('deny');
      expect(spans.find((s) => s.kind === SERVER)!.attributes['warden.agent']).toBeUndefined();
      expect(JSON.stringify(spans)).not.toContain('secretish');
    });

    it('counts what it exported on /metrics', async () => {
      const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
      const m = /^warden_tracing_exported_spans_total (\d+)/m.exec(text);
      expect(Number(m?.[1])).toBeGreaterThan(0);
    });
  });

  it('sampling 0 (parent_based: false) exports nothing, and the upstream still joins the caller’s trace', async () => {
    const warden = await launch(
      'unsampled',
      `    endpoint: ${receiver.endpoint}
    sampling: 0
    parent_based: false
    flush_interval: 50ms`,
    );
    await receiver.reset();
    const t = await token('bot', 'alice');
    const traceId = hex(16);
    const r1 = await fetch(`${warden.url}/pay/acme/s0`, { headers: { authorization: `Bearer ${t}`, traceparent: `00-${traceId}-${hex(8)}-01` } });
    const r2 = await fetch(`${warden.url}/pay/acme/s0b`, { headers: { authorization: `Bearer ${t}` } });
    const r3 = await fetch(`${warden.url}/pay/bobco/s0c`, { headers: { authorization: `Bearer ${t}` } });
    expect([r1.status, r2.status, r3.status]).toEqual([200, 200, 403]);
    // Several flush intervals: nothing may arrive.
    await sleep(500);
    expect(await receiver.spans()).toEqual([]);
    expect(await receiver.exports()).toEqual([]);
    const sent = upstream.requests.find((r) => r.url === '/acme/s0')!;
    expect(sent.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    warden.child.kill('SIGTERM');
  });

  describe('sampling 0, parent-based (the default): the caller decides for the traces it started', () => {
    let warden: Instance;

    beforeAll(async () => {
      warden = await launch(
        'parent-based',
        `    endpoint: ${receiver.endpoint}
    sampling: 0
    flush_interval: 50ms`,
      );
    });

    afterAll(() => {
      warden?.child.kill('SIGTERM');
    });

    it('an unsampled request produces no span and still sends the upstream a valid traceparent: same trace, new parent id, sampled flag clear', async () => {
      await receiver.reset();
      const t = await token('bot', 'alice');
      const traceId = hex(16);
      const callerSpan = hex(8);
      const before = upstream.requests.length;
      const byParent = await fetch(`${warden.url}/pay/acme/pb-unsampled`, {
        headers: { authorization: `Bearer ${t}`, traceparent: `00-${traceId}-${callerSpan}-00`, tracestate: 'vendor=abc,Invalid Member,other=1' },
      });
      const root = await fetch(`${warden.url}/pay/acme/pb-root`, { headers: { authorization: `Bearer ${t}` } });
      const denied = await fetch(`${warden.url}/pay/bobco/pb-denied`, { headers: { authorization: `Bearer ${t}`, traceparent: `00-${hex(16)}-${hex(8)}-00` } });
      expect([byParent.status, root.status, denied.status]).toEqual([200, 200, 403]);

      const sent = upstream.requests.slice(before);
      const continued = sent.find((r) => r.url === '/acme/pb-unsampled')!;
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(String(continued.headers.traceparent));
      expect(m).not.toBeNull();
      expect(m![1]).toBe(traceId);
      expect(m![2]).not.toBe(callerSpan);
      expect(m![2]).not.toBe('0'.repeat(16));
      // The caller's valid tracestate members travel on, in order.
      expect(continued.headers.tracestate).toBe('vendor=abc,other=1');

      const started = sent.find((r) => r.url === '/acme/pb-root')!;
      const r = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(String(started.headers.traceparent));
      expect(r).not.toBeNull();
      expect(r![1]).not.toBe('0'.repeat(32));
      expect(r![2]).not.toBe('0'.repeat(16));
      expect(started.headers.tracestate).toBeUndefined();

      // Several flush intervals: no span of any of these requests (nor any other) may arrive.
      await sleep(500);
      expect(await receiver.spans()).toEqual([]);
      expect(await receiver.exports()).toEqual([]);
    });

    it('a request whose caller sampled it is recorded under the caller’s span, although the ratio is 0', async () => {
      const traceId = hex(16);
      const callerSpan = hex(8);
      const res = await fetch(`${warden.url}/pay/acme/pb-sampled`, {
        headers: { authorization: `Bearer ${await token('bot', 'alice')}`, traceparent: `00-${traceId}-${callerSpan}-01`, tracestate: 'vendor=abc' },
      });
      expect(res.status).toBe(200);
      const spans = await traceOf(traceId);
      const server = spans.find((s) => s.kind === SERVER)!;
      expect(server.parentSpanId).toBe(callerSpan);
      expect(server.attributes['warden.decision']).toBe('allow');
      expect(spans.filter((s) => s.kind === INTERNAL).map((s) => s.name)).toEqual(expect.arrayContaining(['warden.authenticate', 'warden.authorize']));
      const client = spans.find((s) => s.kind === CLIENT)!;
      expect(client.parentSpanId).toBe(server.spanId);
      expect(client.traceState).toBe('vendor=abc');
      const forwarded = upstream.requests.find((r) => r.url === '/acme/pb-sampled')!;
      expect(forwarded.headers.traceparent).toBe(`00-${traceId}-${client.spanId}-01`);
      expect(forwarded.headers.tracestate).toBe('vendor=abc');
    });
  });

  it('a dead collector fails no request: spans are dropped, counted, and warned about once', async () => {
    const deadPort = await freePort();
    const warden = await launch(
      'dead-collector',
      `    endpoint: http://127.0.0.1:${deadPort}/v1/traces
    timeout: 500ms
    max_queue: 8
    max_batch: 4
    flush_interval: 50ms
    headers: { authorization: "Bearer \${OTLP_TOKEN}" }`,
    );
    const t = await token('bot', 'alice');
    const started = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) => fetch(`${warden.url}/pay/acme/dead-${i}`, { headers: { authorization: `Bearer ${t}` } }).then((r) => r.status)),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Far below the export timeout times the number of batches: nobody waited for the collector.
    expect(Date.now() - started).toBeLessThan(5_000);
    const dropped = async () => {
      const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
      let sum = 0;
      for (const m of text.matchAll(/^warden_tracing_dropped_spans_total\{reason="(\w+)"\} (\d+)/gm)) sum += Number(m[2]);
      return { sum, text };
    };
    await until(async () => (await dropped()).sum >= 40 * 3, { timeoutMs: 10_000, intervalMs: 50 });
    const { text } = await dropped();
    expect(text).toMatch(/warden_tracing_dropped_spans_total\{reason="queue_full"\} [1-9]/);
    expect(text).toMatch(/warden_tracing_dropped_spans_total\{reason="export_failed"\} [1-9]/);
    const warnings = warden
      .output()
      .split('\n')
      .filter((l) => l.includes('spans dropped'));
    expect(warnings).toHaveLength(1);
    expect(warden.output()).not.toContain(COLLECTOR_SECRET);
    warden.child.kill('SIGTERM');
  });
});
