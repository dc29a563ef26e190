/**
 * gateway.yaml pieces that most tests share, so that each test's config shows
 * only what the test is about. They are YAML text: splice them into the
 * test's own config template, each on lines of its own.
 */

/**
 * `identity:` with the dev issuer, and `authz:` with the embedded engine over
 * `<fixtures>/model.fga` and `<fixtures>/tuples.yaml` (a path relative to the
 * repository root, or absolute). `authz` adds keys under `authz:`, e.g.
 * `{ cache_ttl: 0 }`; `identity` adds lines under `identity:` as they are
 * (indent them two spaces), e.g. a `login:` block.
 */
export function devPolicyYaml(fixtures: string, authz: Record<string, string | number> = {}, identity: readonly string[] = []): string {
  return [
    'identity:',
    '  dev_issuer: true',
    ...identity,
    'authz:',
    '  engine: embedded',
    `  model: ${fixtures}/model.fga`,
    `  tuples: ${fixtures}/tuples.yaml`,
    ...Object.entries(authz).map(([key, value]) => `  ${key}: ${value}`),
  ].join('\n');
}

/** `store:` on the Redis at `${REDIS_URL}` under `${REDIS_PREFIX}` (give both in the env: a test Redis's url and keyPrefix). */
export const REDIS_STORE_YAML = ['store:', '  driver: redis', '  url: ${REDIS_URL}', '  key_prefix: ${REDIS_PREFIX}'].join('\n');

/** The first four lines of a route under `routes:`: name, match, upstream and one authorize check for the agent. */
function routeHead(name: string, match: string, upstream: string, object: string): string {
  return [
    `  - name: ${name}`,
    `    match: { path: ${match} }`,
    `    upstream: { url: ${upstream} }`,
    `    authorize: [{ user: "agent:{agent}", relation: can_call, object: "${object}" }]`,
  ].join('\n');
}

/**
 * The head of a route to an MCP server under test/mcp/fixtures' policy (an
 * agent needs can_call on api:files-mcp): by default `files` on `/mcp/files`
 * to the example MCP server at `${MCP_URL}`. Follow it with the route's own
 * keys (`mcp:`, `assertion:` …), indented four spaces.
 */
export function mcpRouteYaml(options: { name?: string; path?: string; url?: string } = {}): string {
  const { name = 'files', path = '/mcp/files', url = '${MCP_URL}' } = options;
  return routeHead(name, path, `"${url}"`, 'api:files-mcp');
}

/**
 * The head of a route to a test upstream: `name` on `<prefix>/**` (default
 * `/<name>`) to `${UPSTREAM_URL}` with the prefix stripped, for agents with
 * can_call on `object`. Follow it with the route's own keys, indented four
 * spaces.
 */
export function upstreamRouteYaml(options: { name: string; object: string; prefix?: string }): string {
  const { name, object, prefix = `/${name}` } = options;
  return routeHead(name, `"${prefix}/**"`, `"\${UPSTREAM_URL}", strip_prefix: ${prefix}`, object);
}

/** The route `public` on `/public/**` to `upstream` with the prefix stripped, no token needed (a list item under `routes:`). */
export function publicRouteYaml(upstream: string): string {
  return ['  - name: public', '    match: { path: /public/** }', `    upstream: { url: "${upstream}", strip_prefix: /public }`, '    public: true'].join('\n');
}

/**
 * `vault:` with one key (`${VAULT_KEY}`) and the OAuth provider `notes-cloud`
 * at `${OP_URL}` (`/authorize`, `/token`; scope notes.read), as the console's
 * account tests connect it.
 */
export const NOTES_CLOUD_VAULT_YAML = [
  'vault:',
  '  keys: [{ id: k1, key: "${VAULT_KEY}" }]',
  '  providers:',
  '    notes-cloud:',
  '      authorization_url: ${OP_URL}/authorize',
  '      token_url: ${OP_URL}/token',
  '      client_id: warden-test',
  '      client_secret: test-only-client-secret',
  '      scopes: [notes.read]',
].join('\n');
