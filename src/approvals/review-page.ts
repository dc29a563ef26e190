/**
 * The approver's page, rendered from the stored request only. Everything that
 * came from the agent is escaped, and invisible or direction-changing
 * characters are shown as escapes, so the page shows exactly the bytes that
 * will be forwarded. No scripts; the only styles are inline.
 */

import type { ApprovalRecord, ApprovalStatus } from './records.js';
import { prettyJsonText } from '../http/strict-json.js';

/** Response headers of every review response. */
export const REVIEW_HEADERS: Record<string, string> = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer', // the URL carries the review secret
  'X-Content-Type-Options': 'nosniff',
};

/** HTML-escape text. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

// Whatever a browser may draw as nothing or use to reorder text: controls (except tab and newline), format
// characters (bidi marks and overrides, zero-width characters, soft hyphen, the Unicode tag characters that
// can spell hidden text), every default-ignorable code point (variation selectors, Hangul fillers, …), line
// and paragraph separators, lone surrogates, private-use and unassigned code points.
const INVISIBLE = /(?![\t\n])[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu;

/** Make invisible characters visible as `\uXXXX` (a code point above U+FFFF as its two UTF-16 escapes, as JSON writes it). */
export function revealInvisible(s: string): string {
  return s.replace(INVISIBLE, (c) => [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''));
}

const MAX_SHOWN_BYTES = 256 * 1024;

/** The stored body as readable text (strict JSON indented from its own tokens), or a note for binary content. */
export function readableBody(record: ApprovalRecord): string {
  const r = record.request;
  if (r.tool !== undefined) return `tool: ${r.tool}\narguments:\n${JSON.stringify(JSON.parse(r.argsJson ?? '{}'), null, 2)}`;
  if (r.bodyBytes === 0) return '(no body)';
  const bytes = Buffer.from(r.body, 'base64');
  const encoding = r.headers.find(([k]) => k === 'content-encoding')?.[1];
  let text: string;
  try {
    if (encoding && encoding !== 'identity') throw new Error('encoded');
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, MAX_SHOWN_BYTES));
  } catch {
    return `(binary body, ${r.bodyBytes} bytes${encoding ? `, content-encoding ${encoding}` : ''}; SHA-256 ${r.bodySha256})`;
  }
  if (bytes.length <= MAX_SHOWN_BYTES) {
    // Indented from the raw text itself, never re-serialized: the approver reads the
    // bytes that will be forwarded (escapes, number spellings and all).
    return prettyJsonText(text) ?? text;
  }
  return `${text}\n… (${r.bodyBytes} bytes in total; first ${MAX_SHOWN_BYTES} shown; SHA-256 ${r.bodySha256})`;
}

function layout(title: string, inner: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
dl{display:grid;grid-template-columns:9rem 1fr;gap:.4rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}
pre{background:#f4f4f4;padding:1rem;overflow:auto;white-space:pre-wrap;word-break:break-all;max-height:30rem}
.code{font-family:monospace;font-size:1.6rem;letter-spacing:.2rem}.msg{font-size:1.15rem;border-left:4px solid #c60;padding-left:.8rem}
form{display:inline-block;margin:1rem 1rem 0 0}button{font-size:1rem;padding:.5rem 1.4rem}
.approve{background:#0a6b2d;color:#fff;border:0}.deny{background:#a11;color:#fff;border:0}
</style></head><body>${inner}</body></html>`;
}

/** Grant choices (minutes) offered up to `maxGrantMs`. */
export function grantChoices(maxGrantMs: number): number[] {
  return [5, 15, 30, 60, 240, 480, 1440].filter((m) => m * 60_000 <= maxGrantMs);
}

/** What a grant made from `record` would cover (HTML): the approver is told before choosing one. */
export function grantCoversText(record: ApprovalRecord): string {
  const show = (s: string) => escapeHtml(revealInvisible(s));
  return record.grantCovers?.length
    ? `Only for requests with the same ${record.grantCovers.map((n) => `<code>${show(n)}</code>`).join(', ')} as this one; anything else asks again.`
    : 'For any request to this path that the same rule holds.';
}

/** The review page of a pending approval. */
export function renderReviewPage(record: ApprovalRecord, opts: { t: string; csrf: string; maxGrantMs: number; action: string }): string {
  const r = record.request;
  const url = r.query ? `${r.path}?${r.query}` : r.path;
  const show = (s: string) => escapeHtml(revealInvisible(s));
  const headers = r.headers.map(([k, v]) => `${k}: ${v}`).join('\n');
  const hidden = `<input type="hidden" name="t" value="${escapeHtml(opts.t)}"><input type="hidden" name="csrf" value="${escapeHtml(opts.csrf)}">`;
  const choices = grantChoices(opts.maxGrantMs)
    .map((m) => `<option value="${m}">${m < 60 ? `${m} minutes` : `${m / 60} hour${m === 60 ? '' : 's'}`}</option>`)
    .join('');
  const grant = choices
    ? `<p><label>Also allow this agent to ${show(r.method)} ${show(r.path)} again without asking for
<select name="grant_minutes"><option value="0" selected>no — just this once</option>${choices}</select></label></p>
<p class="note">${grantCoversText(record)}</p>`
    : '';
  return layout(
    'Approve agent request',
    `<h1>An agent asks for your approval</h1>
${record.message ? `<p class="msg">${show(record.message)}</p>` : ''}
<p>Confirmation code: <span class="code">${escapeHtml(record.code)}</span></p>
<dl>
<dt>Agent</dt><dd>${show(r.agent)}</dd>
<dt>On behalf of</dt><dd>${show(r.user)}</dd>
<dt>Route</dt><dd>${show(r.route)}</dd>
<dt>Method</dt><dd>${show(r.method)}</dd>
<dt>URL</dt><dd>${show(url)}</dd>
<dt>Expires</dt><dd>${escapeHtml(new Date(record.expiresAt).toISOString())}</dd>
</dl>
${headers ? `<h2>Headers</h2><pre>${show(headers)}</pre>` : ''}
<h2>${r.tool !== undefined ? 'Tool call' : 'Body'}</h2>
<pre>${show(readableBody(record))}</pre>
<form method="post" action="${escapeHtml(opts.action)}">${hidden}<input type="hidden" name="decision" value="approve">${grant}<button class="approve" type="submit">Approve</button></form>
<form method="post" action="${escapeHtml(opts.action)}">${hidden}<input type="hidden" name="decision" value="deny"><button class="deny" type="submit">Deny</button></form>`,
  );
}

const STATUS_TEXT: Record<ApprovalStatus, string> = {
  pending: 'This request is still waiting for a decision.',
  approved: 'Approved. The agent may now perform this request once.',
  denied: 'Denied. The request will not be performed.',
  expired: 'This approval request has expired; nothing will be performed.',
  used: 'Approved and performed.',
};

/** A page that states an outcome (decision made, already decided, expired, refused). */
export function renderStatusPage(title: string, status: ApprovalStatus | null, detail?: string): string {
  return layout(
    title,
    `<h1>${escapeHtml(title)}</h1>${status ? `<p>${escapeHtml(STATUS_TEXT[status])}</p>` : ''}${detail ? `<p>${escapeHtml(detail)}</p>` : ''}`,
  );
}
