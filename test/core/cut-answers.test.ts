/**
 * Answers that do not reach the agent whole, end to end: the audit line says
 * `cut` and who cut it. Before, an agent that left in the middle of a large
 * download, or an upstream that broke off after its head, left an audit line
 * reading "status 200", like a success.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type IncomingMessage } from 'node:http';
import type { ServerResponse } from 'node:http';
import { startWardenWithUpstream, closeAll, type WardenHandle } from '../support/gateway.js';
import { writeRepeated, type Upstream } from '../support/upstream.js';
import { devPolicyYaml, publicRouteYaml } from '../support/config.js';
import { until } from '../support/eventually.js';

const config = (up: string) => `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/core/fixtures')}
routes:
${publicRouteYaml(up)}
`;

let warden: WardenHandle;
let upstream: Upstream;
/** Upstream answers still open (the slow ones), to end them after each case. */
const open = new Set<ServerResponse>();

beforeAll(async () => {
  ({ warden, upstream } = await startWardenWithUpstream(config));
  const chunk = Buffer.alloc(64 * 1024, 'z');
  upstream.setStreamingHandler((req, res) => {
    req.resume();
    open.add(res);
    res.on('close', () => open.delete(res));
    if (req.url === '/whole') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' }).end('whole');
    } else if (req.url === '/large') {
      // 64 MB, written as fast as the agent reads.
      const count = 1024;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length * count) });
      writeRepeated(res, chunk, count);
    } else if (req.url === '/breaks') {
      // Declares 1,000 bytes, sends 400, then the connection dies.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write(Buffer.alloc(400, 'b'));
      setTimeout(() => res.socket?.destroy(), 30);
    } else if (req.url === '/slow') {
      // Answers after 2 s (the agent leaves before that).
      setTimeout(() => res.writeHead(200).end('late'), 2_000);
    }
  });
});
afterAll(async () => {
  for (const res of open) res.destroy();
  await closeAll(warden, upstream);
});

/** GET `path` and read until `leave` says so (then destroy the connection), or to the end. */
function get(path: string, leave: (received: number) => boolean = () => false): Promise<{ received: number; complete: boolean }> {
  return new Promise((resolve) => {
    let received = 0;
    let settled = false;
    const finish = (complete: boolean) => {
      if (settled) return;
      settled = true;
      resolve({ received, complete });
    };
    const req = request(`${warden.url}${path}`, { agent: false }, (res: IncomingMessage) => {
      res.on('data', (c: Buffer) => {
        received += c.length;
        if (leave(received)) {
          req.destroy();
          finish(false);
        }
      });
      res.on('end', () => finish(res.complete));
      res.on('aborted', () => finish(false));
      res.on('error', () => finish(false));
    });
    req.on('error', () => finish(false));
    req.end();
  });
}

/** The audit line of the request to `path` that was sent after `before` lines. */
async function auditOf(path: string, before: number): Promise<Record<string, unknown>> {
  let line: Record<string, unknown> | undefined;
  await until(
    () =>
      (line = warden
        .audits()
        .slice(before)
        .find((a) => a.path === path)) !== undefined,
    { timeoutMs: 5_000, what: `the audit line of ${path}` },
  );
  return line!;
}

describe('answers cut before the end', () => {
  it('a whole answer has no cut field', async () => {
    const before = warden.audits().length;
    expect(await get('/public/whole')).toEqual({ received: 5, complete: true });
    const line = await auditOf('/public/whole', before);
    expect(line.status).toBe(200);
    expect(line).not.toHaveProperty('cut');
  });

  it('an agent that leaves in the middle of a large download: cut "agent"', async () => {
    const before = warden.audits().length;
    const got = await get('/public/large', (n) => n >= 1024 * 1024);
    expect(got.complete).toBe(false);
    const line = await auditOf('/public/large', before);
    expect(line).toMatchObject({ status: 200, decision: 'allow', cut: 'agent' });
  });

  it('an upstream that breaks off after its head: cut "upstream"', async () => {
    const before = warden.audits().length;
    const got = await get('/public/breaks');
    expect(got).toEqual({ received: 400, complete: false });
    const line = await auditOf('/public/breaks', before);
    expect(line).toMatchObject({ status: 200, cut: 'upstream' });
  });

  it('an agent that leaves before the upstream answers: cut "agent", and no status (none was sent)', async () => {
    const before = warden.audits().length;
    const req = request(`${warden.url}/public/slow`, { agent: false });
    req.on('error', () => {});
    req.end();
    // Leave once the upstream has the request.
    await until(() => upstream.requests.some((r) => r.url === '/slow'), { timeoutMs: 5_000, what: 'the upstream got /slow' });
    req.destroy();
    const line = await auditOf('/public/slow', before);
    expect(line).toMatchObject({ cut: 'agent' });
    expect(line).not.toHaveProperty('status');
  });

  it('counts them in warden_responses_cut_total by route and side', async () => {
    const text = await (await fetch(`${warden.adminUrl}/metrics`)).text();
    const count = (by: string) => Number(new RegExp(`^warden_responses_cut_total\\{by="${by}",route="public"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    // The cases above: two agents left, one upstream broke off (this file's tests run in order).
    expect(count('agent')).toBe(2);
    expect(count('upstream')).toBe(1);
  });
});
