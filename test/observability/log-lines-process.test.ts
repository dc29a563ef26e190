/**
 * Audit lines of a real `warden start` process under load (#17: stdout is
 * written in batches, not once per request): SIGTERM mid-load writes every
 * answered request's line, whole; kill -9 loses at most the lines of the last
 * flush interval; a process that exits or dies of an uncaught error writes
 * what it still held.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { loadUntilGone, spawnService, type Service } from '../support/processes.js';

const yaml = (port: number, upstream: string) => `
server:
  listen: 127.0.0.1:${port}
  admin_listen: null
  shutdown_timeout: 10s
identity:
  dev_issuer: true
authz:
  engine: embedded
  model: ${REPO_ROOT}/test/approvals/fixtures/model.fga
  tuples: ${REPO_ROOT}/test/approvals/fixtures/tuples.yaml
routes:
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "${upstream}", strip_prefix: /pay }
    authorize: []
`;

/** Request ids of the audit lines in `output`; every line must be whole JSON. */
function auditIds(output: string): Set<string> {
  const ids = new Set<string>();
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    const record = JSON.parse(line) as Record<string, unknown>;
    if (record.audit === true) ids.add(String(record.request_id));
  }
  return ids;
}

describe('audit lines of a real process', () => {
  let upstream: Upstream;
  let dir: string;

  beforeAll(async () => {
    requireBuiltCli();
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-loglines-'));
  });
  afterAll(async () => {
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(name: string): Promise<{ warden: Service; url: string; token: string }> {
    const port = await freePort();
    const config = join(dir, `${name}.yaml`);
    writeFileSync(config, yaml(port, upstream.url));
    // The default log level (info: one audit line per request), as shipped.
    const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_DATA_DIR: join(dir, `${name}-data`) };
    delete env.WARDEN_LOG_LEVEL;
    const url = `http://127.0.0.1:${port}`;
    const warden = await spawnService(name, process.execPath, [CLI, 'start', '-c', config], {
      env,
      ready: async () => (await fetch(`${url}/.warden/healthz`, { signal: AbortSignal.timeout(1_000) })).ok,
    });
    const minted = await runCli(['token', '--agent', 'bot', '--user', 'alice', '-c', config], { cwd: REPO_ROOT, env });
    expect(minted.code, minted.stderr).toBe(0);
    return { warden, url, token: minted.stdout.trim() };
  }

  it('SIGTERM mid-load: every answered request has its audit line, each line whole, no token in any', async () => {
    const { warden, url, token } = await start('sigterm');
    const traffic = loadUntilGone(url, token, (w, i) => `/pay/acme/w${w}-${i}`);
    try {
      while (traffic.answered.length < 300) await new Promise((r) => setTimeout(r, 5));
      await warden.stop(); // SIGTERM (SIGKILL only after 5 s)
    } finally {
      await traffic.finish();
      await warden.kill();
    }
    const output = warden.output();
    const ids = auditIds(output);
    expect(
      traffic.answered.filter((a) => !ids.has(a.id)),
      'answered requests without an audit line',
    ).toEqual([]);
    expect(output).toContain('"msg":"stopped"');
    expect(output).not.toContain(token.split('.')[2]);
  });

  it('kill -9 mid-load: loses at most the lines of the last flush interval (50 ms)', async () => {
    const { warden, url, token } = await start('sigkill');
    const traffic = loadUntilGone(url, token, (w, i) => `/pay/acme/w${w}-${i}`);
    let killedAt = 0;
    try {
      const started = Date.now();
      while (traffic.answered.length < 200 || Date.now() - started < 1_500) await new Promise((r) => setTimeout(r, 20));
      killedAt = Date.now();
      await warden.kill();
    } finally {
      await traffic.finish();
    }
    const ids = auditIds(warden.output());
    // Answered well before the kill (the interval plus scheduling slack on a busy machine): written.
    const old = traffic.answered.filter((a) => a.at < killedAt - 500);
    expect(old.length).toBeGreaterThan(50);
    expect(old.filter((a) => !ids.has(a.id))).toEqual([]);
  });

  it('a process that exits, or dies of an uncaught error, writes the lines it still held', () => {
    const module = pathToFileURL(join(REPO_ROOT, 'dist/src/observability/log-writer.js')).href;
    for (const ending of ['process.exit(0)', 'throw new Error("boom")']) {
      const script = `
        const { createBatchedWriter } = await import(${JSON.stringify(module)});
        const w = createBatchedWriter({ intervalMs: 60_000 });
        for (let i = 0; i < 3; i++) w.write(JSON.stringify({ n: i }) + '\\n');
        ${ending};
      `;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      expect(r.stdout, r.stderr).toBe('{"n":0}\n{"n":1}\n{"n":2}\n');
    }
  });
});
