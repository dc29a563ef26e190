/**
 * The console's HTML: server-rendered with tagged templates, every value
 * escaped. No inline script or style: the page loads `console.css` and
 * `console.js` from Warden itself, so the CSP can say `'self'` and nothing more.
 */

import type { ApprovalRecord, GrantRecord } from '../approvals/records.js';
import { escapeHtml, grantChoices, grantCoversText, readableBody, revealInvisible } from '../approvals/review-page.js';

/**
 * Headers of every console answer: strict CSP, no framing, never cached.
 * `formOrigins`: where a form's redirect may lead besides Warden (the link
 * button's 303 to a provider; browsers apply form-action to redirects).
 */
export function consoleHeaders(formOrigins: readonly string[] = []): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; worker-src 'self'; form-action 'self'${formOrigins.map((o) => ` ${o}`).join('')}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
  };
}

/** Text for the page: escaped, with invisible characters made visible. */
export const show = (s: string) => escapeHtml(revealInvisible(s));
/** A time as every console page shows it (UTC, to the second). */
export const when = (ms: number) =>
  escapeHtml(
    new Date(ms)
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, ' UTC'),
  );

/** The `act` chain of a token's claims (RFC 8693 §4.1): outermost actor first. */
export function actChain(claims: Record<string, unknown>): string[] {
  const out: string[] = [];
  let act = claims.act;
  for (let depth = 0; depth < 8 && act && typeof act === 'object'; depth++) {
    const sub = (act as Record<string, unknown>).sub;
    out.push(typeof sub === 'string' ? sub : '?');
    act = (act as Record<string, unknown>).act;
  }
  return out;
}

export interface ConsoleView {
  base: string; // `<public path>/.warden/console`
  sub: string;
  csrf: string;
  maxGrantMs: number;
  notice?: string;
  pending: ApprovalRecord[];
  grants: GrantRecord[];
  /** The person has the console admin role (console.admin): the navigation links the platform views. */
  admin?: boolean;
  /** The Notifications section (Web Push, console/push/routes.ts); it loads push.js. */
  push?: string;
}

function hidden(csrf: string): string {
  return `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;
}

function approvalCard(rec: ApprovalRecord, v: ConsoleView): string {
  const r = rec.request;
  const url = r.query ? `${r.path}?${r.query}` : r.path;
  const chain = actChain(r.claims);
  const action = `${v.base}/approvals/${encodeURIComponent(rec.id)}`;
  const choices = grantChoices(v.maxGrantMs)
    .map((m) => `<option value="${m}">${m < 60 ? `${m} minutes` : `${m / 60} hour${m === 60 ? '' : 's'}`}</option>`)
    .join('');
  const gid = `grant-${escapeHtml(rec.id)}`;
  // The stored headers are bound by the digest and forwarded on release: shown as on the review page.
  const headers = r.headers.map(([k, val]) => `<code>${show(`${k}: ${val}`)}</code>`).join('<br>');
  return `<article class="card approval" id="approval-${escapeHtml(rec.id)}" data-id="${escapeHtml(rec.id)}">
<h3>${rec.message ? show(rec.message) : `${show(r.method)} ${show(r.path)}`}</h3>
<dl>
<dt>On behalf of</dt><dd class="user">${show(r.user)}</dd>
<dt>Agent</dt><dd class="agent">${show(r.agent)}</dd>
${chain.length ? `<dt>Acting through</dt><dd class="act">${chain.map(show).join(' → ')}</dd>` : ''}
<dt>Request</dt><dd class="request"><code>${show(r.method)} ${show(url)}</code></dd>
${headers ? `<dt>Headers</dt><dd class="headers">${headers}</dd>` : ''}
<dt>Route</dt><dd>${show(r.route)}</dd>
<dt>Code</dt><dd class="code">${escapeHtml(rec.code)}</dd>
<dt>Decide by</dt><dd>${when(rec.expiresAt)}</dd>
</dl>
<details open><summary>${r.tool !== undefined ? 'Tool call' : 'Body'} (exactly what will be forwarded)</summary><pre>${show(readableBody(rec))}</pre></details>
<div class="actions">
<form method="post" action="${action}">${hidden(v.csrf)}<input type="hidden" name="decision" value="approve"><button class="approve" type="submit">Approve once</button></form>
<form method="post" action="${action}">${hidden(v.csrf)}<input type="hidden" name="decision" value="deny"><button class="deny" type="submit">Deny</button></form>
${
  choices
    ? `<form method="post" action="${action}" class="for-a-while">${hidden(v.csrf)}<input type="hidden" name="decision" value="approve"><label for="${gid}">Approve and allow again for</label> <select id="${gid}" name="grant_minutes">${choices}</select> <button class="approve-grant" type="submit">Approve for a while</button><p class="meta grant-covers">${grantCoversText(rec)}</p></form>`
    : ''
}
</div>
</article>`;
}

function grantRow(g: GrantRecord, v: ConsoleView): string {
  return `<li class="card grant" id="grant-${escapeHtml(g.id)}"><div><strong>${show(g.agent)}</strong> may <code>${show(g.method)} ${show(g.path)}</code>${g.tool !== undefined ? ` (tool ${show(g.tool)})` : ''} on ${show(g.route)} until ${when(g.expiresAt)}</div>
<form method="post" action="${v.base}/grants/${encodeURIComponent(g.id)}/revoke">${hidden(v.csrf)}<button class="revoke" type="submit">Revoke<span class="sr-only"> grant for ${show(g.agent)} ${show(g.method)} ${show(g.path)}</span></button></form></li>`;
}

/** The signed-in person's console. */
export function renderConsole(v: ConsoleView): string {
  const pending = v.pending.length ? v.pending.map((r) => approvalCard(r, v)).join('\n') : '<p class="empty">Nothing is waiting for you.</p>';
  const grants = v.grants.length ? `<ul class="list">${v.grants.map((g) => grantRow(g, v)).join('')}</ul>` : '<p class="empty">No active grants.</p>';
  return layout(
    'Approvals',
    { ...v, csrfMeta: v.csrf, current: '', ...(v.push ? { scripts: ['push.js'] } : {}) },
    `${v.notice ? `<p class="notice" role="status" id="notice">${show(v.notice)}</p>` : ''}
<section aria-labelledby="h-pending"><h2 id="h-pending">Waiting for your approval <span class="count" id="pending-count">${v.pending.length}</span></h2>
<div id="pending">${pending}</div></section>
<section aria-labelledby="h-grants"><h2 id="h-grants">Active grants</h2>${grants}</section>${v.push ?? ''}`,
  );
}

/** A short outcome page (refusals, missing items), same layout. */
export function renderMessage(v: Pick<ConsoleView, 'base' | 'sub'>, title: string, message: string): string {
  return layout(title, v, `<p id="message">${escapeHtml(message)}</p><p><a href="${v.base}">Back to the console</a></p>`);
}

/** The console's pages, in the order of the navigation bar (`path` after the console's base). */
export const CONSOLE_NAV: ReadonlyArray<{ path: string; label: string }> = [
  { path: '', label: 'Approvals' },
  { path: '/activity', label: 'Activity' },
  { path: '/budgets', label: 'Budgets' },
  { path: '/accounts', label: 'Accounts' },
];

/** The frame of every console page: header with the signed-in person, navigation, and `inner` as the main content. */
export function layout(
  title: string,
  v: Pick<ConsoleView, 'base' | 'sub' | 'admin'> & { csrfMeta?: string; current?: string; events?: boolean | string; scripts?: readonly string[] },
  inner: string,
): string {
  const nav =
    CONSOLE_NAV.map((n) => `<li><a href="${v.base}${n.path}"${v.current === n.path ? ' aria-current="page"' : ''}>${escapeHtml(n.label)}</a></li>`).join('') +
    (v.admin ? `<li><a href="${v.base}/admin" id="admin-link"${v.current === '/admin' ? ' aria-current="page"' : ''}>Platform</a></li>` : '');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · Warden console</title>
${v.csrfMeta ? `<meta name="csrf-token" content="${escapeHtml(v.csrfMeta)}">` : ''}
<link rel="stylesheet" href="${v.base}/static/console.css">
<script src="${v.base}/static/console.js" defer></script>
${(v.scripts ?? []).map((s) => `<script src="${v.base}/static/${escapeHtml(s)}" defer></script>\n`).join('')}</head><body${v.events === false ? '' : ` data-events="${typeof v.events === 'string' ? v.events : `${v.base}/events`}"`}>
<header><p class="brand"><a href="${v.base}">Warden</a></p><p class="who">Signed in as <strong id="who">${show(v.sub)}</strong> · <a href="${v.base.replace(/\/console$/, '')}/logout">Sign out</a></p>
<nav aria-label="Console"><ul>${nav}</ul></nav></header>
<main><h1>${escapeHtml(title)}</h1>${inner}</main></body></html>`;
}
