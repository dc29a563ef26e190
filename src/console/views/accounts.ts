/**
 * Connected accounts: the signed-in person's linked accounts per provider
 * (scopes, status, when linked, last used as the recent activity shows it),
 * with link / re-link (the vault's authorization-code flow, started here for
 * the person themself) and revoke. Connections are read, started and deleted
 * only under the session's `sub`.
 */

import type { Context, Hono } from 'hono';
import type { ActivitySource } from '../../audit/activity.js';
import { escapeHtml } from '../../approvals/review-page.js';
import type { SignedInPerson } from '../../http/session.js';
import { beginLinking } from '../../vault/begin-link.js';
import type { ProviderError } from '../../vault/providers.js';
import type { Connection } from '../../vault/records.js';
import type { VaultServices } from '../../vault/services.js';
import type { ConsoleKit } from '../kit.js';
import { consoleHeaders, layout, show, when } from '../page.js';

const PROVIDER = /^[A-Za-z0-9_.-]{1,64}$/;
/** The agent name a flow started from the console carries (shown in logs). */
export const CONSOLE_AGENT = 'console';

const NOTICES = {
  revoked: 'Account disconnected; an agent must ask you to connect it again.',
} as const;

const hidden = (csrf: string) => `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">`;

export function registerAccounts(app: Hono, kit: ConsoleKit, vault: VaultServices | null, activity: ActivitySource | null = null): void {
  const { rt, base } = kit;
  // Which routes (and MCP tools) send which provider's token: for "last used".
  const providerOf = new Map<string, string>();
  for (const r of rt.config.routes) {
    if (r.credentials?.kind === 'vault') providerOf.set(`${r.name}\n`, r.credentials.provider);
    for (const [tool, t] of Object.entries(r.mcp?.tools ?? {}))
      if (t.credentials?.kind === 'vault') providerOf.set(`${r.name}\n${tool}`, t.credentials.provider);
  }

  async function lastUsed(sub: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (!activity || providerOf.size === 0) return out;
    try {
      const page = await activity.page(sub, { outcome: 'allow' }, { limit: 200 });
      for (const i of page.items) {
        if (i.credentials !== 'vault') continue;
        const p = providerOf.get(`${i.route}\n${i.tool ?? ''}`) ?? providerOf.get(`${i.route}\n`);
        if (p && !out.has(p)) out.set(p, i.time);
      }
    } catch (err) {
      rt.logger.warn({ err }, 'console accounts: activity unavailable for last use');
    }
    return out;
  }

  const frame = (who: SignedInPerson, inner: string) =>
    layout('Connected accounts', { base, sub: who.sub, current: '/accounts', csrfMeta: kit.csrf(who) }, inner);

  app.get('/console/accounts', async (c) => {
    const who = await kit.person(c);
    if (who instanceof Response) return who;
    if (!vault) return kit.page(c, 200, frame(who, '<p class="empty">No token vault is configured: agents use no linked accounts here.</p>'));
    const [connections, used] = await Promise.all([vault.connections.list(who.sub), lastUsed(who.sub)]);
    const done = c.req.query('done');
    const notice = done !== undefined && Object.hasOwn(NOTICES, done) ? NOTICES[done as keyof typeof NOTICES] : undefined;
    const csrf = kit.csrf(who);
    const linked = new Map(connections.map((x) => [x.provider, x]));
    const rows = vault.providers
      .names()
      .map((name) => row(name, linked.get(name), used.get(name), csrf))
      .join('');
    // A connection to a provider no longer configured can still be revoked.
    const orphans = connections
      .filter((x) => !vault.providers.get(x.provider))
      .map((x) => row(x.provider, x, used.get(x.provider), csrf, true))
      .join('');
    // The link buttons' 303 leads to the providers: the CSP's form-action must allow their origins.
    const origins = await Promise.all(
      vault.providers.names().map(async (name) => {
        try {
          return new URL((await vault.providers.get(name)!.endpoints()).authorizationUrl).origin;
        } catch {
          return null; // unreachable now: its link button answers 503
        }
      }),
    );
    return c.body(
      frame(
        who,
        `${notice ? `<p class="notice" role="status" id="notice">${show(notice)}</p>` : ''}
<p class="meta">Accounts agents use on your behalf. Revoking deletes Warden’s copy of the tokens and asks the provider to revoke them.</p>
${rows || orphans ? `<ul class="list" id="accounts">${rows}${orphans}</ul>` : '<p class="empty">No providers are configured.</p>'}`,
      ),
      200,
      consoleHeaders([...new Set(origins.filter((o): o is string => o !== null))]),
    );
  });

  function row(name: string, conn: Connection | undefined, used: string | undefined, csrf: string, orphan = false): string {
    const id = `connection-${escapeHtml(name)}`;
    const action = (what: string) => `${base}/accounts/${encodeURIComponent(name)}/${what}`;
    const linkForm = (label: string, cls: string) =>
      orphan
        ? ''
        : `<form method="post" action="${action('link')}">${hidden(csrf)}<button class="${cls}" type="submit">${label}<span class="sr-only"> ${show(name)}</span></button></form>`;
    if (!conn) {
      return `<li class="card connection" id="${id}"><div><h2>${show(name)}</h2> <span class="status status-not-linked">not connected</span></div>
<div class="actions">${linkForm('Connect', 'link')}</div></li>`;
    }
    const expired = conn.expiresAt !== undefined && conn.expiresAt <= Date.now() && !conn.refreshToken;
    const status = conn.status === 'relink_required' ? 'needs re-linking' : expired ? 'expired' : 'active';
    return `<li class="card connection" id="${id}"><div><h2>${show(name)}</h2> <span class="status status-${status.replace(/\s+/g, '-')}">${status}</span>
<p class="meta">Scopes: ${conn.scopes.length ? conn.scopes.map((s) => `<code>${show(s)}</code>`).join(' ') : '(none)'}<br>
Linked ${when(conn.createdAt)} · tokens updated ${when(conn.updatedAt)} · last used <span class="last-used">${used ? escapeHtml(used.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')) : 'not in recent activity'}</span></p></div>
<div class="actions">${linkForm('Re-link', 'relink')}
<form method="post" action="${action('revoke')}">${hidden(csrf)}<button class="revoke" type="submit">Revoke<span class="sr-only"> ${show(name)} connection</span></button></form></div></li>`;
  }

  /** The provider named in the path when it is well formed, else null. */
  const nameOf = (c: Context) => {
    const name = c.req.param('provider');
    return name && PROVIDER.test(name) ? name : null;
  };

  app.post('/console/accounts/:provider/link', async (c) => {
    const post = await kit.posted(c);
    if (post instanceof Response) return post;
    const { who } = post;
    const name = nameOf(c);
    const provider = vault && name ? vault.providers.get(name) : undefined;
    if (!vault || !name || !provider) return kit.message(c, 404, who, 'Not found', 'No such provider.');
    // Re-linking asks again for what the account had, and always for what the provider requires.
    const had = await vault.connections.get(who.sub, name);
    const scopes = [...new Set([...provider.scopes, ...(had?.scopes ?? [])])];
    let location: string;
    try {
      location = await beginLinking(vault, c, { user: who.sub, agent: CONSOLE_AGENT, provider: name, scopes });
    } catch (err) {
      rt.logger.warn({ provider: name, err }, 'console: could not start linking');
      return kit.message(c, 503, who, 'Provider unavailable', 'Warden could not reach the provider. Try again later.');
    }
    rt.logger.info({ provider: name, user: who.sub, via: 'console' }, 'vault linking started');
    return c.body(null, 303, { 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer', Location: location });
  });

  app.post('/console/accounts/:provider/revoke', async (c) => {
    const post = await kit.posted(c);
    if (post instanceof Response) return post;
    const { who } = post;
    const name = nameOf(c);
    // Read and deleted under the signed-in person only: another person's provider name finds nothing.
    const conn = vault && name ? await vault.connections.get(who.sub, name) : null;
    if (!vault || !name || !conn) return kit.message(c, 404, who, 'Not found', 'No such connection.');
    await vault.connections.delete(who.sub, name);
    rt.logger.info({ provider: name, user: who.sub, via: 'console' }, 'vault connection revoked');
    const provider = vault.providers.get(name);
    if (provider) {
      const token = conn.refreshToken ?? conn.accessToken;
      await provider.revoke(token, conn.refreshToken ? 'refresh_token' : 'access_token').catch((err: unknown) => {
        rt.logger.warn({ provider: name, err, kind: (err as ProviderError).kind }, 'vault revocation at the provider failed');
      });
    }
    return c.body(null, 303, { 'Cache-Control': 'no-store', Location: `${base}/accounts?done=revoked` });
  });
}
