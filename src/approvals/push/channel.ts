/**
 * The Web Push channel of one config generation: the notifier the approvals
 * service calls, the subscription store the console writes, and what the
 * console's script needs (the VAPID public key, the endpoint rule). Absent
 * without `approvals.push`, or when nobody can sign in to subscribe.
 */

import type { Runtime } from '../../core/runtime.js';
import type { Notifier } from '../notifiers.js';
import type { ApprovalRecord } from '../records.js';
import type { EndpointPolicy } from './endpoint-policy.js';
import { createPushNotifier } from './notifier.js';
import type { SubscriptionRepo } from './subscriptions.js';

export interface PushChannel {
  readonly notifier: Notifier;
  readonly repo: SubscriptionRepo;
  /** The application server key a browser subscribes with (base64url, uncompressed P-256). */
  readonly publicKey: string;
  readonly policy: EndpointPolicy;
}

export function createPushChannel(rt: Runtime, mayDecide: (rec: ApprovalRecord, user: string) => Promise<boolean>): PushChannel | null {
  const cfg = rt.config.approvals.push;
  if (!cfg) return null;
  if (rt.sessions.mode === null) {
    rt.logger.warn('approvals.push is set but nobody can sign in (identity.login or the dev issuer): no browser can subscribe, push is off');
    return null;
  }
  const notifier = createPushNotifier({
    cfg,
    store: rt.store,
    logger: rt.logger,
    metrics: rt.metrics,
    consoleUrl: `${rt.publicUrl.replace(/\/+$/, '')}/.warden/console`,
    mayDecide,
  });
  return { notifier, repo: notifier.repo, publicKey: cfg.vapid_public_key, policy: { hosts: cfg.endpoint_hosts, allowLoopback: cfg.allow_loopback } };
}
