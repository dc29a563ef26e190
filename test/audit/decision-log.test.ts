/**
 * The decision log through a real Warden: one record per decision (allow,
 * deny, unauthenticated) with the fields the contract names and never a body
 * or credential; the file sink rotates; the HTTP sink batches and retries; and
 * `warden audit verify` names the first edited, deleted, inserted or moved
 * record, and refuses a chain rewritten without the checkpoint key. Chains of
 * consecutive generations (reload, restart on the same file) are linked, so a
 * whole generation removed or spliced in fails too; a log written before
 * that still verifies.
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
        expect(i).toBe(6); // after the genesis record, 3 records and a checkpoint
        ls[i] = ls[i].replace('/pay/acme/n1', '/pay/acme/m1'); // one byte
        return ls;
      });
      const cli = await runCli(['audit', 'verify', f], { cwd: REPO_ROOT });
      expect(cli.code).toBe(1);
      expect(cli.stdout).toMatch(/^FAIL .*edited\.jsonl:7 \(instance \S+, seq 6\): record was edited/);
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
      // The attacker edits a record and recomputes every hash and link after it: the chain is whole again.
      const all = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
      all[2].decision = 'allow'; // the refused request
      const chain = new Chain(String(all[0].instance));
      const rewritten = all.map((r) => {
        const { t, instance: _i, seq: _s, prev: _p, hash: _h, ...rest } = r;
        return chain.line(String(t), JSON.stringify(rest));
      });
      const f = join(dir, 'rewritten.jsonl');
      writeFileSync(f, rewritten.join('\n') + '\n');
      expect((await verifyFiles([f])).ok).toBe(true); // the chain alone cannot tell
      const signed = await verifyFiles([f], { jwks: JSON.parse(readFileSync(jwks, 'utf8')).keys });
      expect(signed.problem).toMatchObject({ line: 5, seq: 4 });
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
    const text = config(
      `{ sink: http, url: "${url}", headers: { x-ingest: tok }, batch: 4, flush_interval: 50ms, timeout: 2s, retries: 5, max_buffer: 1000, checkpoint_every: 100 }`,
    );
    const w = await startWarden({ config: text, env: { UPSTREAM_URL: upstream.url } });
    try {
      const alice = await w.token('bot', 'alice');
      for (let i = 0; i < 10; i++) await (await fetch(`${w.url}/pay/acme/h${i}`, { headers: { authorization: `Bearer ${alice}` } })).arrayBuffer();
      await until(() => received.length >= 10, { what: 'records delivered' });
      // A reload: the same sink, and the next chain names where this one ended.
      expect(await w.reload(text)).toBe(true);
      for (let i = 0; i < 2; i++) await (await fetch(`${w.url}/pay/acme/g${i}`, { headers: { authorization: `Bearer ${alice}` } })).arrayBuffer();
    } finally {
      await w.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
    expect(posts).toBeGreaterThanOrEqual(5); // 2 refused, then batches of at most 4
    const f = join(dir, 'from-http.jsonl');
    writeFileSync(f, received.join('\n') + '\n');
    expect(await verifyFiles([f])).toMatchObject({ ok: true, records: 12, checkpoints: 2 });
    const geneses = received.map((l) => JSON.parse(l) as Record<string, any>).filter((r) => r.t === 'genesis');
    expect(geneses.map((g) => g.after?.instance ?? null)).toEqual([null, geneses[0].instance]);
  });

  it('HTTP sink: while the endpoint is down it holds at most max_buffer_bytes of records; the oldest are dropped and counted', async () => {
    const held: Array<() => void> = [];
    let down = true;
    const server: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const answer = () => void res.writeHead(204).end();
        if (down) held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ingest`;
    const w = await startWarden({
      config: config(`{ sink: http, url: "${url}", batch: 1, flush_interval: 10ms, timeout: 30s, retries: 0, max_buffer: 1000, max_buffer_bytes: 8KiB }`),
      env: { UPSTREAM_URL: upstream.url },
    });
    try {
      const alice = await w.token('bot', 'alice');
      // Records as long as what they record: a 2 KB path each, 20 of them while the first POST hangs.
      for (let i = 0; i < 20; i++) {
        await (
          await fetch(`${w.url}/pay/acme/${String(i).padStart(2, '0')}${'x'.repeat(2_000)}`, { headers: { authorization: `Bearer ${alice}` } })
        ).arrayBuffer();
      }
      await until(
        async () => {
          const m = /warden_decision_log_dropped_total\{sink="http"\} (\d+)/.exec(await (await fetch(`${w.adminUrl}/metrics`)).text());
          return m !== null && Number(m[1]) >= 10;
        },
        { what: 'records past 8 KiB dropped' },
      );
    } finally {
      down = false;
      for (const answer of held.splice(0)) answer();
      await w.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
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
    expect(records(file).map((r) => r.t)).toEqual(['genesis', 'decision', 'checkpoint']);
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

  describe('generations are linked: a whole generation removed or spliced in fails verify', () => {
    // Three generations of one writer on one file: a start (A), a reload in the same process (B), a restart
    // appending to the same file (C). Each chain's first record (genesis) names where the previous one ended.
    let file: string;
    let jwks: string;
    let all: string[];
    const ids: string[] = [];
    const verify = (f: string, ...flags: string[]) => runCli(['audit', 'verify', ...flags, f], { cwd: REPO_ROOT });
    const write = (name: string, ls: string[]) => {
      const f = join(dir, 'linked', name);
      writeFileSync(f, ls.join('\n') + '\n');
      return f;
    };
    const of = (id: string) => (l: string) => (JSON.parse(l) as { instance: string }).instance === id;
    const send = async (w: WardenHandle, n: number, tag: string) => {
      const alice = await w.token('bot', 'alice');
      for (let i = 0; i < n; i++) await (await fetch(`${w.url}/pay/acme/${tag}${i}`, { headers: { authorization: `Bearer ${alice}` } })).arrayBuffer();
    };
    /** Lines of a made-up instance (hash-chained, as anyone can compute): `genesis` gives it a first record with a bogus signature. */
    const forged = (instance: string, genesis?: { after: unknown; kid: string }) => {
      const chain = new Chain(instance);
      const out: string[] = [];
      if (genesis) out.push(chain.line('genesis', JSON.stringify({ time: '2026-12-02T08:00:00.000Z', ...genesis, alg: 'EdDSA', sig: 'A'.repeat(86) })));
      for (let i = 0; i < 2; i++)
        out.push(
          chain.line(
            'decision',
            JSON.stringify({
              time: '2026-12-02T08:00:01.000Z',
              id: `f${i}`,
              route: 'pay',
              decision: 'allow',
              status: 200,
              user: 'mallory',
              method: 'POST',
              path: '/pay/acme/x',
            }),
          ),
        );
      return out;
    };

    beforeAll(async () => {
      file = join(dir, 'linked', 'decisions.jsonl');
      const dataDir = join(dir, 'linked-data');
      const cfg = config(`{ sink: file, path: "${file}", checkpoint_every: 2 }`);
      const opts = { config: cfg, env: { UPSTREAM_URL: upstream.url }, dataDir, logLevel: 'warn' };
      const first = await startWarden(opts);
      try {
        await send(first, 3, 'a');
        // A reload (one that also changes the file's rotation: a new sink for the same file, on the same writer).
        expect(await first.reload(cfg.replace('checkpoint_every: 2', 'checkpoint_every: 2, rotate: 50MB'))).toBe(true);
        await send(first, 3, 'b');
      } finally {
        await first.close();
      }
      const second = await startWarden(opts); // a restart appending to the same file
      try {
        await send(second, 2, 'c');
      } finally {
        await second.close();
      }
      jwks = join(dataDir, 'audit-key.jwks.json');
      all = lines(file);
      for (const r of records(file)) if (!ids.includes(r.instance)) ids.push(r.instance);
    });

    it('a reload and a restart appending to the file each start a chain that names where the previous one ended; the log verifies', async () => {
      expect(ids).toHaveLength(3);
      const recs = records(file);
      const geneses = recs.filter((r) => r.t === 'genesis');
      expect(geneses.map((g) => g.instance)).toEqual(ids);
      expect(geneses[0].after).toBeNull(); // a fresh file: nothing before it
      for (const k of [1, 2]) {
        const lastOfPrevious = recs.filter((r) => r.instance === ids[k - 1]).at(-1)!;
        expect(geneses[k].after).toEqual({ instance: ids[k - 1], seq: lastOfPrevious.seq, hash: lastOfPrevious.hash });
        expect(recs[recs.indexOf(geneses[k]) - 1]).toBe(lastOfPrevious); // nothing of the previous chain after it
      }
      const cli = await verify(file, '--jwks', jwks);
      expect(cli.code, cli.stdout).toBe(0);
      expect(cli.stdout).toMatch(/^OK 8 records, 3 instance\(s\), \d+ checkpoint\(s\), signatures valid\n/);
      expect(cli.stdout).not.toMatch(/record\(s\) after its last checkpoint/); // each chain ended with a final checkpoint
    });

    it('a generation deleted from the middle fails, with or without --jwks', async () => {
      const f = write(
        'no-middle.jsonl',
        all.filter((l) => !of(ids[1])(l)),
      );
      for (const flags of [[], ['--jwks', jwks]]) {
        const cli = await verify(f, ...flags);
        expect(cli.code, cli.stdout).toBe(1);
        expect(cli.stdout).toMatch(
          new RegExp(`^FAIL .*no-middle\\.jsonl:\\d+ \\(instance ${ids[2]}, seq 0\\): .*continues instance ${ids[1]}.*not in the files given`),
        );
      }
      // The end of a generation cut off (its final checkpoint and records) is caught by the next one's link too.
      const cut = all.filter((l) => l !== all.filter(of(ids[0])).at(-1));
      expect((await verify(write('cut-end.jsonl', cut))).stdout).toMatch(/1 record\(s\) at the end of .* were deleted/);
    });

    it('the first generation deleted fails unless --partial says older files are gone; the last one deleted is the tail window', async () => {
      const f = write(
        'no-first.jsonl',
        all.filter((l) => !of(ids[0])(l)),
      );
      expect((await verify(f, '--jwks', jwks)).stdout).toMatch(/not in the files given/);
      expect((await verify(f, '--jwks', jwks, '--partial')).code).toBe(0);
      // What verify cannot see: the newest generation removed whole (as records cut from the end of the log).
      expect(
        (
          await verify(
            write(
              'no-last.jsonl',
              all.filter((l) => !of(ids[2])(l)),
            ),
            '--jwks',
            jwks,
          )
        ).code,
      ).toBe(0);
    });

    it('a forged unsigned instance fails with --jwks (with or without a genesis record); --allow-unsigned accepts one without', async () => {
      const at = all.findIndex(of(ids[1]));
      const plain = write('forged-plain.jsonl', [...all.slice(0, at), ...forged('forged-1'), ...all.slice(at)]);
      const cli = await verify(plain, '--jwks', jwks);
      expect(cli.code, cli.stdout).toBe(1);
      expect(cli.stdout).toMatch(/^FAIL .*forged-plain\.jsonl:\d+ \(instance forged-1, seq 0\): instance forged-1 has no valid signed checkpoint/);
      const allowed = await verify(plain, '--jwks', jwks, '--allow-unsigned');
      expect(allowed.code, allowed.stdout).toBe(0);
      expect(allowed.stdout).toMatch(/instance forged-1: no valid signed checkpoint \(accepted: --allow-unsigned\)/);
      // Without --jwks the chain alone cannot tell who wrote it: it passes, and says signatures were not checked.
      expect((await verify(plain)).stdout).toMatch(/^OK .*signatures not checked/);

      const kid = String(JSON.parse(readFileSync(jwks, 'utf8')).keys[0].kid);
      const root = write('forged-root.jsonl', [...all.slice(0, at), ...forged('forged-2', { after: null, kid }), ...all.slice(at)]);
      expect((await verify(root, '--jwks', jwks)).stdout).toMatch(/\(instance forged-2, seq 0\): genesis signature is invalid/);
      // Spliced in as the continuation of A: B, the real one, then continues A a second time.
      const lastA = records(file)
        .filter((r) => r.instance === ids[0])
        .at(-1)!;
      const spliced = write('spliced.jsonl', [
        ...all.slice(0, at),
        ...forged('forged-3', { after: { instance: ids[0], seq: lastA.seq, hash: lastA.hash }, kid }),
        ...all.slice(at),
      ]);
      expect((await verify(spliced)).stdout).toMatch(new RegExp(`instance ${ids[0]} is continued by both forged-3 \\(line \\d+\\) and ${ids[1]}`));
      expect((await verify(spliced, '--jwks', jwks)).stdout).toMatch(/\(instance forged-3, seq 0\): genesis signature is invalid/);
    });
  });

  describe('a log written before generations were linked', () => {
    // Written by the Warden before this change (a start, a reload, a restart on the same file), with its public key.
    const fixture = join(REPO_ROOT, 'test/audit/fixtures/unlinked');
    const log = join(fixture, 'decisions.jsonl');
    const jwks = join(fixture, 'audit-key.jwks.json');

    it('verifies as before, with signatures, and says its generations are not linked', async () => {
      const cli = await runCli(['audit', 'verify', '--jwks', jwks, log], { cwd: REPO_ROOT });
      expect(cli.code, cli.stdout).toBe(0);
      expect(cli.stdout).toMatch(/^OK 12 records, 3 instance\(s\), 5 checkpoint\(s\), signatures valid\n/);
      expect(cli.stdout).toMatch(/3 instance\(s\) without a genesis record .*not linked/);
      const r = await verifyFiles([log], { jwks: JSON.parse(readFileSync(jwks, 'utf8')).keys });
      expect(r).toMatchObject({ ok: true, unlinked: expect.arrayContaining([expect.any(String)]) });
      expect(r.unlinked).toHaveLength(3);
    });

    it('an instance forged into it without a signature fails with --jwks', async () => {
      const ls = lines(log);
      const chain = new Chain('forged-old');
      const fake = chain.line(
        'decision',
        JSON.stringify({ time: '2026-12-02T08:00:00.000Z', id: 'f', route: 'pay', decision: 'allow', status: 200, user: 'mallory' }),
      );
      const f = join(dir, 'unlinked-forged.jsonl');
      writeFileSync(f, [...ls.slice(0, 7), fake, ...ls.slice(7)].join('\n') + '\n');
      const cli = await runCli(['audit', 'verify', '--jwks', jwks, f], { cwd: REPO_ROOT });
      expect(cli.code, cli.stdout).toBe(1);
      expect(cli.stdout).toMatch(/\(instance forged-old, seq 0\): instance forged-old has no valid signed checkpoint/);
    });
  });

  it('config: a file sink needs a path, an http sink a url', () => {
    const bad = (d: string) => () => parseConfig(config(d), { env: { UPSTREAM_URL: 'http://127.0.0.1:1' } });
    expect(bad('{ sink: file }')).toThrow(/audit\.decisions\.path.*needs a path|needs a path/);
    expect(bad('{ sink: http }')).toThrow(/needs a url/);
    expect(bad('{ sink: stdout, path: /tmp/x }')).toThrow(/path is for the file sink/);
    expect(bad('{ sink: stdout, write_interval: 11s }')).toThrow(/write_interval.*at most 10s|at most 10s/);
    // Another sink's settings are refused, not accepted and ignored.
    expect(bad('{ sink: file, path: /tmp/x, max_buffer: 10 }')).toThrow(/max_buffer is for the http sink, not file/);
    expect(bad('{ path: /tmp/x, retries: 3 }')).toThrow(/retries is for the http sink, not file/);
    expect(bad('{ sink: http, url: "http://127.0.0.1:1/x", keep: 3 }')).toThrow(/keep is for the file sink, not http/);
    expect(bad('{ sink: stdout, batch: 10, rotate: 1MB }')).toThrow(/batch is for the http sink, not stdout[\s\S]*rotate is for the file sink, not stdout/);
    expect(() =>
      parseConfig(config('{ sink: http, url: "http://127.0.0.1:1/x", max_buffer_bytes: 1MiB, retries: 1 }'), { env: { UPSTREAM_URL: 'http://127.0.0.1:1' } }),
    ).not.toThrow();
  });
});
