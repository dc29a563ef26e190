/**
 * Load-time checks of `identity.assertion` and every route's and tool's
 * `assertion:`: keys parse and match their algorithm (HS* refused), exactly
 * one key signs, ttl ≤ 60 s, and the header cannot collide with another
 * credential or a header Warden owns. Each problem carries its YAML path.
 */

import type { Config, CredentialsConfig, RouteAssertionConfig } from '../../config/schema.js';
import { RESERVED_CLAIMS } from './claims.js';
import { KeyProblem, parseAssertionKey } from './keys.js';
import { claimPairs } from './settings.js';

/** Longest assertion lifetime: it is a bearer statement; short is the point. */
export const MAX_ASSERTION_TTL_MS = 60_000;

/** Headers the assertion may not be sent in: hop-by-hop, forwarding and Warden's own. */
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'content-encoding',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-connection',
  'cookie',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'x-request-id',
  'traceparent',
  'tracestate',
  'warden-approval',
  'mcp-session-id',
]);

const MAX_MAPPED_CLAIMS = 16;

export interface AssertionIssue {
  path: string;
  message: string;
}

export function assertionConfigIssues(config: Config, env: NodeJS.ProcessEnv = process.env): AssertionIssue[] {
  const issues: AssertionIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  const a = config.identity.assertion;

  if (a.ttl > MAX_ASSERTION_TTL_MS) add('identity.assertion.ttl', `at most 60s (an assertion is a bearer statement; got ${a.ttl / 1000}s)`);
  if (a.ttl < 1000) add('identity.assertion.ttl', 'at least 1s');

  const ids = new Set<string>();
  let active = 0;
  a.keys.forEach((k, i) => {
    const at = `identity.assertion.keys[${i}]`;
    if (ids.has(k.id)) add(`${at}.id`, `duplicate key id ${k.id}`);
    ids.add(k.id);
    if (k.status === 'active') active++;
    try {
      parseAssertionKey(k);
    } catch (err) {
      add(`${at}.${err instanceof KeyProblem ? err.field : 'private_key'}`, (err as Error).message);
    }
  });
  if (a.keys.length > 0 && active !== 1) {
    add('identity.assertion.keys', `exactly one key must have status: active (the one that signs); found ${active}`);
  }

  let used = false;
  config.routes.forEach((route, i) => {
    const at = `routes[${i}]`;
    // A static header or header credential must never pose as an assertion: Warden-Identity and the
    // route's assertion headers carry only what Warden signs.
    const assertionHeaders = new Set(['warden-identity']);
    for (const s of [route.assertion, ...Object.values(route.mcp?.tools ?? {}).map((t) => t.assertion)]) {
      if (typeof s === 'object') assertionHeaders.add(s.header.toLowerCase());
      else if (s === true) assertionHeaders.add('warden-identity');
    }
    assertionHeaders.delete('authorization');
    for (const name of Object.keys(route.upstream.headers ?? {})) {
      if (assertionHeaders.has(name.toLowerCase()))
        add(`${at}.upstream.headers.${name}`, `${name} carries the identity assertion Warden signs; a static value cannot be sent in it`);
    }
    const credentialHeaders: Array<[string, CredentialsConfig | undefined]> = [[`${at}.credentials`, route.credentials]];
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {})) credentialHeaders.push([`${at}.mcp.tools.${tool}.credentials`, rule.credentials]);
    for (const [path, c] of credentialHeaders) {
      if (c?.kind === 'header' && c.name.toLowerCase() === 'warden-identity')
        add(`${path}.header.name`, 'Warden-Identity carries the identity assertion Warden signs; a static value cannot be sent in it');
    }
    if (checkRoute(route.assertion, `${at}.assertion`, route.credentials, add)) {
      used = true;
      if (route.public) add(`${at}.assertion`, 'a public route has no caller to assert; remove assertion: or the public flag');
    }
    for (const [tool, rule] of Object.entries(route.mcp?.tools ?? {})) {
      if (checkRoute(rule.assertion, `${at}.mcp.tools.${tool}.assertion`, rule.credentials ?? route.credentials, add)) used = true;
    }
  });
  if (used && a.keys.length === 0 && env.NODE_ENV === 'production') {
    add('identity.assertion.keys', 'required when NODE_ENV=production (the generated development key is not for production)');
  }
  return issues;
}

/** Returns true when the setting sends assertions. */
function checkRoute(
  setting: RouteAssertionConfig | undefined,
  at: string,
  credentials: CredentialsConfig | undefined,
  add: (p: string, m: string) => void,
): boolean {
  if (setting === undefined || setting === false) return false;
  if (setting === true) return true;
  const header = setting.header.toLowerCase();
  if (FORBIDDEN_HEADERS.has(header)) add(`${at}.header`, `${setting.header} is a header Warden manages; choose another (default Warden-Identity)`);
  if (header === 'authorization' && credentials && credentials.kind !== 'none') {
    add(
      `${at}.header`,
      `Authorization already carries the ${credentials.kind} credential on this route; send the assertion in its own header (default Warden-Identity)`,
    );
  }
  if (credentials?.kind === 'header' && credentials.name.toLowerCase() === header) {
    add(`${at}.header`, `the route's header credential already uses ${credentials.name}`);
  }
  if (setting.audience !== undefined && setting.audience.trim() !== setting.audience) add(`${at}.audience`, 'must not have surrounding spaces');
  const pairs = claimPairs(setting.claims);
  if (pairs.length > MAX_MAPPED_CLAIMS) add(`${at}.claims`, `at most ${MAX_MAPPED_CLAIMS} claims`);
  for (const [to] of pairs) {
    if (RESERVED_CLAIMS.has(to)) add(`${at}.claims.${to}`, `${to} is set by Warden and cannot be copied from the incoming token`);
  }
  return true;
}
