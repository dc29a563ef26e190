/** A real HTTP receiver for approval webhooks: records every delivery. */

import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { ApprovalNotice } from '../../src/approvals/notifiers.js';

export interface Delivery {
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  notice: ApprovalNotice;
}

export interface WebhookSink {
  url: string;
  deliveries: Delivery[];
  /** Resolve with the delivery for which `match` holds (waits for it). */
  next(match?: (d: Delivery) => boolean, timeoutMs?: number): Promise<Delivery>;
  close(): Promise<void>;
}

/** Start a webhook receiver on a free loopback port. */
export async function startWebhookSink(status = 204): Promise<WebhookSink> {
  const deliveries: Delivery[] = [];
  const waiting: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      deliveries.push({ headers: req.headers, raw, notice: JSON.parse(raw) as ApprovalNotice });
      res.writeHead(status).end();
      for (const w of waiting.splice(0)) w();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const seen = new Set<Delivery>();
  return {
    url,
    deliveries,
    async next(match = () => true, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const d = deliveries.find((x) => !seen.has(x) && match(x));
        if (d) {
          seen.add(d);
          return d;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no webhook delivery arrived');
        await new Promise<void>((r) => {
          const t = setTimeout(r, left);
          waiting.push(() => (clearTimeout(t), r()));
        });
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The `t` secret of a review link. */
export function reviewSecret(reviewUrl: string): string {
  return new URL(reviewUrl).searchParams.get('t') ?? '';
}
