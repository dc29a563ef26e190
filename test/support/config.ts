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

/**
 * The head of a route to an MCP server under test/mcp/fixtures' policy (an
 * agent needs can_call on api:files-mcp): by default `files` on `/mcp/files`
 * to the example MCP server at `${MCP_URL}`. Follow it with the route's own
 * keys (`mcp:`, `assertion:` …), indented four spaces.
 */
export function mcpRouteYaml(options: { name?: string; path?: string; url?: string } = {}): string {
  const { name = 'files', path = '/mcp/files', url = '${MCP_URL}' } = options;
  return [
    `  - name: ${name}`,
    `    match: { path: ${path} }`,
    `    upstream: { url: "${url}" }`,
    '    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:files-mcp" }]',
  ].join('\n');
}
