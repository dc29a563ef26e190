/**
 * The platform team's console pages (`/.warden/console/admin…`): every
 * pending approval, the routes as configured, MCP tool pins with a diff of a
 * changed definition, and this instance's health. Server-rendered, every value
 * escaped, no inline script or style (the console's CSP applies unchanged).
 * Never a secret: header values, client secrets and keys are not rendered.
 */

import type { ApprovalRecord } from '../../approvals/records.js';
import { escapeHtml, readableBody } from '../../approvals/review-page.js';
import type { AuthorizeConfig, CheckConfig, Config, CredentialsConfig, RouteConfig } from '../../config/schema.js';
import { shellWord, type ToolPinView } from '../../mcp/admin.js';
import { actChain, layout, show, when } from '../page.js';
import { SHOWN_DEFINITION_BYTES, type NotAcceptable, type ToolReview } from '../../mcp/pin-review.js';
import { MAX_KEPT_DEFINITION_BYTES } from '../../mcp/pinning.js';

/** An ISO time from a stored record, shown like the rest of the console. */
const whenIso = (iso: string) => {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? when(ms) : show(iso);
};
const hidden = (csrf: string) => `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;

export interface AdminFrame {
  base: string; // `<public path>/.warden/console`
  sub: string;
  csrf: string;
  notice?: string;
}

type Section = 'approvals' | 'routes' | 'tools' | 'health';
const SECTIONS: Array<[Section, string, string]> = [
  ['health', '', 'Health'],
  ['approvals', '/approvals', 'Approvals'],
  ['routes', '/routes', 'Routes'],
  ['tools', '/tools', 'Tool pins'],
];

function frame(f: AdminFrame, section: Section, title: string, inner: string, events: string | false = false): string {
  const nav = SECTIONS.map(
    ([key, path, label]) => `<li><a href="${f.base}/admin${path}"${key === section ? ' aria-current="page"' : ''}>${label}</a></li>`,
  ).join('');
  return layout(
    title,
    { base: f.base, sub: f.sub, admin: true, current: '/admin', csrfMeta: f.csrf, events },
    `<nav class="admin-nav" aria-label="Platform views"><ul>${nav}</ul></nav>
${f.notice ? `<p class="notice" role="status" id="notice">${show(f.notice)}</p>` : ''}
${inner}`,
  );
}

// ------------------------------------------------------------------ approvals

export interface AdminApproval {
  rec: ApprovalRecord;
  /** The admin is also entitled to decide it (its user, or one of the rule's approvers). */
  mayDecide: boolean;
}

function adminApprovalCard(a: AdminApproval, f: AdminFrame): string {
  const { rec } = a;
  const r = rec.request;
  const url = r.query ? `${r.path}?${r.query}` : r.path;
  const chain = actChain(r.claims);
  const action = `${f.base}/admin/approvals/${encodeURIComponent(rec.id)}`;
  const buttons = a.mayDecide
    ? `<form method="post" action="${action}">${hidden(f.csrf)}<input type="hidden" name="decision" value="approve"><button class="approve" type="submit">Approve once</button></form>
<form method="post" action="${action}">${hidden(f.csrf)}<input type="hidden" name="decision" value="deny"><button class="deny" type="submit">Deny</button></form>`
    : `<form method="post" action="${action}">${hidden(f.csrf)}<input type="hidden" name="decision" value="deny"><button class="deny admin-stop" type="submit">Stop it (deny as admin)</button></form>
<p class="meta">Only ${rec.approvers ? `holders of <code>${show(rec.approvers.relation)}</code> on <code>${show(rec.approvers.object)}</code>` : `<strong>${show(r.user)}</strong>`} can approve it.</p>`;
  return `<article class="card approval" id="approval-${escapeHtml(rec.id)}" data-id="${escapeHtml(rec.id)}">
<h3>${rec.message ? show(rec.message) : `${show(r.method)} ${show(r.path)}`}</h3>
<dl>
<dt>For user</dt><dd class="user">${show(r.user)}</dd>
<dt>Agent</dt><dd class="agent">${show(r.agent)}</dd>
${chain.length ? `<dt>Acting through</dt><dd class="act">${chain.map(show).join(' → ')}</dd>` : ''}
<dt>Request</dt><dd class="request"><code>${show(r.method)} ${show(url)}</code></dd>
<dt>Route</dt><dd>${show(r.route)}</dd>
<dt>Asked</dt><dd>${when(rec.createdAt)}</dd>
<dt>Decide by</dt><dd>${when(rec.expiresAt)}</dd>
</dl>
<details><summary>${r.tool !== undefined ? 'Tool call' : 'Body'} (exactly what would be forwarded)</summary><pre>${show(readableBody(rec))}</pre></details>
<div class="actions">${buttons}</div>
</article>`;
}

function decidedRow(rec: ApprovalRecord): string {
  const r = rec.request;
  const by =
    rec.decidedByUser !== undefined
      ? `${show(rec.decidedByUser)}${rec.decidedAsAdmin ? ' (admin stop)' : ''}`
      : rec.decidedBy === 'review'
        ? 'the review link'
        : escapeHtml(rec.decidedBy ?? '?');
  return `<tr id="decided-${escapeHtml(rec.id)}"><td>${rec.decidedAt !== undefined ? when(rec.decidedAt) : ''}</td><td data-label="Outcome">${escapeHtml(rec.status)}</td><td class="by" data-label="By">${by}</td><td data-label="User">${show(r.user)}</td><td data-label="Agent">${show(r.agent)}</td><td><code>${show(r.method)} ${show(r.path)}</code></td></tr>`;
}

/** How many wait in all (`total` found, `complete` false when the scan stopped at its bound), next to the page shown. */
export interface PendingCount {
  total: number;
  complete: boolean;
}

function pendingList(pending: AdminApproval[], count: PendingCount, f: AdminFrame): string {
  const hidden = count.total - pending.length;
  const more =
    !count.complete || hidden > 0
      ? `<p class="notice" id="pending-more">Showing the newest ${pending.length} of ${count.total}${count.complete ? '' : ' or more'} waiting approvals. Stop or let them be decided to see the rest${count.complete ? '' : `; the count stops at ${count.total}`}.</p>`
      : '';
  const cards = pending.length ? pending.map((a) => adminApprovalCard(a, f)).join('\n') : '<p class="empty">Nothing is waiting.</p>';
  return `${more}${cards}`;
}

export function renderAdminApprovals(f: AdminFrame, pending: AdminApproval[], decided: ApprovalRecord[], count: PendingCount): string {
  return frame(
    f,
    'approvals',
    'All pending approvals',
    `<p class="meta">Every user’s waiting requests. Approving is consent, and only the person the agent acts for (or the rule’s <code>approvers</code>) gives it, as in CIBA; an admin can <strong>stop</strong> any request, which denies it and records the admin as the one who decided.</p>
<p><span class="count" id="pending-count">${count.total}${count.complete ? '' : '+'}</span> waiting <span class="meta">(updates live)</span></p>
<div id="pending">${pendingList(pending, count, f)}</div>
<h2>Recently decided</h2>
${
  decided.length
    ? `<div class="table-wrap"><table class="decided"><caption class="sr-only">Recently decided approvals</caption><thead><tr><th scope="col">When</th><th scope="col">Outcome</th><th scope="col">Decided by</th><th scope="col">User</th><th scope="col">Agent</th><th scope="col">Request</th></tr></thead><tbody>${decided.map(decidedRow).join('')}</tbody></table></div>`
    : '<p class="empty">No decisions kept in the store.</p>'
}`,
    `${f.base}/admin/events`,
  );
}

// ------------------------------------------------------------------ routes

function checkText(c: CheckConfig): string {
  let out = `<code>${show(c.user)}</code> <strong>${show(c.relation)}</strong> <code>${show(c.object)}</code>`;
  if (c.context && Object.keys(c.context).length) out += ` <span class="meta">with context ${show(JSON.stringify(c.context))}</span>`;
  if (c.contextual_tuples?.length) out += ` <span class="meta">+${c.contextual_tuples.length} contextual tuple(s)</span>`;
  return out;
}

function authorizeText(a: AuthorizeConfig | undefined, isPublic: boolean): string {
  if (isPublic) return '<span class="pill">public: no token needed</span>';
  if (!a) return '<span class="meta">(none)</span>';
  if (!a.checks.length) return '<span class="meta">[] — any authenticated caller</span>';
  return `${a.mode === 'any' ? 'any of' : 'all of'}<ul class="checks">${a.checks.map((c) => `<li>${checkText(c)}</li>`).join('')}</ul>`;
}

/** Credentials by kind and the non-secret names only (provider, header name, token endpoint's audience). */
export function credentialsText(c: CredentialsConfig | undefined): string {
  if (!c || c.kind === 'none') return 'none';
  switch (c.kind) {
    case 'vault':
      return `vault: the user’s <code>${show(c.provider)}</code> token`;
    case 'header':
      return `static header <code>${show(c.name)}</code> (value hidden)`;
    case 'token_exchange':
      return `token exchange${c.audience ? ` for audience <code>${show(c.audience)}</code>` : ''}${c.resource ? ` resource <code>${show(c.resource)}</code>` : ''}${c.scope ? ` scope <code>${show(c.scope)}</code>` : ''}`;
    default:
      return escapeHtml((c as { kind: string }).kind);
  }
}

function approvalText(rules: RouteConfig['approval']): string {
  if (!rules?.length) return '<span class="meta">(none)</span>';
  return `<ul class="checks">${rules
    .map(
      (r) =>
        `<li>${r.when ? `when <code>${show(r.when)}</code>` : 'always'}${r.message ? ` — “${show(r.message)}”` : ''}${r.approvers ? ` · approvers: <code>${show(r.approvers.relation)}</code> on <code>${show(r.approvers.object)}</code>` : ''}${r.ttl !== undefined ? ` · ttl ${Math.round(r.ttl / 1000)} s` : ''}</li>`,
    )
    .join('')}</ul>`;
}

function limitsText(r: Pick<RouteConfig, 'rate_limit' | 'budget'>): string {
  const out: string[] = [];
  if (r.rate_limit) {
    out.push(
      `rate: ${r.rate_limit.requests} per ${Math.round(r.rate_limit.per / 1000)} s${r.rate_limit.burst ? `, burst ${r.rate_limit.burst}` : ''} by <code>${show(r.rate_limit.key)}</code>`,
    );
  }
  if (r.budget) {
    out.push(
      `budget: ${r.budget.max} per ${Math.round(r.budget.per / 1000)} s, each request spends <code>${show(String(r.budget.amount))}</code> by <code>${show(r.budget.key)}</code>, over it: ${r.budget.over}`,
    );
  }
  return out.length ? out.join('<br>') : '<span class="meta">(none)</span>';
}

/** The upstream without userinfo, query or fragment (a URL may carry a credential). */
function upstreamText(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function routeCard(r: RouteConfig, config: Config): string {
  const mode = r.mode ?? config.mode;
  const tools = r.mcp
    ? `<dt>MCP tools</dt><dd>other tools: ${r.mcp.other_tools}; pinning ${r.mcp.pin_tools ? 'on' : 'off'}${
        Object.keys(r.mcp.tools).length
          ? `<ul class="checks">${Object.entries(r.mcp.tools)
              .map(
                ([name, t]) =>
                  `<li><strong>${show(name)}</strong>: ${authorizeText(t.authorize, false)}${t.approval?.length ? `approval: ${approvalText(t.approval)}` : ''}${t.credentials ? `credentials: ${credentialsText(t.credentials)}` : ''}${t.rate_limit || t.budget ? `<br>${limitsText(t)}` : ''}</li>`,
              )
              .join('')}</ul>`
          : ''
      }</dd>`
    : '';
  return `<article class="card route" id="route-${escapeHtml(r.name)}">
<h3>${show(r.name)} <span class="pill mode-${mode}">${mode}</span>${r.mcp ? ' <span class="pill">MCP</span>' : ''}</h3>
<dl>
<dt>Match</dt><dd><code>${r.match.methods ? show(r.match.methods.join(' ')) : 'any method'} ${show(r.match.path)}</code></dd>
<dt>Upstream</dt><dd><code>${show(upstreamText(r.upstream.url))}</code>${r.upstream.strip_prefix ? ` (strips <code>${show(r.upstream.strip_prefix)}</code>)` : ''}${
    r.upstream.headers
      ? ` · headers: ${Object.keys(r.upstream.headers)
          .map((h) => `<code>${show(h)}</code>`)
          .join(' ')} (values hidden)`
      : ''
  }</dd>
${r.scopes?.length ? `<dt>Scopes</dt><dd>${r.scopes.map((s) => `<code>${show(s)}</code>`).join(' ')}</dd>` : ''}
<dt>Checks</dt><dd>${authorizeText(r.authorize, Boolean(r.public))}</dd>
<dt>Approval</dt><dd>${approvalText(r.approval)}</dd>
<dt>Limits</dt><dd>${limitsText(r)}</dd>
<dt>Credentials</dt><dd class="credentials">${credentialsText(r.credentials)}</dd>
${tools}
</dl>
</article>`;
}

export function renderAdminRoutes(f: AdminFrame, config: Config): string {
  return frame(
    f,
    'routes',
    'Routes and their policies',
    `<p class="meta">As configured in the running generation, in matching order (first match wins). Secrets (header values, client secrets) are never shown.</p>
${config.routes.length ? config.routes.map((r) => routeCard(r, config)).join('\n') : '<p class="empty">No routes configured.</p>'}`,
  );
}

// ------------------------------------------------------------------ tool pins

export const toolPath = (base: string, p: { route: string; tool: string }) =>
  `${base}/admin/tools/${encodeURIComponent(p.route)}/${encodeURIComponent(p.tool)}`;

export function renderAdminTools(f: AdminFrame, pins: ToolPinView[], mcpRoutes: string[]): string {
  const changed = pins.filter((p) => p.status === 'changed');
  const row = (p: ToolPinView) =>
    `<tr id="pin-${escapeHtml(p.route)}-${escapeHtml(p.tool)}" class="pin-${p.status}"><td>${show(p.route)}</td><td><strong>${show(p.tool)}</strong></td><td>${
      p.status === 'changed' ? '<span class="status status-expired">changed: blocked</span>' : '<span class="status">pinned</span>'
    }</td><td>${p.changed ? `new seen ${whenIso(p.changed.seen_at)}` : `since ${whenIso(p.accepted_at ?? p.pinned_at)}`}</td><td><a href="${toolPath(f.base, p)}">${p.status === 'changed' ? 'Review the change' : 'View'}<span class="sr-only"> ${show(p.route)} ${show(p.tool)}</span></a></td></tr>`;
  return frame(
    f,
    'tools',
    'MCP tool pins',
    `<p class="meta">The first definition of a tool seen on a route is pinned (SHA-256 of the whole definition: every field an agent receives, such as description, inputSchema, title, annotations, outputSchema and _meta). A different definition blocks the tool — hidden from tools/list, tools/call refused — until an admin reviews the change and accepts it. MCP routes: ${
      mcpRoutes.length ? mcpRoutes.map((r) => `<code>${show(r)}</code>`).join(' ') : '(none)'
    }.</p>
<p><span class="count" id="changed-count">${changed.length}</span> changed, waiting for review</p>
${
  pins.length
    ? `<div class="table-wrap"><table class="pins"><caption class="sr-only">Pinned MCP tools</caption><thead><tr><th scope="col">Route</th><th scope="col">Tool</th><th scope="col">Status</th><th scope="col">When</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead><tbody>${[...changed, ...pins.filter((p) => p.status !== 'changed')].map(row).join('')}</tbody></table></div>`
    : '<p class="empty">No tool seen yet: pins are made on the first tools/list of each MCP route.</p>'
}`,
  );
}

const kib = (bytes: number) => `${Math.ceil(bytes / 1024).toLocaleString('en')} KiB`;

/** Why Accept is not offered, and how to proceed. */
function notAcceptableText(why: NotAcceptable, pin: ToolPinView, bytes: number | undefined): string {
  // Quoted: an admin pastes it into a shell, and the tool's name is the MCP server's choice.
  const cli = `warden mcp accept --route ${shellWord(pin.route)} --tool ${shellWord(pin.tool)}`;
  switch (why) {
    case 'too_large':
      return `The new definition is ${kib(bytes ?? 0)}, more than the ${kib(SHOWN_DEFINITION_BYTES)} this page shows whole, so it cannot be accepted here: accepting pins every character, and you would not have seen them all. Review it in full with <code>${show(cli)}</code>, which prints the whole definition and its hash, then accept exactly that with <code>${show(cli)} --hash HASH</code>.`;
    case 'not_kept':
      return `The new definition is ${kib(bytes ?? 0)}, more than the ${kib(MAX_KEPT_DEFINITION_BYTES)} Warden keeps for review: only its hash was recorded, so nobody can review it and it cannot be accepted. The tool stays blocked until the MCP server lists a smaller definition (the next tools/list records it).`;
    case 'legacy':
      return 'This change was recorded by an older Warden, which kept only part of the definition, so it cannot be accepted. The next tools/list on this route records it whole; reload this page after an agent has listed the tools.';
    default:
      return 'The stored copy of the new definition does not match its hash, so it cannot be accepted. The next tools/list on this route records it again.';
  }
}

export function renderAdminToolDiff(f: AdminFrame, pin: ToolPinView, review: ToolReview): string {
  const mark = { same: ' ', removed: '−', added: '+', elided: '⋯' } as const;
  const lines = review.lines
    .map(
      (d) =>
        `<span class="d-${d.op}">${d.op === 'removed' ? '<del>' : d.op === 'added' ? '<ins>' : d.op === 'elided' ? '<em>' : ''}<span class="d-mark" aria-hidden="true">${mark[d.op]}</span>${show(d.text) || ' '}${d.op === 'removed' ? '</del>' : d.op === 'added' ? '</ins>' : d.op === 'elided' ? '</em>' : ''}</span>`,
    )
    .join('');
  const elided = review.lines.some((d) => d.op === 'elided')
    ? '<p class="notice" id="elided-note">Lines marked ⋯ stand for parts not shown; they are not part of either definition.</p>'
    : '';
  const action = review.acceptHash
    ? `<form method="post" action="${toolPath(f.base, pin)}/accept" class="accept">${hidden(f.csrf)}<input type="hidden" name="hash" value="${escapeHtml(review.acceptHash)}"><button class="approve" type="submit" id="accept">Accept the new definition</button></form>
<p class="meta">Accepting pins exactly the new definition shown here, every field of it (hash <code>${escapeHtml(review.acceptHash.slice(0, 16))}…</code>); if it changes again before you press the button, nothing is accepted and the new change is shown.</p>`
    : `<p class="notice" id="not-acceptable">${notAcceptableText(review.notAcceptable ?? 'mismatch', pin, review.bytes)}</p>`;
  const body = pin.changed
    ? `<p>The upstream now describes <strong>${show(pin.tool)}</strong> differently from the definition pinned ${whenIso(pin.pinned_at)}. The tool stays blocked for every agent until you accept the new definition.</p>
<p class="legend"><span class="d-removed"><del><span class="d-mark" aria-hidden="true">−</span> pinned (allowed until now)</del></span> <span class="d-added"><ins><span class="d-mark" aria-hidden="true">+</span> new (what the server says now)</ins></span></p>
${elided}
<pre class="diff" id="diff" aria-label="Line diff of the pinned and the new definition">${lines}</pre>
${action}`
    : `<p>Pinned ${whenIso(pin.pinned_at)}${pin.accepted_at ? `, accepted ${whenIso(pin.accepted_at)}` : ''}; no change is waiting.</p>
${elided}
<pre class="diff" id="definition">${lines}</pre>`;
  return frame(f, 'tools', `Tool ${pin.tool} on ${pin.route}`, body);
}

// ------------------------------------------------------------------ health

export interface HealthView {
  instance: { host: string; pid: number; version: string; node: string; startedAt: number | null; uptimeS: number };
  store: { driver: string; ok: boolean; ms: number; reason?: string };
  authz: { engine: string; ok: boolean; ms: number; reason?: string };
  jwks: Array<{ issuer: string; local: boolean; okAt?: number; errorAt?: number }>;
  lastLoad: { at: number; ok: boolean; reason?: string; kind: 'start' | 'reload' } | null;
  /** Null when the store could not count them. */
  pendingApprovals: number | null;
  changedTools: number;
  routes: number;
}

function duration(s: number): string {
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min ${Math.floor(s % 60)} s` : `${Math.floor(s)} s`;
}

const okBadge = (ok: boolean) => `<span class="status ${ok ? '' : 'status-expired'}">${ok ? 'ok' : 'unavailable'}</span>`;

export function renderAdminHealth(f: AdminFrame, h: HealthView): string {
  const jwks = h.jwks.length
    ? `<ul class="list">${h.jwks
        .map(
          (j) =>
            `<li class="card"><div><strong>${show(j.issuer)}</strong><br><span class="meta">${
              j.local
                ? 'dev issuer: keys held in this process, never fetched'
                : j.okAt === undefined && j.errorAt === undefined
                  ? 'not fetched yet (keys are fetched on the first token of this issuer)'
                  : `${j.okAt !== undefined ? `keys fetched ${when(j.okAt)}` : 'never fetched successfully'}${j.errorAt !== undefined && (j.okAt === undefined || j.errorAt > j.okAt) ? ` · <strong>last fetch failed ${when(j.errorAt)}</strong>` : ''}`
            }</span></div>${!j.local && j.errorAt !== undefined && (j.okAt === undefined || j.errorAt > j.okAt) ? '<span class="status status-expired">failing</span>' : '<span class="status">ok</span>'}</li>`,
        )
        .join('')}</ul>`
    : '<p class="empty">No token issuer configured.</p>';
  return frame(
    f,
    'health',
    'Instance health',
    `<p class="meta" id="instance-note">This page was served by instance <strong>${show(h.instance.host)}</strong> (pid ${h.instance.pid}). The store and the authorization engine are shared by every instance; key sets, the last configuration load and uptime are this instance’s own. Behind a load balancer, another instance may answer the next reload.</p>
<div class="grid">
<section class="card" aria-labelledby="h-store"><h3 id="h-store">Store</h3><p>${okBadge(h.store.ok)} <code>${escapeHtml(h.store.driver)}</code> · ping ${h.store.ms} ms${h.store.reason ? ` · ${escapeHtml(h.store.reason)}` : ''}</p></section>
<section class="card" aria-labelledby="h-authz"><h3 id="h-authz">Authorization engine</h3><p>${okBadge(h.authz.ok)} <code>${escapeHtml(h.authz.engine)}</code> · ${h.authz.ms} ms${h.authz.reason ? ` · ${escapeHtml(h.authz.reason)}` : ''}</p></section>
<section class="card" aria-labelledby="h-config"><h3 id="h-config">Configuration</h3><p id="last-load">${
      h.lastLoad
        ? `${h.lastLoad.ok ? okBadge(true) : '<span class="status status-expired">reload failed</span>'} ${h.lastLoad.kind === 'start' ? 'loaded at start' : h.lastLoad.ok ? 'reloaded' : `reload refused (${escapeHtml(h.lastLoad.reason ?? 'error')}); the previous configuration keeps running`} ${when(h.lastLoad.at)}`
        : 'unknown'
    }</p><p class="meta">${h.routes} route${h.routes === 1 ? '' : 's'} · ${h.pendingApprovals === null ? 'pending approvals unknown' : `${h.pendingApprovals} pending approval${h.pendingApprovals === 1 ? '' : 's'}`} · <a href="${f.base}/admin/tools">${h.changedTools} changed tool${h.changedTools === 1 ? '' : 's'}</a></p></section>
<section class="card" aria-labelledby="h-version"><h3 id="h-version">Version</h3><p>Warden <code id="version">${escapeHtml(h.instance.version)}</code> on Node.js <code>${escapeHtml(h.instance.node)}</code><br>up ${duration(h.instance.uptimeS)}${h.instance.startedAt !== null ? ` (since ${when(h.instance.startedAt)})` : ''}</p></section>
</div>
<h2>Token issuers (JWKS)</h2>
${jwks}`,
  );
}

/** The refusal page for a signed-in person without the admin role. */
export function renderNotAdmin(base: string, sub: string): string {
  return layout(
    'Platform team only',
    { base, sub, events: false },
    `<p id="message">These pages are for Warden’s administrators (console.admin). You are signed in as ${show(sub)}, who is not one.</p><p><a href="${base}">Back to your console</a></p>`,
  );
}
