/**
 * The decision log through a real Warden: one record per decision (allow,
 * deny, unauthenticated) with the fields the contract names and never a body
 * or credential; the file sink rotates; the HTTP sink batches and retries; and
 * `warden audit verify` names the first edited, deleted, inserted or moved
 * record, and refuses a chain rewritten without the checkpoint key.
 */

import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, REPO_ROOT, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { runCli, requireBuiltCli } from '../support/cli.js';
import { until } from '../support/eventually.js';
import { verifyFiles } from '../../src/audit/verify.js';
import { Chain } from '../../src/audit/chain.js';
import { parseConfig } from '../../src/config/load.js';
import { devPolicyYaml } from '../support/config.js';

const SECRET = 'upstream-api-key-never-logged-42';

const config = (decisions: string) => `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures')}
audit:
  decisions: ${decisions}
routes:
  - name: pay
    match: { path: "/pay/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /pay }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    credentials: { header: { name: X-Api-Key, value: "${SECRET}" } }
`;

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);
const records = (file: string) => lines(file).map((l) => JSON.parse(l) as Record<string, any>);

describe('decision log', () => {
  let upstream: Upstream;
  let dir: string;

  beforeAll(async () => {
    requireBuiltCli();
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-declog-'));
  });
  afterAll(async () => {
    await upstream?.close();
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  });

  describe('file sink, chained and signed', () => {
    let w: WardenHandle;
    let file: string;
    let jwks: string;
    const body = JSON.stringify({ amount: 12, memo: 'body-text-never-logged' });

    beforeAll(async () => {
      file = join(dir, 'decisions.jsonl');
      // At warn: the decision log records checks whatever the log level.
      w = await startWarden({ config: config(`{ sink: file, path: "${file}", checkpoint_every: 3 }`), env: { UPSTREAM_URL: upstream.url }, logLevel: 'warn' });
      jwks = join(dir, 'audit-key.jwks.json');
      const alice = await w.token('bot', 'alice', [], { act: { sub: 'planner' } });
      const bob = await w.token('bot', 'bob');
      const post = (path: string, token?: string) =>
        fetch(`${w.url}${path}`, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        });
      expect((await post('/pay/acme/transfer?x=1', alice)).status).toBe(200);
      expect((await post('/pay/acme/transfer', bob)).status).toBe(403);
      expect((await post('/pay/acme/transfer')).status).toBe(401);
      for (let i = 0; i < 5; i++) expect((await post(`/pay/acme/n${i}`, alice)).status).toBe(200);
      writeFileSync(jwks, readFileSync(join(w.dataDir, 'audit-key.jwks.json'))); // the data dir goes with the handle
      await w.close(); // final checkpoint and flush
    });

    it('every field #15 lists is in a real record: time, id, route, principal, method, path, checks with the engine revision, digest, credentials, status, latency', () => {
      const [ok, denied] = records(file).filter((r) => r.t === 'decision');
      for (const r of [ok, denied]) {
        expect(Object.keys(r)).toEqual(
          expect.arrayContaining(['time', 'id', 'route', 'decision', 'status', 'latency_ms', 'agent', 'user', 'issuer', 'method', 'path', 'checks']),
        );
        expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
        // The revision the answer came from (the embedded engine: a digest of model and tuples); no
        // consistency field: only the re-check that releases an approved request asks for higher consistency.
        expect(r.checks).toEqual([expect.objectContaining({ engine: 'embedded', model: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) })]);
        expect(r.checks[0].consistency).toBeUndefined();
      }
      expect(ok.checks[0].model).toBe(denied.checks[0].model);
      expect(ok).toMatchObject({ act: ['planner'], body_sha256: expect.stringMatching(/^[0-9a-f]{64}$/), credentials: 'header' });
    });

    it('writes one record per decision with who, what, checks, digest and credential kind', () => {
      const all = records(file);
      const decisions = all.filter((r) => r.t === 'decision');
      expect(decisions).toHaveLength(8);
      const [ok, denied, anon] = decisions;
      expect(ok).toMatchObject({
        route: 'pay',
        decision: 'allow',
        status: 200,
        agent: 'bot',
        user: 'alice',
        act: ['planner'],
        method: 'POST',
        path: '/pay/acme/transfer',
        query: 'x=1',
        credentials: 'header',
      });
      expect(ok.checks).toEqual([
        expect.objectContaining({ user: 'user:alice', relation: 'can_pay', object: 'account:acme', allowed: true, engine: 'embedded' }),
      ]);
      expect(ok.body_sha256).toBe(createHash('sha256').update(body).digest('hex'));
      expect(typeof ok.latency_ms).toBe('number');
      expect(Date.parse(ok.time)).not.toBeNaN();
      expect(denied).toMatchObject({ decision: 'deny', status: 403, user: 'bob' });
      expect(denied.checks[0].allowed).toBe(false);
      expect(denied.credentials).toBeUndefined();
      expect(anon).toMatchObject({ decision: 'deny', status: 401 });
      expect(anon.agent).toBeUndefined();
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('body-text-never-logged');
      // One chain: seq 0.., each prev the hash of the line before.
      expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i));
      for (let i = 1; i < all.length; i++) expect(all[i].prev).toBe(all[i - 1].hash);
      // A checkpoint after every 3 records, and one at close.
      expect(all.filter((r) => r.t === 'checkpoint').map((r) => r.records)).toEqual([3, 3, 2]);
    });

    it('verifies a whole log, with signatures', async () => {
      const r = await verifyFiles([file], { jwks: JSON.parse(readFileSync(jwks, 'utf8')).keys });
      expect(r).toMatchObject({ ok: true, records: 8, checkpoints: 3, signaturesChecked: true });
      const cli = await runCli(['audit', 'verify', '--jwks', jwks, file], { cwd: REPO_ROOT });
      expect(cli.code).toBe(0);
      expect(cli.stdout).toMatch(/^OK 8 records, 1 instance\(s\), 3 checkpoint\(s\), signatures valid/);
    });

    const tampered = (name: string, edit: (ls: string[]) => string[]) => {
      const f = join(dir, name);
      writeFileSync(f, edit(lines(file)).join('\n') + '\n');
      return f;
    };

    it('names the record whose byte was edited', async () => {
      const f = tampered('edited.jsonl', (ls) => {
        const i = ls.findIndex((l) => l.includes('/pay/acme/n1'));
        expect(i).toBe(5); // after 3 records and a checkpoint
        ls[i] = ls[i].replace('/pay/acme/n1', '/pay/acme/m1'); // one byte
        return ls;
      });
      const cli = await runCli(['audit', 'verify', f], { cwd: REPO_ROOT });
      expect(cli.code).toBe(1);
      expect(cli.stdout).toMatch(/^FAIL .*edited\.jsonl:6 \(instance \S+, seq 5\): record was edited/);
    });

    it('names where a record was deleted', async () => {
      const f = tampered('deleted.jsonl', (ls) => ls.filter((_, i) => i !== 2));
      const r = await verifyFiles([f]);
      expect(r.problem).toMatchObject({ line: 3, seq: 3 });
      expect(r.problem!.reason).toMatch(/1 record\(s\) missing before this one \(deleted or moved\)/);
      const first = await verifyFiles([tampered('deleted-first.jsonl', (ls) => ls.slice(1))]);
      expect(first.problem).toMatchObject({ line: 1, seq: 1 });
      expect(first.problem!.reason).toMatch(/starts at seq 1/);
    });

    it('names where two records were swapped', async () => {
      const f = tampered('swapped.jsonl', (ls) => {
        [ls[5], ls[6]] = [ls[6], ls[5]];
        return ls;
      });
      const r = await verifyFiles([f]);
      expect(r.problem).toMatchObject({ line: 6, seq: 6 });
    });

    it('names an inserted record (a replayed copy, or a foreign line)', async () => {
      const copy = await verifyFiles([tampered('dup.jsonl', (ls) => [...ls.slice(0, 4), ls[1], ...ls.slice(4)])]);
      expect(copy.problem).toMatchObject({ line: 5, seq: 1 });
      expect(copy.problem!.reason).toMatch(/reordered or a record was inserted/);
      const foreign = await verifyFiles([
        tampered('foreign.jsonl', (ls) => [...ls.slice(0, 2), '{"t":"decision","route":"pay","decision":"allow"}', ...ls.slice(2)]),
      ]);
      expect(foreign.problem).toMatchObject({ line: 3 });
    });

    it('refuses a chain rewritten with fresh hashes, by its checkpoint signatures', async () => {
      // The attacker edits record 1 and recomputes every hash and link after it: the chain is whole again.
      const all = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
      all[1].decision = 'allow';
      const chain = new Chain(String(all[0].instance));
      const rewritten = all.map((r) => {
        const { t, instance: _i, seq: _s, prev: _p, hash: _h, ...rest } = r;
        return chain.line(String(t), JSON.stringify(rest));
      });
      const f = join(dir, 'rewritten.jsonl');
      writeFileSync(f, rewritten.join('\n') + '\n');
      expect((await verifyFiles([f])).ok).toBe(true); // the chain alone cannot tell
      const signed = await verifyFiles([f], { jwks: JSON.parse(readFileSync(jwks, 'utf8')).keys });
      expect(signed.problem).toMatchObject({ line: 4, seq: 3 });
      expect(signed.problem!.reason).toMatch(/signature is invalid/);
    });
  });

  it('rotates the file; the rotated files verify oldest first', async () => {
    const file = join(dir, 'rot', 'decisions.jsonl');
    const w = await startWarden({ config: config(`{ sink: file, path: "${file}", rotate: 2KB, keep: 50 }`), env: { UPSTREAM_URL: upstream.url } });
    try {
      const alice = await w.token('bot', 'alice');
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${w.url}/pay/acme/r${i}`, { headers: { authorization: `Bearer ${alice}` } });
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
    } finally {
      await w.close();
    }
    expect(w.logs()).not.toContain('decision log: could not write');
    const names = readdirSync(join(dir, 'rot')).sort();
    const rotated = names.filter((n) => /\.\d+$/.test(n)).sort((a, b) => Number(b.split('.').pop()) - Number(a.split('.').pop()));
    expect(rotated.length).toBeGreaterThan(1);
    const ordered = [...rotated, 'decisions.jsonl'].map((n) => join(dir, 'rot', n));
    for (const f of ordered) expect(readFileSync(f).length, f).toBeLessThanOrEqual(2048 + 1024);
    const r = await verifyFiles(ordered);
    expect(r).toMatchObject({ ok: true, records: 20 });
    expect((await verifyFiles(ordered.slice(1))).problem!.reason).toMatch(/starts at seq/);
    expect((await verifyFiles(ordered.slice(1), { partial: true })).ok).toBe(true);
    expect((await verifyFiles([...ordered].reverse(), { partial: true })).ok).toBe(false);
  });

  it('HTTP sink: batches, retries a failing endpoint, delivers every record in order', async () => {
    const received: string[] = [];
    let posts = 0;
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        posts++;
        if (posts <= 2) return void res.writeHead(503).end(); // down twice
        expect(req.headers['content-type']).toBe('application/x-ndjson');
        expect(req.headers['x-ingest']).toBe('tok');
        received.push(...Buffer.concat(chunks).toString('utf8').split('\n').filter(Boolean));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ingest`;
    const w = await startWarden({
      config: config(
        `{ sink: http, url: "${url}", headers: { x-ingest: tok }, batch: 4, flush_interval: 50ms, timeout: 2s, retries: 5, max_buffer: 1000, checkpoint_every: 100 }`,
      ),
      env: { UPSTREAM_URL: upstream.url },
    });
    try {
      const alice = await w.token('bot', 'alice');
      for (let i = 0; i < 10; i++) await (await fetch(`${w.url}/pay/acme/h${i}`, { headers: { authorization: `Bearer ${alice}` } })).arrayBuffer();
      await until(() => received.length >= 10, { what: 'records delivered' });
    } finally {
      await w.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
    expect(posts).toBeGreaterThanOrEqual(5); // 2 refused, then batches of at most 4
    const f = join(dir, 'from-http.jsonl');
    writeFileSync(f, received.join('\n') + '\n');
    expect(await verifyFiles([f])).toMatchObject({ ok: true, records: 10, checkpoints: 1 });
  });

  it('signs checkpoints with the configured key, also on a timer; chain: false writes plain records', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const file = join(dir, 'keyed.jsonl');
    const w = await startWarden({
      config: config(`{ sink: file, path: "${file}", chain: true, key: "\${AUDIT_KEY}", checkpoint_every: 1000, checkpoint_interval: 50ms }`),
      env: { UPSTREAM_URL: upstream.url, AUDIT_KEY: pem },
    });
    let jwks: Array<Record<string, unknown>>;
    try {
      jwks = JSON.parse(readFileSync(join(w.dataDir, 'audit-key.jwks.json'), 'utf8')).keys;
      expect(jwks).toEqual([expect.objectContaining({ kty: 'EC', crv: 'P-256', alg: 'ES256' })]);
      expect(JSON.stringify(jwks)).not.toContain('"d"');
      const alice = await w.token('bot', 'alice');
      await (await fetch(`${w.url}/pay/acme/k`, { headers: { authorization: `Bearer ${alice}` } })).arrayBuffer();
      await until(() => existsSync(file) && readFileSync(file, 'utf8').includes('"t":"checkpoint"'), { what: 'a checkpoint on the timer' });
    } finally {
      await w.close();
    }
    expect(records(file).map((r) => r.t)).toEqual(['decision', 'checkpoint']);
    expect(await verifyFiles([file], { jwks: jwks! })).toMatchObject({ ok: true, records: 1, checkpoints: 1 });
    // Another key does not verify it.
    const other = await verifyFiles([file], { jwks: [{ ...jwks![0], x: jwks![0].y, kid: jwks![0].kid }] });
    expect(other.problem?.reason).toMatch(/signature is invalid/);

    const plain = join(dir, 'plain.jsonl');
    const p = await startWarden({ config: config(`{ sink: file, path: "${plain}", chain: false }`), env: { UPSTREAM_URL: upstream.url } });
    try {
      const alice = await p.token('bot', 'alice');
      await (await fetch(`${p.url}/pay/acme/k`, { headers: { authorization: `Bearer ${alice}` } })).arrayBuffer();
    } finally {
      await p.close();
    }
    const [rec] = records(plain);
    expect(rec).toMatchObject({ t: 'decision', route: 'pay', decision: 'allow' });
    expect(rec.hash).toBeUndefined();
    expect(rec.seq).toBeUndefined();
  });

  it('the decision record replaces the info audit line (which moves to debug); write_interval batches writes', async () => {
    const auditLines = (logs: string) => logs.split('\n').filter((l) => l.includes('"audit":true'));
    const file = join(dir, 'replaces.jsonl');
    const send = async (w: WardenHandle) => {
      const alice = await w.token('bot', 'alice');
      for (let i = 0; i < 3; i++) await (await fetch(`${w.url}/pay/acme/l${i}`, { headers: { authorization: `Bearer ${alice}` } })).arrayBuffer();
    };
    const on = await startWarden({
      config: config(`{ sink: file, path: "${file}", write_interval: 10s }`),
      env: { UPSTREAM_URL: upstream.url },
      logLevel: 'info',
    });
    try {
      await send(on);
      // Within write_interval nothing is written yet: one batch later, not one write per request.
      await new Promise((r) => setTimeout(r, 200));
      expect(existsSync(file) ? readFileSync(file, 'utf8') : '').toBe('');
    } finally {
      await on.close(); // shutdown writes the pending batch
    }
    expect(records(file).filter((r) => r.t === 'decision')).toHaveLength(3);
    expect(auditLines(on.logs())).toEqual([]);

    const debug = await startWarden({ config: config(`{ sink: file, path: "${join(dir, 'replaces-debug.jsonl')}" }`), env: { UPSTREAM_URL: upstream.url } });
    try {
      await send(debug);
    } finally {
      await debug.close();
    }
    expect(auditLines(debug.logs())).toHaveLength(3);

    const off = await startWarden({ config: config('null').replace('audit:\n  decisions: null\n', ''), env: { UPSTREAM_URL: upstream.url }, logLevel: 'info' });
    try {
      await send(off);
    } finally {
      await off.close();
    }
    expect(auditLines(off.logs())).toHaveLength(3);
  });

  it('config: a file sink needs a path, an http sink a url', () => {
    const bad = (d: string) => () => parseConfig(config(d), { env: { UPSTREAM_URL: 'http://127.0.0.1:1' } });
    expect(bad('{ sink: file }')).toThrow(/audit\.decisions\.path.*needs a path|needs a path/);
    expect(bad('{ sink: http }')).toThrow(/needs a url/);
    expect(bad('{ sink: stdout, path: /tmp/x }')).toThrow(/path is for the file sink/);
    expect(bad('{ sink: stdout, write_interval: 11s }')).toThrow(/write_interval.*at most 10s|at most 10s/);
  });
});
