/**
 * /metrics on the admin listener carries prom-client's default process and
 * Node.js metrics and warden_build_info next to Warden's own request metrics,
 * from source (tests) and from the built CLI alike.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startWardenProcess, type Service } from '../support/processes.js';

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const CONFIG = `
identity: { dev_issuer: true }
routes:
  - name: status
    match: { path: /status }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
`;

function expectProcessMetrics(text: string): void {
  expect(text).toContain(`warden_build_info{version="${VERSION}",node="${process.versions.node}"} 1`);
  for (const name of [
    'process_cpu_user_seconds_total',
    'process_resident_memory_bytes',
    'nodejs_heap_size_used_bytes',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_gc_duration_seconds',
  ]) {
    expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
  }
  // Warden's own series are still there, and each metric family is declared once.
  const types = text
    .split('\n')
    .filter((l) => l.startsWith('# TYPE '))
    .map((l) => l.split(' ')[2]);
  expect(new Set(types).size).toBe(types.length);
}

describe('process metrics', () => {
  let warden: WardenHandle;
  let proc: Service;
  let procAdmin: string;
  let dir: string;

  beforeAll(async () => {
    warden = await startWarden({ config: CONFIG });
    const [listen, admin] = [await freePort(), await freePort()];
    procAdmin = `http://127.0.0.1:${admin}`;
    dir = mkdtempSync(join(tmpdir(), 'warden-metrics-'));
    writeFileSync(join(dir, 'gateway.yaml'), CONFIG.replace('identity:', `authz: { model: ${join(REPO_ROOT, 'policies/model.fga')} }\nidentity:`));
    proc = await startWardenProcess(
      'warden',
      join(dir, 'gateway.yaml'),
      { WARDEN_LISTEN: `127.0.0.1:${listen}`, WARDEN_ADMIN_LISTEN: `127.0.0.1:${admin}`, WARDEN_DATA_DIR: dir },
      `http://127.0.0.1:${listen}`,
    );
  });
  afterAll(async () => {
    await warden?.close();
    await proc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('in-process gateway: default process/Node metrics and warden_build_info, after the request metrics', async () => {
    await fetch(`${warden.url}/.warden/healthz`);
    const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
    expectProcessMetrics(text);
  });

  it('built CLI: the same, with the package version found from dist/', async () => {
    const res = await fetch(`${procAdmin}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expectProcessMetrics(await res.text());
  });

  it('is not served on the agent listener', async () => {
    expect((await fetch(`${warden.url}/metrics`)).status).toBe(404);
  });
});
