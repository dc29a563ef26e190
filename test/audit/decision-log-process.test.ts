/**
 * The decision log of a real `warden start` process under load: SIGTERM
 * mid-load writes every answered request's record and a final signed
 * checkpoint (nothing pending is lost); kill -9 loses at most the records of
 * the last `write_interval`, what was written still verifies, and a restart on
 * the same file continues it with a linked chain.
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { loadUntilGone, spawnService, type Service } from '../support/processes.js';
import { verifyFiles } from '../../src/audit/verify.js';

const yaml = (port: number, upstream: string, file: string, writeInterval: string) => `
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
audit:
  decisions: { sink: file, path: "${file}", write_interval: ${writeInterval}, checkpoint_every: 40 }
routes:
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "${upstream}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
`;

const decisionIds = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.t === 'decision')
    .map((r) => String(r.id));

describe('decision log of a real process', () => {
  let upstream: Upstream;
  let dir: string;

  beforeAll(async () => {
    requireBuiltCli();
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-declog-proc-'));
  });
  afterAll(async () => {
    await upstream?.close();
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  });

  async function start(name: string, writeInterval: string): Promise<{ warden: Service; file: string; dataDir: string; url: string; token: string }> {
    const port = await freePort();
    const file = join(dir, `${name}.jsonl`);
    const dataDir = join(dir, `${name}-data`);
    const config = join(dir, `${name}.yaml`);
    writeFileSync(config, yaml(port, upstream.url, file, writeInterval));
    const env = { ...process.env, WARDEN_DATA_DIR: dataDir, WARDEN_LOG_LEVEL: 'warn' };
    const url = `http://127.0.0.1:${port}`;
    const warden = await spawnService(name, process.execPath, [CLI, 'start', '-c', config], {
      env,
      ready: async () => (await fetch(`${url}/.warden/healthz`, { signal: AbortSignal.timeout(1_000) })).ok,
    });
    const minted = await runCli(['token', '--agent', 'bot', '--user', 'alice', '-c', config], { cwd: REPO_ROOT, env });
    expect(minted.code, minted.stderr).toBe(0);
    return { warden, file, dataDir, url, token: minted.stdout.trim() };
  }

  it('SIGTERM mid-load: every answered request is recorded, the chain verifies and ends with a signed checkpoint', async () => {
    // A long write interval: at SIGTERM many records are still pending in memory; shutdown must write them.
    const { warden, file, dataDir, url, token } = await start('sigterm', '5s');
    const traffic = loadUntilGone(url, token, (w, i) => `/pay/acme/w${w}-${i}`);
    try {
      while (traffic.answered.length < 150) await new Promise((r) => setTimeout(r, 20));
      await warden.stop(); // SIGTERM (SIGKILL only after 5 s)
    } finally {
      await traffic.finish();
      await warden.kill();
    }
    expect(warden.output()).not.toMatch(/decision log: could not/);
    const ids = new Set(decisionIds(file));
    const missing = traffic.answered.filter((a) => !ids.has(a.id));
    expect(missing, 'answered requests without a record').toEqual([]);
    const jwks = JSON.parse(readFileSync(join(dataDir, 'audit-key.jwks.json'), 'utf8')).keys;
    const r = await verifyFiles([file], { jwks });
    expect(r).toMatchObject({ ok: true, signaturesChecked: true });
    expect(r.records).toBeGreaterThanOrEqual(traffic.answered.length);
    expect(Object.values(r.unsigned)).toEqual([0]); // one instance; the final checkpoint covers its last record
  });

  it('kill -9 mid-load: loses at most the last write_interval, and what was written verifies', async () => {
    const { warden, file, dataDir, url, token } = await start('sigkill', '100ms');
    const traffic = loadUntilGone(url, token, (w, i) => `/pay/acme/w${w}-${i}`);
    let killedAt = 0;
    try {
      // Enough load for a while: records answered more than 1 s before the kill must all be on disk. Load runs
      // until enough of them are that old, however slowly a busy host answers.
      const started = Date.now();
      const settled = () => traffic.answered.filter((a) => a.at < Date.now() - 1_000).length;
      while (settled() <= 60 || Date.now() - started < 2_000) await new Promise((r) => setTimeout(r, 20));
      killedAt = Date.now();
      await warden.kill();
    } finally {
      await traffic.finish();
    }
    const ids = new Set(decisionIds(file));
    // Records of requests answered well before the kill (more than write_interval + scheduling slack) were written.
    const old = traffic.answered.filter((a) => a.at < killedAt - 1_000);
    expect(old.length).toBeGreaterThan(50);
    expect(old.filter((a) => !ids.has(a.id))).toEqual([]);
    const jwks = JSON.parse(readFileSync(join(dataDir, 'audit-key.jwks.json'), 'utf8')).keys;
    const r = await verifyFiles([file], { jwks });
    expect(r).toMatchObject({ ok: true, signaturesChecked: true });

    // A restart appending to the same file: its chain names where the killed one stopped, which also pins
    // the killed chain's records after its last checkpoint.
    const again = await start('sigkill', '100ms');
    try {
      for (let i = 0; i < 3; i++) await (await fetch(`${again.url}/pay/acme/again${i}`, { headers: { authorization: `Bearer ${again.token}` } })).arrayBuffer();
    } finally {
      await again.warden.stop();
    }
    const recs = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const killed = recs[0].instance;
    const lastKilled = recs.filter((x) => x.instance === killed).at(-1)!;
    const genesis = recs.find((x) => x.t === 'genesis' && x.instance !== killed)!;
    expect(genesis.after).toEqual({ instance: killed, seq: lastKilled.seq, hash: lastKilled.hash });
    const cli = await runCli(['audit', 'verify', '--jwks', join(dataDir, 'audit-key.jwks.json'), file], { cwd: REPO_ROOT });
    expect(cli.code, cli.stdout).toBe(0);
    expect(cli.stdout).toMatch(/^OK \d+ records, 2 instance\(s\), \d+ checkpoint\(s\), signatures valid\n/);
    expect(cli.stdout).not.toMatch(/after its last checkpoint/);
  });
});
