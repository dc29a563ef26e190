/**
 * Config checks of authorization: `authz:` itself, the checks routes and MCP
 * tools ask (templates compile, ids start with a literal type), and, once the
 * model is loaded, that every type and relation they name exists in it.
 */

import type { ConfigIssue } from '../config/issues.js';
import type { CheckConfig, Config } from '../config/schema.js';
import { compileTemplate } from '../templates/template.js';

/** Every problem of `authz:` and of the routes' and tools' `authorize:` lists (no I/O). */
export function authzConfigIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  if (config.authz.engine === 'openfga' && !config.authz.openfga) add('authz.openfga', 'required when authz.engine is openfga');
  if (config.authz.engine === 'openfga' && config.authz.openfga && !config.authz.openfga.store_id) {
    add('authz.openfga.store_id', 'required (run `warden fga push` to create a store)');
  }
  config.routes.forEach((route, i) => {
    checkTemplates(route.authorize?.checks ?? [], `routes[${i}].authorize`, add);
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {}))
      checkTemplates(rule.authorize?.checks ?? [], `routes[${i}].mcp.tools.${tool}.authorize`, add);
  });
  return issues;
}

function checkText(source: string, at: string, add: (p: string, m: string) => void) {
  try {
    compileTemplate(source);
  } catch (err) {
    add(at, (err as Error).message);
  }
}

function checkTemplates(checks: CheckConfig[], at: string, add: (p: string, m: string) => void) {
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
export function policyNameIssues(config: Config, relations: ReadonlyMap<string, ReadonlySet<string>>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
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
  const admin = config.console.admin;
  if (admin && 'relation' in admin) {
    const type = typeOf(admin.object);
    if (!relations.has('user')) issues.push({ path: 'console.admin', message: 'the model has no type user (admins are checked as user:<sub>)' });
    if (!relations.has(type)) issues.push({ path: 'console.admin.object', message: `type ${type} is not in the model` });
    else if (!relations.get(type)!.has(admin.relation))
      issues.push({ path: 'console.admin.relation', message: `type ${type} has no relation ${admin.relation}` });
  }
  config.routes.forEach((r, i) => {
    verify(r.authorize?.checks ?? [], `routes[${i}].authorize`);
    for (const [tool, rule] of Object.entries(r.mcp?.tools ?? {})) verify(rule.authorize?.checks ?? [], `routes[${i}].mcp.tools.${tool}.authorize`);
  });
  return issues;
}
