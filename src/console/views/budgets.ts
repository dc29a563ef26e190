/**
 * Budgets and limits: spent and remaining per budget key for the signed-in
 * person, the same figures `GET /.warden/budgets` gives them (the limits
 * service renders each key with the person as `user`, never anyone else).
 */

import type { Hono } from 'hono';
import { escapeHtml } from '../../approvals/review-page.js';
import { formatWindow, type BudgetView, type LimitsService } from '../../limits/service.js';
import type { ConsoleKit } from '../kit.js';
import { layout } from '../page.js';

/** "59 min", "2 h 5 min", "40 s": a wait as a person reads it. */
const wait = (seconds: number) => {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
};
const num = (n: number) => escapeHtml(Number(n.toPrecision(12)).toLocaleString('en-US'));

export function registerBudgets(app: Hono, kit: ConsoleKit, limits: LimitsService | null): void {
  app.get('/console/budgets', async (c) => {
    const who = await kit.person(c);
    if (who instanceof Response) return who;
    const frame = (inner: string) => layout('Budgets', { base: kit.base, sub: who.sub, current: '/budgets' }, inner);
    let budgets: BudgetView[] = [];
    try {
      budgets = limits ? await limits.budgetsFor({ agent: null, user: who.sub, claims: { ...who.claims } }) : [];
    } catch (err) {
      kit.rt.logger.warn({ err }, 'console budgets: could not read');
      return kit.page(c, 503, frame('<p id="message">Budgets cannot be read right now. Try again shortly.</p>'));
    }
    const body = budgets.length ? `<ul class="list budgets" id="budgets">${budgets.map(card).join('')}</ul>` : '<p class="empty">No budgets apply to you.</p>';
    return kit.page(c, 200, frame(`<p class="meta">What agents may still spend for you in each window. Figures are the store’s, as of this page.</p>${body}`));
  });
}

function card(b: BudgetView): string {
  const where = `${escapeHtml(b.route)}${b.tool !== undefined ? ` · tool <code>${escapeHtml(b.tool)}</code>` : ''}`;
  const over = b.over === 'approve' ? 'Beyond it, each request asks you first.' : 'Beyond it, requests are refused.';
  let figures: string;
  if (b.per_request) figures = '<p class="meta">Counted per request (the key depends on each request): no single figure to show.</p>';
  else if (b.per_agent) figures = '<p class="meta">Counted separately for each agent.</p>';
  else {
    const spent = b.spent ?? 0;
    const held = b.held ?? 0;
    const remaining = b.remaining ?? Math.max(0, b.max - spent - held);
    const id = `meter-${escapeHtml(b.route)}-${escapeHtml(b.tool ?? '')}`.replace(/[^A-Za-z0-9_-]/g, '_');
    figures = `<p><span id="${id}" class="spent"><strong>${num(spent)}</strong> spent${held ? `, ${num(held)} in flight` : ''} of ${num(b.max)}</span> · <strong class="remaining">${num(remaining)}</strong> remaining</p>
<meter min="0" max="${b.max}" value="${Math.min(b.max, spent + held)}" aria-labelledby="${id}">${num(spent)} of ${num(b.max)}</meter>
${b.next_release_seconds ? `<p class="meta">The oldest spend leaves the window in ${wait(b.next_release_seconds)}.</p>` : ''}`;
  }
  return `<li class="card budget"><div class="budget-body"><h2>${where}</h2>
<p class="meta">At most ${num(b.max)} per ${escapeHtml(formatWindow(b.window_seconds * 1000))}${b.key ? ` · key <code>${escapeHtml(b.key)}</code>` : ''}. ${over}</p>
${figures}</div></li>`;
}
