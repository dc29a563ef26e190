/**
 * Approval notifications are retried with backoff, and a delivery that never
 * succeeds is visible: counted in metrics and written on the approval record
 * (#12 A.12). The receiver is a real HTTP server that fails on purpose.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { baseConfig, createHarness, runStage, type Harness } from './harness.js';
import { until } from '../support/eventually.js';
import { createApprovalRepo } from '../../src/approvals/records.js';

const SECRET = 'webhook-secret-0123456789';
const pay = (amount: number) => JSON.stringify({ amount, to: 'mallory' });

let server: Server;
let url: string;
/** How many deliveries fail before one succeeds (Infinity: all fail). */
let failFirst = 0;
let received = 0;
let succeeded = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      if (received <= failFirst) return void res.writeHead(503).end();
      succeeded++;
      res.writeHead(204).end();
    });
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function held(h: Harness, path: string): Promise<string> {
  const err = await runStage(h, h.state({ path, body: pay(500) }));
  expect(err?.code).toBe('approval_pending');
  return err!.extra.approval_id as string;
}

describe('approval notifications', () => {
  it('a webhook that fails twice is retried and delivered once', async () => {
    received = 0;
    succeeded = 0;
    failFirst = 2;
    const h = await createHarness(baseConfig({ hold: '50ms', notify: [{ webhook: { url, secret: SECRET } }] }));
    try {
      await held(h, '/pay/1');
      // The counter moves once Warden has seen the 2xx (after the receiver counted it).
      await until(() => /warden_approval_notifications_total\{channel="webhook",result="sent_after_retry"\} 1/.test(h.rt.metrics.render()), {
        timeoutMs: 10_000,
        what: 'a delivery after two failures',
      });
      expect(received).toBe(3);
      expect(succeeded).toBe(1);
    } finally {
      await h.close();
    }
  });

  it('a webhook that never answers 2xx is retried with backoff, then counted and recorded on the approval', async () => {
    received = 0;
    succeeded = 0;
    failFirst = Infinity;
    const h = await createHarness(baseConfig({ hold: '50ms', notify: [{ webhook: { url, secret: SECRET } }] }));
    try {
      const id = await held(h, '/pay/2');
      const started = Date.now();
      await until(() => /result="failed"/.test(h.rt.metrics.render()), { timeoutMs: 20_000, what: 'the final failure' });
      // Five tries spaced 0.5, 1, 2 and 4 s apart: backoff, not a burst.
      expect(received).toBe(5);
      expect(Date.now() - started).toBeGreaterThanOrEqual(7_000);
      const repo = createApprovalRepo(h.rt.store, { ttlMs: 600_000 });
      await until(async () => (await repo.get(id))?.notifyFailures?.[0]?.channel === 'webhook', {
        timeoutMs: 5_000,
        what: 'the failure on the approval record',
      });
      expect((await repo.get(id))!.notifyFailures![0].error).toContain('503');
    } finally {
      await h.close();
    }
  }, 30_000);

  it('a failure recorded on the approval (shown to reviewers) never carries a password of the webhook URL', async () => {
    // fetch refuses a URL with credentials and names it, password and all, in its error.
    const withCredentials = url.replace('http://', 'http://hook-user:hook-pass-s3cr3t@');
    const h = await createHarness(baseConfig({ hold: '50ms', notify: [{ webhook: { url: withCredentials, secret: SECRET } }] }));
    try {
      const id = await held(h, '/pay/3');
      const repo = createApprovalRepo(h.rt.store, { ttlMs: 600_000 });
      await until(async () => (await repo.get(id))?.notifyFailures?.[0]?.channel === 'webhook', {
        timeoutMs: 20_000,
        what: 'the failure on the approval record',
      });
      const recorded = (await repo.get(id))!.notifyFailures![0].error;
      expect(recorded).toContain('[redacted]@127.0.0.1');
      expect(recorded).not.toContain('hook-pass-s3cr3t');
    } finally {
      await h.close();
    }
  }, 30_000);
});
