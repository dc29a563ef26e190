/**
 * `observability.metrics.enabled: false`: `warden validate` accepts it, nothing
 * is counted, /metrics answers 404 (a problem document), and a reload that
 * turns metrics back on says it needs a restart. The same traffic with the
 * default (on) is counted and served, so the switch is what makes the difference.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT, startWarden } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const yaml = (metrics: string) => `
server: { listen: "127.0.0.1:0" }
authz: { model: "${REPO_ROOT}/test/approvals/fixtures/model.fga" }
routes:
  - name: open
    match: { path: "/open/**" }
    upstream: { url: "\${UPSTREAM_URL}" }
    public: true
${metrics}`;
const OFF = 'observability:\n  metrics: { enabled: false }\n';

describe('metrics switched off', () => {
  let upstream: Upstream;
  let dir: string;
  beforeAll(async () => {
    requireBuiltCli();
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-metrics-off-'));
  });
  afterAll(async () => {
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('warden validate accepts observability.metrics.enabled', async () => {
    const file = join(dir, 'gateway.yaml');
    writeFileSync(file, yaml(OFF));
    const r = await runCli(['validate', '-c', file], { cwd: REPO_ROOT, env: { ...process.env, UPSTREAM_URL: upstream.url } });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  for (const on of [true, false]) {
    it(`metrics ${on ? 'on (default): the request is counted and /metrics serves it' : 'off: /metrics is 404 and stays so after a reload'}`, async () => {
      const config = yaml(on ? '' : OFF);
      const warden = await startWarden({ config, env: { UPSTREAM_URL: upstream.url } });
      try {
        expect((await fetch(`${warden.url}/open/x`)).status).toBe(200);
        const res = await fetch(`${warden.adminUrl}/metrics`);
        const text = await res.text();
        if (on) {
          expect(res.status).toBe(200);
          expect(text).toMatch(/^warden_requests_total\{decision="allow",route="open",status="200"\} 1$/m);
          return;
        }
        expect(res.status).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(JSON.parse(text)).toMatchObject({ code: 'not_found' });
        expect(text).not.toMatch(/warden_/);
        // Turning it on needs a restart: the reload succeeds, says so, and /metrics stays off.
        expect(await warden.reload(yaml(''))).toBe(true);
        expect(warden.logs()).toMatch(/observability\.metrics\.enabled changed: it takes effect at the next start/);
        expect((await fetch(`${warden.adminUrl}/metrics`)).status).toBe(404);
      } finally {
        await warden.close();
      }
    });
  }
});
