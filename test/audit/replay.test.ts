/**
 * `warden replay` end to end: a real Warden serves real traffic (REST and MCP
 * through the MCP SDK client) with the decision log on; the built CLI then
 * decides the recorded log again under changed tuples and configs and must
 * report exactly the requests that flip, with --json, --allow filters and
 * exit codes, never contacting the upstream.
 */

import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { requireBuiltCli, runCli } from '../support/cli.js';
import { createStoreWithModel, startOpenFga, type OpenFgaServer } from '../support/openfga.js';
import { transformer } from '@openfga/syntax-transformer';

const MODEL = `model
  schema 1.1
type user
type doc
  relations
    define reader: [user]
    define can_read: reader
type account
  relations
    define payer: [user]
    define can_pay: payer
type file
  relations
    define reader: [user]
    define writer: [user]
    define can_read: reader or writer
    define can_delete: writer
`;

const TUPLES = `- { user: user:alice, relation: reader, object: doc:1 }
- { user: user:bob, relation: reader, object: doc:2 }
- { user: user:alice, relation: payer, object: account:acme }
- { user: user:alice, relation: reader, object: file:readme.txt }
- { user: user:bob, relation: reader, object: file:readme.txt }
- { user: user:alice, relation: writer, object: file:notes.txt }
`;

interface Opts {
  log?: string;
  when?: string;
  legacy?: boolean;
  payContext?: boolean;
  added?: boolean;
}

function gatewayYaml(dir: string, o: Opts): string {
  return `
server: { listen: "127.0.0.1:0" }
identity: { dev_issuer: true }
authz: { engine: embedded, model: ${dir}/model.fga, tuples: ${dir}/tuples.yaml, cache_ttl: 0 }
approvals: { hold: 10ms }
${o.log ? `audit: { decisions: { sink: file, path: "${o.log}", checkpoint_every: 4 } }` : ''}
routes:
  - name: docs
    match: { path: "/docs/:doc", methods: [GET] }
    upstream: { url: "\${UPSTREAM_URL}" }
    authorize: [{ user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }]
  - name: pay
    match: { path: "/pay/:account", methods: [POST] }
    upstream: { url: "\${UPSTREAM_URL}" }
    authorize:
      - { user: "user:{user}", relation: can_pay, object: "account:{path.account}"${o.payContext ? ', contextual_tuples: [{ user: "user:{user}", relation: payer, object: "account:{body.currency}" }]' : ''} }
    approval: { when: '${o.when ?? 'body.amount > 100'}', message: "Pay {body.amount} to {body.to}" }
${
  o.legacy === false
    ? ''
    : `  - name: legacy
    match: { path: "/legacy/**" }
    upstream: { url: "\${UPSTREAM_URL}" }
    public: true
`
}${
    o.added
      ? `  - name: status
    match: { path: "/status" }
    upstream: { url: "\${UPSTREAM_URL}" }
    public: true
`
      : ''
  }  - name: files-mcp
    match: { path: /mcp/files }
    upstream: { url: "\${MCP_URL}" }
    authorize: []
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]
        delete_file:
          authorize: [{ user: "user:{user}", relation: can_delete, object: "file:{args.path}" }]
          approval: { message: "Delete {args.path}" }
`;
}

type Report = {
  records: number;
  evaluated: number;
  changed: number;
  disallowed: number;
  not_evaluated: number;
  not_evaluated_reasons: Record<string, number>;
  ok: boolean;
  routes: Record<
    string,
    { evaluated: number; unchanged: number; changes: Record<string, { count: number; allowed: number; examples: Array<Record<string, any>> }> }
  >;
};

describe('warden replay', () => {
  let dir: string;
  let log: string;
  let upstream: Upstream;
  let mcp: ExampleMcpServer;
  const ids: Record<string, string> = {};
  let env: NodeJS.ProcessEnv;

  /** Write a config (and optionally new tuples) and replay the log under it. */
  async function replay(o: Opts, args: string[] = [], tuples = TUPLES) {
    const sub = mkdtempSync(join(dir, 'cfg-'));
    copyFileSync(join(dir, 'model.fga'), join(sub, 'model.fga'));
    writeFileSync(join(sub, 'tuples.yaml'), tuples);
    writeFileSync(join(sub, 'new.yaml'), gatewayYaml(sub, o));
    const before = upstream.requests.length + mcp.calls.length;
    const r = await runCli(['replay', '-c', join(sub, 'new.yaml'), ...args, log], { cwd: dir, env });
    // Replay never contacts an upstream.
    expect(upstream.requests.length + mcp.calls.length).toBe(before);
    return r;
  }
  const json = (r: { stdout: string }) => JSON.parse(r.stdout) as Report;

  beforeAll(async () => {
    requireBuiltCli();
    dir = mkdtempSync(join(tmpdir(), 'warden-replay-'));
    writeFileSync(join(dir, 'model.fga'), MODEL);
    writeFileSync(join(dir, 'tuples.yaml'), TUPLES);
    log = join(dir, 'decisions.jsonl');
    [upstream, mcp] = await Promise.all([startUpstream(), startExampleMcpServer()]);
    env = { ...process.env, UPSTREAM_URL: upstream.url, MCP_URL: mcp.url };
    const w: WardenHandle = await startWarden({ config: gatewayYaml(dir, { log }), env: { UPSTREAM_URL: upstream.url, MCP_URL: mcp.url }, logLevel: 'warn' });
    try {
      const alice = await w.token('bot', 'alice');
      const bob = await w.token('bot', 'bob');
      const send = async (name: string, method: string, path: string, token?: string, body?: unknown) => {
        const res = await fetch(`${w.url}${path}`, {
          method,
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(body ? { 'content-type': 'application/json' } : {}),
            'x-request-id': `req-${name}`,
          },
          body: body ? JSON.stringify(body) : undefined,
        });
        ids[name] = `req-${name}`;
        return res.status;
      };
      expect(await send('alice-doc1', 'GET', '/docs/1', alice)).toBe(200);
      expect(await send('bob-doc1', 'GET', '/docs/1', bob)).toBe(403);
      expect(await send('bob-doc2', 'GET', '/docs/2', bob)).toBe(200);
      expect(await send('pay-50', 'POST', '/pay/acme', alice, { amount: 50, to: 'shop', memo: 'private memo text' })).toBe(200);
      expect(await send('pay-500', 'POST', '/pay/acme', alice, { amount: 500, to: 'car dealer' })).toBe(202);
      expect(await send('bob-pay', 'POST', '/pay/acme', bob, { amount: 10, to: 'shop' })).toBe(403);
      expect(await send('legacy', 'GET', '/legacy/page')).toBe(200);
      expect(await send('status', 'GET', '/status')).toBe(404);

      const connect = async (user: string) => {
        const token = await w.mcpToken('/mcp/files', 'bot', user);
        const transport = new StreamableHTTPClientTransport(new URL(`${w.url}/mcp/files`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
        const client = new Client({ name: `replay-${user}`, version: '1.0.0' });
        await client.connect(transport);
        await client.listTools();
        return client;
      };
      const a = await connect('alice');
      const b = await connect('bob');
      await a.callTool({ name: 'read_file', arguments: { path: 'readme.txt' } });
      await expect(b.callTool({ name: 'read_file', arguments: { path: 'notes.txt' } })).rejects.toThrow();
      await expect(a.callTool({ name: 'delete_file', arguments: { path: 'notes.txt' } })).rejects.toThrow(); // held: approval_pending
      await a.close();
      await b.close();
    } finally {
      await w.close();
    }
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([upstream?.close(), mcp?.close()]);
    if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  });

  it('records carry only the fields the rules read (never the rest of the body)', () => {
    const text = readFileSync(log, 'utf8');
    expect(text).not.toContain('private memo text');
    const recs = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, any>);
    const pay = recs.find((r) => r.id === ids['pay-50'])!;
    expect(pay).toMatchObject({ route: 'pay', params: { account: 'acme' }, input: { 'body.amount': 50, 'body.to': 'shop' } });
    expect(Object.keys(pay.input)).toEqual(['body.amount', 'body.to']);
    expect(recs.find((r) => r.id === ids['pay-500'])).toMatchObject({ decision: 'pending', code: 'approval_pending' });
    expect(recs.find((r) => r.id === ids['bob-doc1'])).toMatchObject({ decision: 'deny', code: 'forbidden' });
    const calls = recs.filter((r) => r.mcp_method === 'tools/call');
    expect(calls.map((r) => [r.tool, r.input, r.decision])).toEqual([
      ['read_file', { 'args.path': 'readme.txt' }, 'allow'],
      ['read_file', { 'args.path': 'notes.txt' }, 'deny'],
      ['delete_file', { 'args.path': 'notes.txt' }, 'pending'],
    ]);
  });

  it('the same config decides every recorded request the same way (exit 0)', async () => {
    const r = await replay({}, ['--json']);
    expect(r.stderr).toMatch(/replay: \d+ records in/);
    const out = json(r);
    expect(out.changed).toBe(0);
    expect(out.not_evaluated_reasons).toEqual({});
    expect(out.evaluated).toBe(out.records);
    expect(out.routes['files-mcp'].evaluated).toBeGreaterThanOrEqual(7); // initialize, notifications, lists, calls, DELETE
    expect(r.code).toBe(0);
    const text = await replay({});
    expect(text.stdout).toMatch(/route docs: 3 decided, no change\n/);
    expect(text.stdout).toMatch(/OK no decision changes\n$/);
  });

  it('a tuple change flips exactly the requests it touches, REST and MCP (exit 1)', async () => {
    const tuples =
      TUPLES.replace('{ user: user:bob, relation: reader, object: doc:2 }', '{ user: user:bob, relation: reader, object: doc:1 }') +
      '- { user: user:bob, relation: reader, object: file:notes.txt }\n';
    const r = await replay({}, ['--json'], tuples);
    expect(r.code).toBe(1);
    const out = json(r);
    expect(out.changed).toBe(3);
    expect(out.disallowed).toBe(3);
    expect(out.ok).toBe(false);
    const docs = out.routes.docs.changes;
    expect(Object.keys(docs).sort()).toEqual(['allow->deny', 'deny->allow']);
    expect(docs['deny->allow']).toMatchObject({ count: 1, allowed: 0 });
    expect(docs['deny->allow'].examples).toEqual([
      expect.objectContaining({ id: ids['bob-doc1'], agent: 'bot', user: 'bob', method: 'GET', path: '/docs/1', was: 'deny forbidden (403)', now: 'allow' }),
    ]);
    expect(docs['allow->deny'].examples).toEqual([
      expect.objectContaining({ id: ids['bob-doc2'], was: 'allow', now: 'deny forbidden (403)', decided_by: 'user:bob can_read doc:2 = false' }),
    ]);
    expect(docs['allow->deny'].examples[0].time).toMatch(/^\d{4}-\d\d-\d\dT/);
    const files = out.routes['files-mcp'].changes;
    expect(Object.keys(files)).toEqual(['deny->allow']);
    expect(files['deny->allow'].examples).toEqual([expect.objectContaining({ user: 'bob', method: 'POST', path: '/mcp/files', tool: 'read_file' })]);
    expect(out.routes.pay.changes).toEqual({});

    const text = await replay({}, [], tuples);
    expect(text.stdout).toContain('route docs: 3 decided, 2 changed\n  allow->deny        1\n');
    expect(text.stdout).toContain(`GET /docs/2: allow → deny forbidden (403)\n        decided by: user:bob can_read doc:2 = false\n`);
    expect(text.stdout).toMatch(/FAIL 3 change\(s\) not allowed by --allow \(of 3\)\n$/);
  });

  it('--allow filters accept changes by route, change and tool; what is left fails the run', async () => {
    const tuples =
      TUPLES.replace('{ user: user:bob, relation: reader, object: doc:2 }', '{ user: user:bob, relation: reader, object: doc:1 }') +
      '- { user: user:bob, relation: reader, object: file:notes.txt }\n';
    const some = await replay({}, ['--json', '--allow', 'route=docs,change=deny->allow'], tuples);
    expect(some.code).toBe(1);
    expect(json(some)).toMatchObject({ changed: 3, disallowed: 2 });
    const all = await replay({}, ['--allow', 'route=docs', '--allow', 'change=deny->allow,tool=read_file'], tuples);
    expect(all.stdout).toMatch(/OK 3 change\(s\), all allowed by --allow\n$/);
    expect(all.code).toBe(0);
    const wrongTool = await replay({}, ['--json', '--allow', 'route=docs', '--allow', 'change=deny->allow,tool=delete_file'], tuples);
    expect(json(wrongTool).disallowed).toBe(1);
    expect(wrongTool.code).toBe(1);
  });

  it('a route removed, a route added, holds gained and dropped', async () => {
    const r = await replay({ legacy: false, added: true, when: 'body.amount > 20 && body.amount < 400' }, ['--json']);
    expect(r.code).toBe(1);
    const out = json(r);
    expect(out.routes.legacy.changes['allow->deny'].examples).toEqual([
      expect.objectContaining({ id: ids.legacy, now: 'deny not_found (404)', now_route: '-' }),
    ]);
    expect(out.routes['-'].changes['deny->allow'].examples).toEqual([
      expect.objectContaining({ id: ids.status, was: 'deny not_found (404)', now: 'allow', now_route: 'status' }),
    ]);
    expect(out.routes.pay.changes['new-hold'].examples.map((e) => e.id)).toEqual([ids['pay-50']]);
    expect(out.routes.pay.changes['dropped-hold'].examples.map((e) => e.id)).toEqual([ids['pay-500']]);
    expect(out.changed).toBe(4);
  });

  it('records the new rules cannot be decided from are counted with the reason', async () => {
    const r = await replay({ payContext: true }, ['--json']);
    const out = json(r);
    expect(out.not_evaluated_reasons).toEqual({ 'the new rules read fields the log did not record (body.currency)': 3 });
    expect(out.changed).toBe(0);
    expect(r.code).toBe(0);
    const text = await replay({ payContext: true });
    expect(text.stdout).toContain('not decided again: 3\n       3  the new rules read fields the log did not record (body.currency)\n');
  });

  it('rotated files in any order give the same report as one file', async () => {
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const older = join(dir, 'split.jsonl.1');
    const newer = join(dir, 'split.jsonl');
    writeFileSync(older, lines.slice(0, 9).join('\n') + '\n');
    writeFileSync(newer, lines.slice(9).join('\n') + '\n');
    const tuples = TUPLES.replace('{ user: user:bob, relation: reader, object: doc:2 }', '{ user: user:bob, relation: reader, object: doc:1 }');
    const whole = json(await replay({}, ['--json'], tuples));
    const sub = mkdtempSync(join(dir, 'cfg-'));
    copyFileSync(join(dir, 'model.fga'), join(sub, 'model.fga'));
    writeFileSync(join(sub, 'tuples.yaml'), tuples);
    writeFileSync(join(sub, 'new.yaml'), gatewayYaml(sub, {}));
    const r = await runCli(['replay', '--json', '-c', join(sub, 'new.yaml'), newer, older], { cwd: dir, env });
    const split = json(r);
    expect(r.code).toBe(1);
    expect(split.records).toBe(whole.records);
    expect(split.changed).toBe(2);
    expect(split.routes.docs.changes).toEqual(
      Object.fromEntries(
        Object.entries(whole.routes.docs.changes).map(([k, v]) => [
          k,
          { ...v, examples: v.examples.map((e) => ({ ...e, file: expect.any(String), line: expect.any(Number) })) },
        ]),
      ),
    );
  });

  describe('against an OpenFGA store (--fga-api-url, --fga-store-id, --fga-model-id)', () => {
    let fga: OpenFgaServer;
    beforeAll(async () => {
      fga = await startOpenFga();
    }, 60_000);
    afterAll(async () => fga?.stop());

    it("decides with the store instead of the config's embedded engine and sees the same flips", async () => {
      const model = transformer.transformDSLToJSONObject(MODEL) as unknown as Record<string, unknown>;
      const tuples = [
        { user: 'user:alice', relation: 'reader', object: 'doc:1' },
        { user: 'user:bob', relation: 'reader', object: 'doc:1' }, // bob: doc 1 instead of doc 2
        { user: 'user:alice', relation: 'payer', object: 'account:acme' },
        { user: 'user:alice', relation: 'reader', object: 'file:readme.txt' },
        { user: 'user:bob', relation: 'reader', object: 'file:readme.txt' },
        { user: 'user:alice', relation: 'writer', object: 'file:notes.txt' },
      ];
      const { storeId, modelId } = await createStoreWithModel(fga.apiUrl, model, tuples, 'warden-replay');
      const r = await replay({}, ['--json', '--fga-api-url', fga.apiUrl, '--fga-store-id', storeId, '--fga-model-id', modelId]);
      expect(r.code).toBe(1);
      const out = json(r);
      expect(out.changed).toBe(2);
      expect(out.routes.docs.changes['deny->allow'].examples.map((e) => e.id)).toEqual([ids['bob-doc1']]);
      expect(out.routes.docs.changes['allow->deny'].examples.map((e) => e.id)).toEqual([ids['bob-doc2']]);
      // Only the store id is given: the URL must come with it.
      const half = await replay({}, ['--fga-store-id', storeId]);
      expect(half.code).toBe(2);
      expect(half.stderr).toContain('needs --fga-api-url');
    });
  });

  it('a run that decides nothing again fails (exit 1): a file that is not a decision log passes no gate', async () => {
    const notALog = join(dir, 'not-a-log.jsonl');
    writeFileSync(notALog, '{"level":"info","msg":"warden listening"}\n');
    const sub = mkdtempSync(join(dir, 'cfg-'));
    copyFileSync(join(dir, 'model.fga'), join(sub, 'model.fga'));
    writeFileSync(join(sub, 'tuples.yaml'), TUPLES);
    writeFileSync(join(sub, 'new.yaml'), gatewayYaml(sub, {}));
    const r = await runCli(['replay', '-c', join(sub, 'new.yaml'), notALog], { cwd: dir, env });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL nothing decided again (1 record(s) read)');
  });

  it('usage and config errors exit 2', async () => {
    expect((await replay({}, ['--allow', 'colour=red'])).code).toBe(2);
    expect((await replay({}, ['--allow', 'change=sideways'])).stderr).toContain('unknown change sideways');
    const missing = await runCli(['replay', '-c', join(dir, 'nope.yaml'), log], { cwd: dir, env });
    expect(missing.code).toBe(2);
    const noLog = await runCli(['replay', '-c', join(dir, 'nope.yaml')], { cwd: dir, env });
    expect(noLog.code).toBe(2);
  });
});
