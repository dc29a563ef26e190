/** Config checks of what the pipeline reads from every route: names, patterns, upstreams, public routes. */

import type { ConfigIssue } from '../config/issues.js';
import type { Config } from '../config/schema.js';
import { staticHeaderIssues } from '../proxy/static-headers.js';
import { compilePattern } from './routes.js';

/** Every problem of `routes[*]` outside the features' own keys. */
export function routeConfigIssues(config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  const names = new Set<string>();
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
  });
  return issues;
}
