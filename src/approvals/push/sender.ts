/**
 * One push message to one subscription: RFC 8291 encryption (aes128gcm) and
 * the RFC 8292 VAPID header come from the `web-push` package (the only module
 * that imports it); the POST itself is Warden's own, so that the endpoint rule
 * (endpoint-policy.ts) holds: the connection goes to the checked address,
 * redirects are never followed, the whole exchange has one deadline, and at
 * most a few KiB of the answer are read.
 */

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
// Types only: the module loads at the first notification (it and its crypto dependencies stay out of a gateway that never pushes; #17).
import type webpush from 'web-push';
import type { PushConfig } from '../../config/schema.js';
import { checkEndpointUrl, resolveEndpoint, type EndpointPolicy, type EndpointRefusal } from './endpoint-policy.js';
import type { PushSubscriptionRecord } from './subscriptions.js';

/** How one delivery ended: `gone` = the push service said 404/410 (the subscription is dead). */
export type PushOutcome =
  | { result: 'sent'; status: number }
  | { result: 'gone'; status: number }
  | { result: 'failed'; status?: number; error: string }
  | { result: 'timeout' }
  | { result: 'refused'; reason: EndpointRefusal };

export interface PushSender {
  /** `ttlSeconds`: how long the push service may keep it for an offline browser; `topic`: a newer message with the same topic replaces it. */
  send(sub: PushSubscriptionRecord, payload: string, options: { ttlSeconds: number; topic?: string }): Promise<PushOutcome>;
}

const MAX_ANSWER_BYTES = 4096;

/** Build a sender from `approvals.push`. */
export function createPushSender(cfg: PushConfig, resolver?: Parameters<typeof resolveEndpoint>[2]): PushSender {
  const policy: EndpointPolicy = { hosts: cfg.endpoint_hosts, allowLoopback: cfg.allow_loopback };
  const vapidDetails = { subject: cfg.subject, publicKey: cfg.vapid_public_key, privateKey: cfg.vapid_private_key };

  return {
    async send(sub, payload, options) {
      const check = checkEndpointUrl(sub.endpoint, policy);
      if (!check.ok) return { result: 'refused', reason: check.reason };
      const deadline = Date.now() + cfg.timeout;
      const target = await resolveEndpoint(check, cfg.timeout, resolver);
      if (!target.ok)
        return {
          result: target.reason === 'dns' ? 'failed' : 'refused',
          ...(target.reason === 'dns' ? { error: 'dns' } : { reason: target.reason }),
        } as PushOutcome;
      const lib = (await import('web-push')).default;
      let details: webpush.RequestDetails;
      try {
        details = lib.generateRequestDetails({ endpoint: sub.endpoint, keys: { p256dh: sub.p256dh, auth: sub.auth } }, payload, {
          vapidDetails,
          TTL: Math.max(0, Math.floor(options.ttlSeconds)),
          contentEncoding: 'aes128gcm',
          urgency: 'high',
          ...(options.topic ? { topic: options.topic } : {}),
        });
      } catch (err) {
        // A malformed browser key: nothing can ever be delivered to it.
        return { result: 'failed', error: `encrypt: ${(err as Error).message.slice(0, 120)}` };
      }
      return post(check.url, details, target, deadline - Date.now());
    },
  };
}

function post(url: URL, details: webpush.RequestDetails, target: { address: string; family: 4 | 6 }, timeoutMs: number): Promise<PushOutcome> {
  if (timeoutMs <= 0) return Promise.resolve({ result: 'timeout' });
  // Connect to the address that was checked, whatever a second lookup would say.
  const pinned: LookupFunction = (_host, opts, cb) => {
    if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [target]);
    else cb(null, target.address, target.family);
  };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(details.headers)) headers[k] = String(v);
  const body = details.body ?? Buffer.alloc(0);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<PushOutcome>((resolve) => {
    let settled = false;
    const done = (o: PushOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = send(
      {
        method: 'POST',
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (url.protocol === 'https:' ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        headers,
        lookup: pinned,
        agent: false,
        ...(url.protocol === 'https:' && isIP(url.hostname.replace(/^\[|\]$/g, '')) === 0 ? { servername: url.hostname } : {}),
      },
      (res: IncomingMessage) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) res.destroy();
        });
        const status = res.statusCode ?? 0;
        const finish = () => {
          if (status === 404 || status === 410) done({ result: 'gone', status });
          else if (status >= 200 && status < 300) done({ result: 'sent', status });
          else done({ result: 'failed', status, error: `push service answered ${status}` });
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    const timer = setTimeout(() => {
      done({ result: 'timeout' });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => done({ result: 'failed', error: (err as NodeJS.ErrnoException).code ?? 'connection failed' }));
    req.end(body);
  });
}
