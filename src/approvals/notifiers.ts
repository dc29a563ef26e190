/**
 * Notification channels: a signed webhook (JSON, `X-Warden-Signature:
 * t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`), email over SMTP (nodemailer) and
 * a log line. Each carries the review link; the secret `t` in it is what
 * authorizes the approver, so links go only to the user's own channels.
 */

import type { Transporter } from 'nodemailer';
import type { NotifierConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { hmacHex, safeEqual } from './ids.js';
import type { ApprovalRecord } from './records.js';
import { storedTemplateVars } from './request-capture.js';
import { renderMessage } from '../templates/template.js';
import { revealInvisible } from './review-page.js';

/** What every channel is told about a new approval. */
export interface ApprovalNotice {
  type: 'approval.requested';
  id: string;
  review_url: string;
  confirmation_code: string;
  message: string;
  agent: string;
  user: string;
  route: string;
  method: string;
  url: string;
  created_at: string;
  expires_at: string;
}

/** A channel; rejects when delivery failed. */
export interface Notifier {
  readonly kind: string;
  notify(notice: ApprovalNotice, record: ApprovalRecord): Promise<void>;
  close?(): Promise<void>;
}

/** Build the notice for `record` with its review link. */
export function approvalNotice(record: ApprovalRecord, reviewUrl: string): ApprovalNotice {
  const r = record.request;
  return {
    type: 'approval.requested',
    id: record.id,
    review_url: reviewUrl,
    confirmation_code: record.code,
    message: record.message,
    agent: r.agent,
    user: r.user,
    route: r.route,
    method: r.method,
    url: r.query ? `${r.path}?${r.query}` : r.path,
    created_at: new Date(record.createdAt).toISOString(),
    expires_at: new Date(record.expiresAt).toISOString(),
  };
}

/** The signature header value for `body` at `unixSeconds`. */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${hmacHex(secret, `${unixSeconds}.${body}`)}`;
}

/**
 * Verify an `X-Warden-Signature` header for a receiver: the HMAC matches and
 * the timestamp is within `toleranceSeconds` of now (replay window).
 */
export function verifyWebhookSignature(
  secret: string,
  header: string,
  body: string,
  toleranceSeconds = 300,
  nowSeconds = Math.floor(Date.now() / 1000),
): boolean {
  const parts = new Map(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || !v1 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  return safeEqual(v1, hmacHex(secret, `${t}.${body}`));
}

function webhookNotifier(cfg: { url: string; secret: string; timeout: number }): Notifier {
  return {
    kind: 'webhook',
    async notify(notice) {
      const body = JSON.stringify(notice);
      const res = await fetch(cfg.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-warden-signature': signWebhook(cfg.secret, body, Math.floor(Date.now() / 1000)),
          'x-warden-event': notice.type,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(cfg.timeout),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status < 200 || res.status >= 300) throw new Error(`webhook answered ${res.status}`);
    },
  };
}

const EMAIL = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/;

/**
 * Text rendered from the request (the message, a subject) as one line, with
 * invisible characters shown as on the review page: sent from Warden's own
 * address, agent text must not lay out lines of its own ("Review and decide:"
 * and a link of its choosing above the real one) or hide and reorder text.
 */
function oneLine(text: string): string {
  return revealInvisible(text.replace(/[\r\n\t]+/g, ' '));
}

function emailNotifier(cfg: { smtp: string; from: string; to: string; subject?: string }): Notifier {
  // nodemailer is loaded on the first mail, not in every process that could send one.
  let transport: Promise<Transporter> | undefined;
  const transporter = () =>
    (transport ??= import('nodemailer').then(({ default: nodemailer }) =>
      nodemailer.createTransport(cfg.smtp, {
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 20_000,
      } as never),
    ));
  return {
    kind: 'email',
    async notify(notice, record) {
      const vars = storedTemplateVars(record.request);
      const to = renderMessage(cfg.to, vars).trim();
      if (!EMAIL.test(to)) throw new Error('email recipient is empty or invalid for this request');
      const subject = oneLine(renderMessage(cfg.subject ?? 'Approval needed: {agent} wants to {request.method} {request.path}', vars)).slice(0, 200);
      const text = [
        oneLine(notice.message || `${notice.agent} wants to ${notice.method} ${notice.url}`),
        '',
        `Agent:   ${notice.agent}`,
        `User:    ${notice.user}`,
        `Request: ${notice.method} ${notice.url}`,
        `Code:    ${notice.confirmation_code}`,
        `Expires: ${notice.expires_at}`,
        '',
        'Review and decide:',
        notice.review_url,
        '',
        'If you did not expect this, deny it.',
      ].join('\n');
      await (await transporter()).sendMail({ from: cfg.from, to, subject, text });
    },
    async close() {
      if (transport) (await transport).close();
    },
  };
}

function logNotifier(logger: Logger): Notifier {
  return {
    kind: 'log',
    async notify(notice) {
      // The review URL carries the approver's secret; the logger scrubs `t=` so only the path is useful here.
      logger.info(
        { approval_id: notice.id, agent: notice.agent, user: notice.user, method: notice.method, url: notice.url, confirmation_code: notice.confirmation_code },
        'approval requested',
      );
    },
  };
}

/**
 * Development channel: prints the review link to the terminal (stderr), outside
 * the JSON log. The link is the approver's credential, which is why this
 * channel is refused when NODE_ENV=production (config validation).
 */
function consoleNotifier(out: NodeJS.WritableStream = process.stderr): Notifier {
  return {
    kind: 'console',
    async notify(notice) {
      out.write(
        `\n[warden] approval requested — ${notice.agent} for ${notice.user}: ${notice.method} ${notice.url}\n` +
          `[warden]   "${oneLine(notice.message)}"  (code ${notice.confirmation_code})\n` +
          `[warden]   review: ${notice.review_url}\n\n`,
      );
    },
  };
}

/** Build the configured channels. */
export function createNotifiers(configs: readonly NotifierConfig[], logger: Logger): Notifier[] {
  return configs.map((c) => {
    if ('webhook' in c) return webhookNotifier(c.webhook);
    if ('email' in c) return emailNotifier(c.email);
    if ('console' in c) return consoleNotifier();
    return logNotifier(logger);
  });
}
