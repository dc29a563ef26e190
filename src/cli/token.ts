/** `warden token`: a JWT from the dev issuer, printed alone on stdout. */

import { parseArgs } from 'node:util';
import { parseDuration } from '../config/duration.js';
import { dataDirOf, publicUrlOf } from '../config/public-url.js';
import { loadDevIssuer } from '../identity/dev-issuer.js';
import { mcpResource } from '../mcp/audience.js';
import { USAGE, configPath, fail, loadOrExit } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      agent: { type: 'string' },
      user: { type: 'string' },
      scope: { type: 'string' },
      ttl: { type: 'string', default: '1h' },
      claim: { type: 'string', multiple: true },
      resource: { type: 'string', multiple: true },
      route: { type: 'string' },
    },
  });
  if (!values.agent) fail('warden token: --agent is required\n\n' + USAGE, 2);
  const ttlMs = parseDuration(values.ttl);
  if (ttlMs === null || ttlMs < 1000) fail(`warden token: invalid --ttl ${values.ttl}`, 2);
  const loaded = loadOrExit(configPath(values));
  if (!loaded.config.identity.dev_issuer) fail('warden token: identity.dev_issuer is not enabled in the config');
  const issuer = await loadDevIssuer({ dataDir: dataDirOf(process.env, loaded.baseDir), publicUrl: publicUrlOf(loaded.config) });
  const claims: Record<string, unknown> = {};
  for (const c of values.claim ?? []) {
    const eq = c.indexOf('=');
    if (eq <= 0) fail(`warden token: --claim must be key=value (got ${c})`, 2);
    claims[c.slice(0, eq)] = c.slice(eq + 1);
  }
  // RFC 8707: a token for an MCP route names that route's resource in aud (--route NAME or --resource URL).
  const resources = [...(values.resource ?? [])];
  if (values.route !== undefined) {
    const route = loaded.config.routes.find((r) => r.name === values.route);
    if (!route) fail(`warden token: no route named ${values.route}`, 2);
    resources.push(mcpResource(publicUrlOf(loaded.config), route!));
  }
  const token = await issuer.issue({
    resource: resources.length > 0 ? resources : undefined,
    agent: values.agent,
    user: values.user ?? null,
    scopes: values.scope ? values.scope.split(/\s+/).filter(Boolean) : [],
    ttlSeconds: Math.round(ttlMs / 1000),
    claims,
  });
  process.stdout.write(token + '\n');
}
