/**
 * Cross-field checks the schema cannot express. Each returns every problem with
 * its YAML path; nothing here throws.
 */

import type { ConfigIssue } from './load.js';
import type { CheckConfig, Config } from './schema.js';
import { compilePattern } from '../pipeline/routes.js';
import { compileTemplate } from '../templates/template.js';
import { approvalRuleIssues } from '../approvals/rules.js';
import { vaultConfigIssues } from '../vault/config-checks.js';
import { staticHeaderIssues } from '../proxy/static-headers.js';
import { limitsConfigIssues } from '../limits/compile.js';
import { storeConfigIssues } from '../store/config-checks.js';
import { loginConfigIssues } from '../identity/login/config-checks.js';
import { assertionConfigIssues } from '../identity/assertion/config-checks.js';

type Issue = Omit<ConfigIssue, 'line'> & { line?: number };

/** Problems between fields of one config (no I/O). */
export function crossCheck(config: Config, options: { env?: NodeJS.ProcessEnv } = {}): Issue[] {
  const env = options.env ?? process.env;
  const issues: Issue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });

  if (config.identity.dev_issuer && env.NODE_ENV === 'production') {
    add('identity.dev_issuer', 'the dev issuer must not be enabled when NODE_ENV=production');
  }
  if (config.server.workers !== 1 && config.store.driver === 'memory') {
    add('server.workers', 'several workers need a shared store (store.driver: redis): approvals, vault and locks must be seen by every worker');
  }
  config.approvals.notify.forEach((n, i) => {
    if ('console' in n && env.NODE_ENV === 'production') add(`approvals.notify[${i}].console`, 'the console channel prints approval links and is for development only');
  });
  if (config.server.metrics_auth && !config.server.admin_token) add('server.metrics_auth', 'needs server.admin_token (the secret /metrics would require)');
  if (config.store.driver === 'redis' && !config.store.url) add('store.url', 'required when store.driver is redis');
  issues.push(...storeConfigIssues(config.store));
  if (config.authz.engine === 'openfga' && !config.authz.openfga) add('authz.openfga', 'required when authz.engine is openfga');
  if (config.authz.engine === 'openfga' && config.authz.openfga && !config.authz.openfga.store_id) {
    add('authz.openfga.store_id', 'required (run `warden fga push` to create a store)');
  }
  config.server.trusted_proxies.forEach((cidr, i) => {
    if (!isCidr(cidr)) add(`server.trusted_proxies[${i}]`, `not a CIDR or address: ${JSON.stringify(cidr)}`);
  });

  const keyIds = new Set<string>();
  config.vault.keys.forEach((k, i) => {
    if (keyIds.has(k.id)) add(`vault.keys[${i}].id`, `duplicate key id ${k.id}`);
    keyIds.add(k.id);
    if (Buffer.from(k.key, 'base64').length !== 32 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(k.key)) {
      add(`vault.keys[${i}].key`, 'must be 32 random bytes in base64 (`warden keygen` prints one)');
    }
  });
  for (const [name, p] of Object.entries(config.vault.providers)) {
    if (!p.issuer && !(p.authorization_url && p.token_url)) {
      add(`vault.providers.${name}`, 'needs either issuer (OIDC discovery) or authorization_url and token_url');
    }
  }

  const names = new Set<string>();
  const needsIdentity = config.routes.some((r) => !r.public);
  if (needsIdentity && config.identity.issuers.length === 0 && !config.identity.dev_issuer) {
    add('identity', 'no issuers configured and dev_issuer is off: no request to a non-public route could authenticate');
  }

  config.routes.forEach((route, i) => {
    const at = `routes[${i}]`;
    if (names.has(route.name)) add(`${at}.name`, `duplicate route name ${route.name}`);
    names.add(route.name);

    let literalPrefix = '/';
    try {
      literalPrefix = compilePattern(route.match.path).literalPrefix;
    } catch (err) {
      add(`${at}.match.path`, (err as Error).message);
    }
    const strip = route.upstream.strip_prefix;
    if (strip !== undefined) {
      const s = strip.replace(/\/+$/, '') || '/';
      if (!(literalPrefix === s || literalPrefix.startsWith(s + '/') || s === '/')) {
        add(`${at}.upstream.strip_prefix`, `must be a leading part of the literal path ${literalPrefix}`);
      }
    }
    if (/[?#]/.test(route.upstream.url)) add(`${at}.upstream.url`, 'must not contain a query or fragment');
    for (const issue of staticHeaderIssues(route)) add(`${at}.${issue.path}`, issue.message);

    if (route.public && route.authorize) add(`${at}.public`, 'a public route cannot also have authorize:');
    if (!route.public && !route.authorize) add(at, 'must say authorize: (a list, possibly []) or public: true');
    if (route.public) {
      if (route.scopes?.length) add(`${at}.scopes`, 'a public route has no token to carry scopes');
      if (route.approval) add(`${at}.approval`, 'approvals need an authenticated user; the route is public');
      if (route.credentials && route.credentials.kind !== 'none' && route.credentials.kind !== 'header') {
        add(`${at}.credentials`, 'vault and token exchange credentials need an authenticated user; the route is public');
      }
      if (route.mcp) add(`${at}.mcp`, 'MCP routes cannot be public');
    }

    checkAuthorizeTemplates(route.authorize?.checks ?? [], `${at}.authorize`, add);
    route.approval?.forEach((rule, j) => {
      if (rule.message) checkText(rule.message, `${at}.approval[${j}].message`, add);
    });
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {})) {
      const tat = `${at}.mcp.tools.${tool}`;
      checkAuthorizeTemplates(rule.authorize?.checks ?? [], `${tat}.authorize`, add);
      rule.approval?.forEach((r, j) => r.message && checkText(r.message, `${tat}.approval[${j}].message`, add));
    }
  });
  for (const issue of vaultConfigIssues(config)) {
    const sep = issue.indexOf(': ');
    add(issue.slice(0, sep), issue.slice(sep + 2));
  }
  issues.push(...limitsConfigIssues(config));
  for (const issue of loginConfigIssues(config, env)) issues.push(issue);
  issues.push(...assertionConfigIssues(config, env));
  // CEL `when` expressions compile at load; a bad one is a config error with its path.
  for (const issue of approvalRuleIssues(config.routes)) {
    if (!issue.path.endsWith('.message')) issues.push(issue);
  }
  return issues;
}

function checkText(source: string, at: string, add: (p: string, m: string) => void) {
  try {
    compileTemplate(source);
  } catch (err) {
    add(at, (err as Error).message);
  }
}

function checkAuthorizeTemplates(checks: CheckConfig[], at: string, add: (p: string, m: string) => void) {
  checks.forEach((check, i) => {
    for (const field of ['user', 'relation', 'object'] as const) {
      try {
        const t = compileTemplate(check[field]);
        if (field === 'relation' && t.refs.length) add(`${at}[${i}].relation`, 'relations cannot be templated');
        if (field !== 'relation' && !/^[^:{}#]+:/.test(check[field])) {
          add(`${at}[${i}].${field}`, `must start with a literal type, as in "user:{user}" (got ${JSON.stringify(check[field])})`);
        }
      } catch (err) {
        add(`${at}[${i}].${field}`, (err as Error).message);
      }
    }
    for (const [k, v] of Object.entries(check.context ?? {})) {
      if (typeof v === 'string') checkText(v, `${at}[${i}].context.${k}`, add);
    }
    check.contextual_tuples?.forEach((t, j) => {
      for (const field of ['user', 'relation', 'object'] as const) checkText(t[field], `${at}[${i}].contextual_tuples[${j}].${field}`, add);
    });
  });
}

/**
 * Types and relations named by checks must exist in the loaded model (a typo
 * would otherwise deny every request at run time, or worse, silently).
 */
export function checkPolicyNames(config: Config, relations: ReadonlyMap<string, ReadonlySet<string>>): Issue[] {
  const issues: Issue[] = [];
  const typeOf = (s: string) => s.slice(0, s.indexOf(':'));
  const verify = (checks: CheckConfig[], at: string) =>
    checks.forEach((c, i) => {
      const objectType = typeOf(c.object);
      const rels = relations.get(objectType);
      if (!rels) issues.push({ path: `${at}[${i}].object`, message: `type ${objectType} is not in the model` });
      else if (!rels.has(c.relation)) issues.push({ path: `${at}[${i}].relation`, message: `type ${objectType} has no relation ${c.relation}` });
      const userType = typeOf(c.user);
      if (!relations.has(userType)) issues.push({ path: `${at}[${i}].user`, message: `type ${userType} is not in the model` });
      const hash = c.user.indexOf('#');
      if (hash > 0 && relations.has(userType) && !relations.get(userType)!.has(c.user.slice(hash + 1))) {
        issues.push({ path: `${at}[${i}].user`, message: `type ${userType} has no relation ${c.user.slice(hash + 1)}` });
      }
    });
  config.routes.forEach((r, i) => {
    verify(r.authorize?.checks ?? [], `routes[${i}].authorize`);
    for (const [tool, rule] of Object.entries(r.mcp?.tools ?? {})) verify(rule.authorize?.checks ?? [], `routes[${i}].mcp.tools.${tool}.authorize`);
  });
  return issues;
}

function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined) return false;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255) && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= 32));
  if (addr.includes(':')) return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= 128);
  return false;
}
