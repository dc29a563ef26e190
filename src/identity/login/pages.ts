/**
 * The small HTML pages of sign-in and account linking: self-contained, no
 * scripts, not frameable, never cached. Everything interpolated is escaped.
 */

import type { Context } from 'hono';

/** HTML-escape text. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Headers of every page; `formAction` lists extra origins a form may end up at (a 303 to an IdP counts). */
export function pageHeaders(formAction: readonly string[] = []): Record<string, string> {
  return {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self'${formAction.map((o) => ` ${o}`).join('')}; frame-ancestors 'none'; base-uri 'none'`,
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
  };
}

/** A page: `title`, a message paragraph, and optional raw (already escaped) HTML below it. */
export function renderPage(title: string, message: string, extraHtml = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:38rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:8rem 1fr;gap:.4rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}
form{margin:1.2rem 0}label{display:block;margin:.4rem 0}input[type=text]{font-size:1rem;padding:.4rem;width:16rem}
button{font-size:1rem;padding:.5rem 1.4rem;background:#0b57d0;color:#fff;border:0;border-radius:4px}button.secondary{background:#555}
.who{color:#444}
</style></head><body><main><h1 id="title">${escapeHtml(title)}</h1><p id="message">${escapeHtml(message)}</p>${extraHtml}</main></body></html>`;
}

/** Answer a page. */
export function sendPage(c: Context, status: number, title: string, message: string, extraHtml = '', formAction: readonly string[] = []): Response {
  return c.body(renderPage(title, message, extraHtml), status as 200, pageHeaders(formAction));
}

/** A POST form with hidden fields and one button. */
export function postForm(action: string, fields: Record<string, string>, button: string, options: { id?: string; secondary?: boolean } = {}): string {
  const hidden = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join('');
  return `<form method="post" action="${escapeHtml(action)}"${options.id ? ` id="${escapeHtml(options.id)}"` : ''}>${hidden}<button type="submit"${options.secondary ? ' class="secondary"' : ''}>${escapeHtml(button)}</button></form>`;
}
