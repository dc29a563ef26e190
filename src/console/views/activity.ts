/**
 * Activity: what agents did on the signed-in person's behalf, newest first,
 * filterable by agent, route and outcome (a GET form, so a filtered view is
 * a link). The person's `sub` is the only user ever asked for; the query
 * string can narrow the list, never name another user.
 */

import type { Hono } from 'hono';
import { OUTCOMES, type ActivityFilter, type ActivityItem, type ActivitySource, type Outcome } from '../../audit/activity.js';
import { escapeHtml, revealInvisible } from '../../approvals/review-page.js';
import type { ConsoleKit } from '../kit.js';
import { layout } from '../page.js';

/** Records per page. */
export const ACTIVITY_PAGE = 50;
const MAX_FILTER = 200;
const CURSOR = /^[0-9.]{1,40}$/;

const OUTCOME_LABEL: Record<Outcome, string> = { allow: 'Allowed', deny: 'Refused', pending: 'Held for approval', error: 'Failed' };
const show = (s: string) => escapeHtml(revealInvisible(s));

export function registerActivity(app: Hono, kit: ConsoleKit, source: ActivitySource | null): void {
  const routeNames = kit.rt.config.routes.map((r) => r.name);
  app.get('/console/activity', async (c) => {
    const who = await kit.person(c);
    if (who instanceof Response) return who;
    const q = (name: string) => {
      const v = c.req.query(name);
      return v === undefined || v === '' || v.length > MAX_FILTER ? undefined : v;
    };
    const outcome = q('outcome');
    const route = q('route');
    const filter: ActivityFilter = {
      agent: q('agent'),
      route: route !== undefined && routeNames.includes(route) ? route : undefined,
      outcome: outcome !== undefined && (OUTCOMES as readonly string[]).includes(outcome) ? (outcome as Outcome) : undefined,
    };
    const cursor = q('cursor');
    let body: string;
    if (!source) {
      body = '<p class="empty">Activity is not recorded by this Warden.</p>';
    } else {
      try {
        const page = await source.page(who.sub, filter, { cursor: cursor !== undefined && CURSOR.test(cursor) ? cursor : undefined, limit: ACTIVITY_PAGE });
        body = renderList(kit.base, filter, page.items, page.next, Boolean(page.partial), Boolean(page.restarted), cursor !== undefined, source.kind);
      } catch (err) {
        kit.rt.logger.warn({ err }, 'console activity: could not read');
        return kit.page(
          c,
          503,
          layout(
            'Activity',
            { base: kit.base, sub: who.sub, current: '/activity' },
            '<p id="message">Activity cannot be read right now. Try again shortly.</p>',
          ),
        );
      }
    }
    return kit.page(c, 200, layout('Activity', { base: kit.base, sub: who.sub, current: '/activity' }, filterForm(kit.base, filter, routeNames) + body));
  });
}

function filterForm(base: string, f: ActivityFilter, routes: string[]): string {
  const opt = (value: string, label: string, selected: boolean) =>
    `<option value="${escapeHtml(value)}"${selected ? ' selected' : ''}>${escapeHtml(label)}</option>`;
  return `<form method="get" action="${base}/activity" class="filters" role="search" aria-label="Filter activity">
<div><label for="f-agent">Agent</label><input id="f-agent" name="agent" type="text" maxlength="${MAX_FILTER}" autocomplete="off" value="${escapeHtml(f.agent ?? '')}"></div>
<div><label for="f-route">Route</label><select id="f-route" name="route">${opt('', 'Any route', !f.route)}${routes.map((r) => opt(r, r, f.route === r)).join('')}</select></div>
<div><label for="f-outcome">Outcome</label><select id="f-outcome" name="outcome">${opt('', 'Any outcome', !f.outcome)}${OUTCOMES.map((o) => opt(o, OUTCOME_LABEL[o], f.outcome === o)).join('')}</select></div>
<div class="filter-actions"><button type="submit">Show</button> <a href="${base}/activity">Clear</a></div>
</form>`;
}

function query(f: ActivityFilter, cursor?: string): string {
  const p = new URLSearchParams();
  if (f.agent) p.set('agent', f.agent);
  if (f.route) p.set('route', f.route);
  if (f.outcome) p.set('outcome', f.outcome);
  if (cursor) p.set('cursor', cursor);
  const s = p.toString();
  return s ? `?${s}` : '';
}

function item(i: ActivityItem): string {
  const outcome = (OUTCOMES as readonly string[]).includes(i.decision) ? (i.decision as Outcome) : 'error';
  const url = i.query ? `${i.path}?${i.query}` : i.path;
  const details = [
    `<div><dt>Agent</dt><dd class="agent">${show(i.agent ?? '-')}${i.act?.length ? ` <span class="meta">through ${i.act.map(show).join(' → ')}</span>` : ''}</dd></div>`,
    `<div><dt>Route</dt><dd class="route">${show(i.route)}</dd></div>`,
    i.tool !== undefined ? `<div><dt>Tool</dt><dd>${show(i.tool)}</dd></div>` : '',
    i.reason ? `<div><dt>Reason</dt><dd class="reason">${show(i.reason)}</dd></div>` : '',
    i.approval ? `<div><dt>Approval</dt><dd>${i.approval.outcome === 'pending' ? 'waiting' : 'approved'}</dd></div>` : '',
    i.mode === 'shadow' && i.shadow
      ? `<div><dt>Shadow</dt><dd>${show(i.shadow.outcome)}${i.shadow.reason ? ` (${show(i.shadow.reason)})` : ''}</dd></div>`
      : '',
    i.credentials ? `<div><dt>Credentials</dt><dd>${show(i.credentials)}</dd></div>` : '',
  ].join('');
  return `<li class="card activity" data-id="${escapeHtml(i.id)}"><div class="activity-head"><span class="outcome outcome-${outcome}">${OUTCOME_LABEL[outcome]}</span> <code class="request">${show(i.method)} ${show(url)}</code> <span class="meta">${i.status ? `${i.status} · ` : ''}<time datetime="${escapeHtml(i.time)}">${escapeHtml(i.time.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</time></span></div>
<dl class="facts">${details}</dl></li>`;
}

function renderList(
  base: string,
  f: ActivityFilter,
  items: ActivityItem[],
  next: string | undefined,
  partial: boolean,
  restarted: boolean,
  paged: boolean,
  kind: ActivitySource['kind'],
): string {
  const filtered = Boolean(f.agent || f.route || f.outcome);
  const source =
    kind === 'decision-log' ? 'From the decision log, newest first.' : 'Your most recent decisions kept by Warden (up to 200, for 7 days), newest first.';
  const list = items.length
    ? `<ol class="list activity-list" id="activity">${items.map(item).join('')}</ol>`
    : `<p class="empty" id="activity-empty">${filtered ? 'No activity matches these filters.' : 'No activity yet.'}</p>`;
  const links = [
    paged ? `<a href="${base}/activity${query(f)}">Newest</a>` : '',
    next ? `<a href="${base}/activity${query(f, next)}" id="older" rel="next">${partial ? 'Search older' : 'Older'}</a>` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  return `<p class="meta">${source}</p>
${restarted ? '<p class="notice" role="status">The log has moved on since that page; showing the newest activity.</p>' : ''}
${partial ? '<p class="meta">Only the most recent part of the log was searched for this page.</p>' : ''}
${list}
${links ? `<nav aria-label="Activity pages" class="pager">${links}</nav>` : ''}`;
}
