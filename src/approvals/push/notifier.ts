/**
 * The Web Push channel: each new approval is pushed to every browser of every
 * person who may decide it (the request's user, or — when the rule names
 * `approvers:` — each subscribed person the relation admits, checked fresh).
 * What is sent: the rule's message, the agent, the confirmation code, the
 * deadline and a link to the console. Never the request body, a header, the
 * review link's secret or any token: the link opens the console, where the
 * person signs in. Every outcome is counted in `warden_push_notifications_total`;
 * a failure is logged (subscription id and push-service origin only) and never
 * touches the approval. A 404/410 from the push service deletes the subscription.
 */

import type { PushConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { Store } from '../../store/store.js';
import type { ApprovalNotice, Notifier } from '../notifiers.js';
import type { ApprovalRecord } from '../records.js';
import { createPushSender, type PushSender } from './sender.js';
import { createSubscriptionRepo, subscriptionId, type SubscriptionRepo } from './subscriptions.js';

/** Longest message put in a push (the encrypted record must stay under 4 KiB). */
const MAX_MESSAGE = 1000;
/** The push service keeps a message for an offline browser at most this long (or until the approval expires). */
const MAX_TTL_SECONDS = 24 * 3600;

/** What the service worker receives (JSON). */
export interface PushPayload {
  v: 1;
  type: 'approval.requested';
  title: string;
  message: string;
  agent: string;
  code: string;
  expires_at: string;
  /** The console, with the approval's card as fragment. */
  url: string;
  /** Notifications with the same tag replace each other. */
  tag: string;
}

/** Build the payload for `rec` (exported for tests: what leaves Warden). */
export function pushPayload(rec: ApprovalRecord, consoleUrl: string): PushPayload {
  const r = rec.request;
  const message = (rec.message || `${r.agent} is waiting for your approval on ${r.route}`).slice(0, MAX_MESSAGE);
  return {
    v: 1,
    type: 'approval.requested',
    title: 'Approval needed',
    message,
    agent: r.agent.slice(0, 200),
    code: rec.code,
    expires_at: new Date(rec.expiresAt).toISOString(),
    url: `${consoleUrl}#approval-${rec.id}`,
    tag: `approval-${rec.id}`,
  };
}

export interface PushNotifierDeps {
  cfg: PushConfig;
  store: Store;
  logger: Logger;
  metrics: Metrics;
  /** `<public url>/.warden/console` */
  consoleUrl: string;
  /** Who may decide: the approvals service's own check (late-bound: the service is built with its notifiers). */
  mayDecide(rec: ApprovalRecord, user: string): Promise<boolean>;
  sender?: PushSender;
  repo?: SubscriptionRepo;
}

export function createPushNotifier(deps: PushNotifierDeps): Notifier & { readonly repo: SubscriptionRepo } {
  const repo = deps.repo ?? createSubscriptionRepo(deps.store);
  const sender = deps.sender ?? createPushSender(deps.cfg);
  const log = deps.logger.child({ feature: 'push' });

  async function recipients(rec: ApprovalRecord): Promise<string[]> {
    const candidates = rec.approvers ? await repo.users() : [rec.request.user];
    const out: string[] = [];
    for (const user of candidates) {
      try {
        if (await deps.mayDecide(rec, user)) out.push(user);
      } catch (err) {
        log.warn({ approval_id: rec.id, err }, 'push: approver check failed; not pushed to this person');
      }
    }
    return out;
  }

  return {
    kind: 'webpush',
    repo,
    // Never rejects: a retry of the whole channel would push twice to the browsers that did get it.
    async notify(_notice: ApprovalNotice, rec: ApprovalRecord) {
      let users: string[];
      try {
        users = await recipients(rec);
      } catch (err) {
        deps.metrics.inc('warden_push_notifications_total', { result: 'failed' });
        log.warn({ approval_id: rec.id, err }, 'push: could not list subscriptions');
        return;
      }
      const payload = JSON.stringify(pushPayload(rec, deps.consoleUrl));
      const ttlSeconds = Math.min(MAX_TTL_SECONDS, Math.max(0, Math.floor((rec.expiresAt - Date.now()) / 1000)));
      await Promise.all(
        users.map(async (user) => {
          let subs;
          try {
            subs = await repo.list(user);
          } catch (err) {
            deps.metrics.inc('warden_push_notifications_total', { result: 'failed' });
            log.warn({ approval_id: rec.id, err }, 'push: could not read subscriptions');
            return;
          }
          await Promise.all(
            subs.map(async (sub) => {
              const outcome = await sender
                .send(sub, payload, { ttlSeconds })
                .catch((err: unknown) => ({ result: 'failed' as const, error: String(err).slice(0, 120) }));
              deps.metrics.inc('warden_push_notifications_total', { result: outcome.result });
              const where = { approval_id: rec.id, subscription: subscriptionId(sub.endpoint), push_service: originOf(sub.endpoint) };
              if (outcome.result === 'sent') return;
              if (outcome.result === 'gone') {
                await repo.remove(user, sub.endpoint).catch(() => false);
                log.info({ ...where, status: outcome.status }, 'push: subscription gone (404/410); removed');
                return;
              }
              log.warn({ ...where, ...outcome }, 'push: not delivered');
            }),
          );
        }),
      );
    },
  };
}

function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return '(invalid)';
  }
}
