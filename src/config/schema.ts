/**
 * The gateway.yaml contract as a strict zod schema. Unknown keys are errors.
 * Durations become milliseconds and sizes bytes here, so the rest of Warden
 * never parses units. Cross-field checks live in `validate.ts`.
 */

import { z } from 'zod';
import { parseDuration, parseSize } from './duration.js';

/** A duration in milliseconds ("500ms", "30s", "10m", "1h"; a bare number is seconds). */
const durationMs = () =>
  z
    .union([z.string(), z.number()])
    .meta({ 'x-warden-type': 'duration', pattern: '^\\s*\\d+(\\.\\d+)?(ms|s|m|h|d)\\s*$', minimum: 0 })
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)} (use e.g. 500ms, 30s, 10m, 1h)` });
        return z.NEVER;
      }
      return ms;
    });
/** A duration with a default, written as the user would ("30s"), so the JSON Schema shows it. */
const duration = (fallback: string) => durationMs().prefault(fallback);

const size = (fallback: number) =>
  z
    .union([z.string(), z.number()])
    .meta({ 'x-warden-type': 'size', pattern: '^\\s*\\d+\\s*([bB]|[kKmMgG][iI]?[bB])?\\s*$', minimum: 0 })
    .transform((v, ctx) => {
      const bytes = parseSize(v);
      if (bytes === null) {
        ctx.addIssue({ code: 'custom', message: `invalid size ${JSON.stringify(v)} (bytes, or e.g. 64KiB, 10MB)` });
        return z.NEVER;
      }
      return bytes;
    })
    .prefault(fallback);

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port')
  .meta({ 'x-warden-type': 'host:port' });
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .meta({ 'x-warden-type': 'URL' });
/** https, or http to a loopback host (keys fetched over plain http elsewhere could be swapped in transit). */
function isHttpsOrLoopback(u: string): boolean {
  try {
    const url = new URL(u);
    return url.protocol === 'https:' || /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(url.hostname);
  } catch {
    return false;
  }
}
const stringList = z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

// ---------------------------------------------------------------- server

export const serverSchema = z
  .strictObject({
    listen: hostPort
      .default('127.0.0.1:8080')
      .describe('host:port of the agent-facing listener (WARDEN_LISTEN overrides it)')
      .meta({ examples: ['0.0.0.0:8080'] }),
    public_url: httpUrl
      .optional()
      .describe(
        "Base of every link Warden hands out (approval review, connect URLs, RFC 9728 metadata) and the dev issuer's audience: the URL agents and browsers reach, e.g. the load balancer. Default: http://<listen>",
      )
      .meta({ examples: ['https://warden.example.com'] }),
    admin_listen: hostPort
      .nullable()
      .default('127.0.0.1:9090')
      .describe(
        'host:port of the admin listener (metrics, admin API), never the agent listener; null turns it off (WARDEN_ADMIN_LISTEN overrides it, `off` for null)',
      )
      .meta({ examples: ['127.0.0.1:9090'] }),
    admin_token: z
      .string()
      .min(32, 'must be at least 32 characters (use a random secret from the environment)')
      .optional()
      .describe(
        'Bearer secret for the admin listener (set it from the environment: "${WARDEN_ADMIN_TOKEN}"). With it, every admin endpoint but /metrics requires `Authorization: Bearer <token>`; without it, admin reads stay open and state-changing admin endpoints are refused.',
      ),
    admin_hosts: z
      .array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'must be a host name'))
      .default([])
      .describe(
        'Host names (besides IP literals, localhost and the admin_listen host) the admin listener may be addressed by. Any other Host is refused, which defeats DNS rebinding.',
      ),
    metrics_auth: z
      .boolean()
      .default(false)
      .describe('Require server.admin_token on GET /metrics too (default: /metrics is open to whoever reaches the admin listener).'),
    trusted_proxies: z
      .array(z.string())
      .default([])
      .describe('CIDRs or addresses of proxies whose X-Forwarded-* headers are believed (e.g. the load balancer); from anyone else they are dropped')
      .meta({ examples: [['10.0.0.0/8']] }),
    limits: z
      .strictObject({
        header_bytes: size(16_384)
          .describe('Largest request head; larger gets 431 headers_too_large')
          .meta({ examples: ['32KiB'] }),
        body_bytes: size(10_485_760)
          .describe('Largest request body, declared or streamed; larger gets 413 payload_too_large')
          .meta({ examples: ['1MiB'] }),
        request_timeout: duration('60s')
          .describe('How long the upstream may take to answer (per route: upstream.timeout); then 504 upstream_unavailable')
          .meta({ examples: ['30s'] }),
        /** Time allowed to receive the request headers and body (slow clients). */
        client_timeout: duration('30s')
          .describe('How long a client may take to send its request head and body (slow clients); then 408')
          .meta({ examples: ['10s'] }),
        keep_alive_timeout: duration('5s')
          .refine((ms) => ms >= 1_000, 'must be at least 1s (0 would keep idle connections open forever)')
          .describe(
            "How long an idle keep-alive connection to the agent listener stays open. Behind a load balancer, set it above the balancer's idle timeout (AWS ALB: 60s), or the balancer may send a request on a connection Warden is closing (a 502)",
          )
          .meta({ examples: ['65s'] }),
        upstream_connections: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe(
            'At most this many connections to each upstream origin (per instance); a request beyond them waits for one, within its route timeout (then 504). Default: no limit, one connection per request in flight. A held stream (an MCP GET stream, any SSE answer) keeps its connection while it is open.',
          )
          .meta({ examples: [1024] }),
      })
      .prefault({})
      .describe('Request size and time limits')
      .meta({ examples: [{ body_bytes: '1MiB', request_timeout: '30s' }] }),
    watch: z
      .boolean()
      .default(false)
      .describe('Reload when gateway.yaml or the policy files change (SIGHUP always reloads)')
      .meta({ examples: [true] }),
    /** node:cluster workers sharing one port; 1 = no cluster. */
    workers: z
      .union([z.number().int().min(1).max(64), z.literal('auto')])
      .default(1)
      .describe('node:cluster workers sharing the port; auto = one per core. More than 1 needs store.driver: redis')
      .meta({ examples: ['auto'] }),
    shutdown_timeout: duration('10s')
      .describe('How long SIGTERM waits for in-flight requests (held approvals, streams) before exiting')
      .meta({ examples: ['30s'] }),
  })
  .prefault({});

// ---------------------------------------------------------------- store

export const storeSchema = z
  .strictObject({
    driver: z
      .enum(['memory', 'redis'])
      .default('memory')
      .describe('memory: in-process, one instance, lost on restart. redis: shared by every instance (vault, approvals, locks, pub/sub)')
      .meta({ examples: ['redis'] }),
    url: z
      .string()
      .optional()
      .describe(
        'redis://[user:password@]host:port[/db], or rediss://… for TLS. With `sentinels`, host:port is ignored (the sentinels name the master); scheme, credentials and db still apply.',
      )
      .meta({ examples: ['redis://:${REDIS_PASSWORD}@10.0.0.5:6379/0'] }),
    key_prefix: z
      .string()
      .default('warden:')
      .describe('Prefix of every key and pub/sub channel, so several deployments can share one Redis')
      .meta({ examples: ['warden-prod:'] }),
    /** Each store call fails closed after this long. */
    timeout: duration('2s')
      .describe('Every store call fails closed (503 store_unavailable) after this long')
      .meta({ examples: ['500ms'] }),
    limit_blocks: z
      .int()
      .min(0)
      .max(1000)
      .default(32)
      .describe(
        'Redis only: far from a rate limit or budget, an instance leases a block of it in one call and decides the next requests locally. A block is granted only while this many more blocks of its size still fit (instances that may hold one at once); near the limit every decision goes to Redis. 0: no blocks, one decision per request in Redis.',
      )
      .meta({ examples: [0, 64] }),
    sentinels: z
      .array(hostPort)
      .min(1)
      .optional()
      .describe('Redis Sentinel addresses (host:port). Warden asks them for the current master and follows failovers.'),
    sentinel_master: z.string().min(1).optional().describe('Name of the master set the sentinels monitor (only with `sentinels`; default mymaster).'),
    sentinel_password: z.string().optional().describe('Password of the sentinels themselves, when they require one (only with `sentinels`).'),
    tls: z
      .strictObject({
        ca: z.string().min(1).optional().describe('PEM file of the CA that signed the Redis server certificates (default: the system CAs).'),
        cert: z.string().min(1).optional().describe('PEM client certificate file, for Redis servers that require client certificates (tls-auth-clients).'),
        key: z.string().min(1).optional().describe('PEM private key file of `cert`.'),
        servername: z.string().min(1).optional().describe('Name to verify in the server certificate, when it differs from the host connected to.'),
      })
      .optional()
      .describe('TLS for the Redis connections (needs a rediss:// url). With `sentinels`, the sentinels are reached over TLS too.'),
  })
  .prefault({});

// ---------------------------------------------------------------- identity

const algorithm = z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

export const issuerSchema = z.strictObject({
  issuer: z
    .string()
    .min(1)
    .describe("Issuer identifier, compared exactly with the token's iss (no trailing-slash or case folding)")
    .meta({ examples: ['https://idp.example.com/'] }),
  audience: stringList.describe("Accepted aud value(s); the token's aud must contain one").meta({ examples: ['https://warden.example.com'] }),
  jwks_uri: httpUrl
    .optional()
    .describe('Where the signing keys are; default: OIDC discovery of the issuer (then RFC 8414)')
    .meta({ examples: ['https://idp.example.com/.well-known/jwks.json'] }),
  algorithms: z
    .array(algorithm)
    .min(1)
    .default(['RS256', 'ES256'])
    .describe('Accepted JWS algorithms; none and HS* are impossible')
    .meta({ examples: [['RS256']] }),
  agent_claim: z
    .string()
    .optional()
    .describe('Claim naming the agent (OAuth client); default azp, then client_id')
    .meta({ examples: ['client_id'] }),
  user_claim: z
    .string()
    .default('sub')
    .describe('Claim naming the user the agent acts for')
    .meta({ examples: ['email'] }),
  user_prefix: z
    .string()
    .max(64)
    .regex(/^[^#:*\s]*$/, 'must not contain #, :, * or whitespace (it becomes part of OpenFGA user ids)')
    .optional()
    .describe(
      'Prepended to this issuer’s user ids, so users of several issuers stay apart (e.g. "partner/": user:partner/alice). With two or more issuers, set it on each ("" where they share one directory on purpose)',
    )
    .meta({ examples: ['partner/'] }),
  /** Accepted JOSE `typ` values; RFC 9068 access tokens by default. */
  token_types: z
    .array(z.string())
    .default(['at+jwt', 'application/at+jwt'])
    .describe('Accepted JOSE typ values (case-insensitive, application/ prefix optional)')
    .meta({ examples: [['at+jwt']] }),
  /** Also accept tokens without `typ` (many IdPs omit it); ID tokens are still refused. */
  allow_untyped: z
    .boolean()
    .default(false)
    .describe('Also accept tokens without typ or with typ: JWT (Keycloak, Entra ID, Auth0); ID tokens are still refused')
    .meta({ examples: [true] }),
  audience_binding: z
    .enum(['resource', 'gateway'])
    .default('resource')
    .describe(
      "On MCP routes, `resource` (default, RFC 8707) accepts a token only if its aud contains the route's RFC 9728 resource URL (list those URLs in `audience`); `gateway` accepts this issuer's tokens on every MCP route with any audience from `audience` (one gateway-wide audience; a token for one MCP server then works on all).",
    ),
});

/** `identity.login`: Warden as an OpenID Connect relying party for people in a browser (src/identity/login/). */
export const loginSchema = z
  .strictObject({
    issuer: httpUrl.describe('The user IdP (OIDC discovery at <issuer>/.well-known/openid-configuration); ID tokens must carry exactly this iss'),
    client_id: z.string().min(1).describe("Warden's client id at the IdP (its redirect URI is <public_url>/.warden/login/callback)"),
    client_secret: z.string().optional().describe('Client secret (client_secret_basic); omit for a public client, PKCE is always used'),
    scopes: z.array(z.string()).default(['openid', 'profile', 'email']).describe('Scopes asked at sign-in; must include openid'),
    user_claim: z.string().default('sub').describe('ID token claim that names the person; must match the user id agents act for (user_claim of agent tokens)'),
    algorithms: z.array(algorithm).min(1).default(['RS256', 'PS256', 'ES256', 'EdDSA']).describe('Accepted ID token signature algorithms (never none or HS*)'),
    timeout: duration('10s').describe('Timeout of each call to the IdP (discovery, JWKS, token endpoint)'),
    session: z
      .strictObject({
        secret: z.string().describe('At least 32 random characters; encrypts (AES-256-GCM) the session and sign-in cookies and keys CSRF tokens'),
        ttl: duration('12h').describe('Lifetime of a browser session; no renewal past it'),
      })
      .describe('The browser session Warden keeps after sign-in'),
  })
  .describe('Sign-in for people (approvers, users linking accounts): authorization code + PKCE + state + nonce against this IdP');

/** One assertion signing key; its private half comes from the environment. */
export const assertionKeySchema = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - only (1-64)')
    .describe('Key id: the `kid` of assertions signed with this key and of its JWKS entry.'),
  private_key: z.string().min(1).describe('The private key: PEM (PKCS#8, or SEC1 for EC) or a private JWK as JSON; usually "${WARDEN_ASSERTION_KEY}".'),
  alg: z.string().optional().describe('ES256 (P-256 key, the default) or EdDSA (Ed25519 key); inferred from the key when omitted. HS* is refused.'),
  status: z
    .enum(['active', 'next', 'retiring'])
    .default('active')
    .describe('active: signs and is published (exactly one); next: published before it signs; retiring: published, no longer signs.'),
});

/** Signed identity assertions Warden sends to upstreams (per route `assertion:`). */
export const assertionSettingsSchema = z
  .strictObject({
    keys: z
      .array(assertionKeySchema)
      .default([])
      .describe('Signing keys. Empty: in development a generated ES256 key kept in the data dir; refused when NODE_ENV=production.'),
    issuer: z.string().min(1).optional().describe('The `iss` of assertions; default server.public_url.'),
    ttl: duration('60s').describe('Lifetime of an assertion (`exp - iat`), at most 60s.'),
    jti: z
      .enum(['per_assertion', 'per_request'])
      .default('per_assertion')
      .describe(
        'per_assertion: one signed assertion is reused for the same principal, route and approval for part of its lifetime; per_request: a fresh signature (and jti) on every request.',
      ),
  })
  .prefault({});

/** Per route or MCP tool: `true`, or the header, audience and extra claims. */
export const routeAssertionSchema = z
  .union([
    z.boolean(),
    z.strictObject({
      header: z
        .string()
        .regex(/^[A-Za-z0-9-]+$/, 'a header name')
        .default('Warden-Identity')
        .describe('Header that carries the assertion; `Authorization` sends `Bearer <assertion>` (only on routes with no other credentials).'),
      audience: z.string().min(1).optional().describe("The `aud` claim; default the upstream's origin."),
      claims: z
        .union([z.array(z.string().min(1)), z.record(z.string().min(1), z.string().min(1))])
        .optional()
        .describe(
          'Claims copied from the incoming token: a list of names, or a map of assertion claim → token claim. Registered and Warden claims cannot be mapped.',
        ),
      authz: z.boolean().default(false).describe('Add `authz`: the checks that allowed the request.'),
    }),
  ])
  .describe('Send a signed identity assertion (JWT) to the upstream: `true` for the defaults, `false` to turn it off (e.g. for one MCP tool).');

export const identitySchema = z
  .strictObject({
    issuers: z
      .array(issuerSchema)
      .default([])
      .describe('Identity providers whose access tokens agents present')
      .meta({ examples: [[{ issuer: 'https://idp.example.com/', audience: 'https://warden.example.com' }]] }),
    login: loginSchema.optional(),
    dev_issuer: z
      .boolean()
      .default(false)
      .describe("Trust Warden's local development issuer (`warden token`); refused when NODE_ENV=production")
      .meta({ examples: [true] }),
    clock_tolerance: duration('30s')
      .describe('Clock skew allowed on exp, nbf and iat')
      .meta({ examples: ['10s'] }),
    /** Verified-token cache entries; 0 disables the cache. */
    token_cache_size: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('Verified-token cache entries (LRU, never past exp); 0 disables it')
      .meta({ examples: [50000] }),
    assertion: assertionSettingsSchema.describe(
      'Signed identity assertions Warden sends to upstreams on routes with `assertion:` (docs/identity-assertion.md)',
    ),
  })
  .prefault({});

// ---------------------------------------------------------------- authz

/** user, relation, object: the same three keys in stored tuples and in route checks. */
const tupleKeyFields = {
  user: z
    .string()
    .min(1)
    .describe('The user of the tuple or check: type:id, type:id#relation or type:* (templates allowed in checks)')
    .meta({ examples: ['user:{user}'] }),
  relation: z
    .string()
    .min(1)
    .describe('The relation (never templated; checked against the model at load)')
    .meta({ examples: ['can_read'] }),
  object: z
    .string()
    .min(1)
    .describe('The object: type:id (templates allowed in checks)')
    .meta({ examples: ['doc:{path.doc}'] }),
};

export const tupleSchema = z.strictObject({
  ...tupleKeyFields,
  condition: z
    .strictObject({
      name: z.string().min(1).describe('Condition name in the model'),
      context: z.record(z.string(), z.unknown()).optional().describe('Parameters stored with the tuple'),
    })
    .optional()
    .describe('An OpenFGA condition on the tuple: its name and the parameters stored with it'),
});

export const checkSchema = z
  .strictObject({
    ...tupleKeyFields,
    context: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('Request context for OpenFGA conditions; values are literals or templates (a value that is exactly one template keeps its JSON type)')
      .meta({ examples: [{ amount: '{body.amount}' }] }),
    contextual_tuples: z
      .array(
        z.strictObject({
          user: z.string().describe('type:id, type:id#relation or type:*'),
          relation: z.string().describe('The relation'),
          object: z.string().describe('type:id'),
        }),
      )
      .optional()
      .describe('Tuples sent with the check only (templated), at most 100')
      .meta({ examples: [[{ user: 'user:{user}', relation: 'member', object: 'team:{claims.team}' }]] }),
  })
  .meta({
    id: 'check',
    description:
      'One OpenFGA check: does user have relation to object? Ids may use templates ({agent}, {user}, {path.x}, …); a value that would change an id denies the request',
  });

/** `[checks]` (all must allow), `{ all: [...] }` or `{ any: [...] }`. */
export const authorizeSchema = z
  .union([
    z.array(checkSchema).transform((checks) => ({ mode: 'all' as const, checks })),
    z.strictObject({ all: z.array(checkSchema).describe('Every check must allow') }).transform((v) => ({ mode: 'all' as const, checks: v.all })),
    z.strictObject({ any: z.array(checkSchema).min(1).describe('One allowing check is enough') }).transform((v) => ({ mode: 'any' as const, checks: v.any })),
  ])
  .meta({
    id: 'authorize',
    description: 'A list of checks that must all allow (also written {all: [...]}), or {any: [...]}; [] on purpose allows any authenticated caller',
  });

export const authzSchema = z
  .strictObject({
    engine: z
      .enum(['embedded', 'openfga'])
      .default('embedded')
      .describe('embedded: an in-process evaluator of the model in policies/ (OpenFGA semantics). openfga: a real OpenFGA server')
      .meta({ examples: ['openfga'] }),
    model: z
      .string()
      .default('policies/model.fga')
      .describe('Authorization model: FGA DSL, a modular fga.mod, or JSON; relative to gateway.yaml. With openfga it is what `warden fga push` writes')
      .meta({ examples: ['policies/fga.mod'] }),
    tuples: z
      .string()
      .optional()
      .describe(
        'Relationship tuples (YAML list of {user, relation, object, condition?}, or JSON Lines of the same objects when the name ends in .jsonl/.ndjson); relative to gateway.yaml',
      )
      .meta({ examples: ['policies/tuples.yaml'] }),
    invalid_tuples: z
      .enum(['error', 'ignore'])
      .default('error')
      .describe(
        'Embedded engine: a tuple the model does not allow (e.g. written under an older model) is a config error (error), or is loaded and ignored at check time with a warning, as the OpenFGA server does (ignore)',
      )
      .meta({ examples: ['ignore'] }),
    openfga: z
      .strictObject({
        api_url: httpUrl.describe("Base URL of OpenFGA's HTTP API (not the gRPC port)").meta({ examples: ['http://openfga:8080'] }),
        store_id: z
          .string()
          .optional()
          .describe('The store to ask; required to serve (`warden fga push` creates one and prints its id)')
          .meta({ examples: ['${FGA_STORE_ID}'] }),
        model_id: z
          .string()
          .optional()
          .describe("The authorization model; default the store's latest, read once at start. Pin it in production")
          .meta({ examples: ['${FGA_MODEL_ID}'] }),
        api_token: z
          .string()
          .optional()
          .describe('OpenFGA preshared key, sent as a bearer token (never logged)')
          .meta({ examples: ['${FGA_API_TOKEN}'] }),
        timeout: duration('2s')
          .describe('Deadline of one check, batch check or list call, retries included')
          .meta({ examples: ['500ms'] }),
        retries: z
          .number()
          .int()
          .min(0)
          .max(5)
          .default(1)
          .describe('Retries of network errors, 429 and 5xx (never 4xx), inside the deadline')
          .meta({ examples: [2] }),
      })
      .optional()
      .describe('The OpenFGA server; required with engine: openfga')
      .meta({ examples: [{ api_url: 'http://openfga:8080', store_id: '${FGA_STORE_ID}', model_id: '${FGA_MODEL_ID}' }] }),
    cache_ttl: duration('5s')
      .describe('How long an authorization answer is reused (decision cache); 0 disables it')
      .meta({ examples: [0] }),
    cache_size: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('Most cached authorization answers (LRU); 0 disables the cache')
      .meta({ examples: [100000] }),
  })
  .prefault({});

// ---------------------------------------------------------------- vault

export const providerSchema = z.strictObject({
  authorization_url: httpUrl
    .optional()
    .describe("The provider's OAuth authorization endpoint (or use issuer)")
    .meta({ examples: ['https://github.com/login/oauth/authorize'] }),
  token_url: httpUrl
    .optional()
    .describe("The provider's token endpoint (or use issuer)")
    .meta({ examples: ['https://github.com/login/oauth/access_token'] }),
  issuer: httpUrl
    .optional()
    .describe('OIDC discovery instead of the two URLs; an RFC 9207 iss in the callback must name it')
    .meta({ examples: ['https://accounts.google.com'] }),
  revocation_url: httpUrl
    .optional()
    .describe('RFC 7009 revocation endpoint, called when a user revokes a connection')
    .meta({ examples: ['https://oauth2.googleapis.com/revoke'] }),
  client_id: z
    .string()
    .min(1)
    .describe("Warden's OAuth client id at the provider")
    .meta({ examples: ['${GITHUB_CLIENT_ID}'] }),
  client_secret: z
    .string()
    .optional()
    .describe("Warden's OAuth client secret at the provider")
    .meta({ examples: ['${GITHUB_CLIENT_SECRET}'] }),
  /** Token-endpoint client authentication; default client_secret_basic with a secret, else none. */
  client_auth: z
    .enum(['client_secret_basic', 'client_secret_post', 'none'])
    .optional()
    .describe('Token endpoint client authentication; default client_secret_basic with a secret, none without')
    .meta({ examples: ['client_secret_post'] }),
  scopes: z
    .array(z.string())
    .default([])
    .describe('Scopes every connection must have; a grant with fewer is refused')
    .meta({ examples: [['repo']] }),
  /** Extra authorization-request parameters (e.g. `access_type: offline`). */
  params: z
    .record(z.string(), z.string())
    .default({})
    .describe('Extra authorization request parameters (e.g. access_type: offline)')
    .meta({ examples: [{ access_type: 'offline', prompt: 'consent' }] }),
  /** Refresh when the access token expires within this window. */
  refresh_before: duration('60s')
    .describe('Refresh an access token that expires within this window')
    .meta({ examples: ['5m'] }),
  timeout: duration('10s')
    .describe('Timeout of every call to the provider (discovery, token, revocation)')
    .meta({ examples: ['5s'] }),
});

export const vaultSchema = z
  .strictObject({
    keys: z
      .array(
        z.strictObject({
          id: z
            .string()
            .regex(/^[A-Za-z0-9_.-]{1,32}$/)
            .describe('Key id stored with each record (letters, digits, _ . -)')
            .meta({ examples: ['k2'] }),
          key: z.string().describe('Base64 of 32 random bytes; from the environment, e.g. "${WARDEN_VAULT_KEY}"'),
        }),
      )
      .default([])
      .describe('AES-256 keys as {id, key} (base64 of 32 bytes, `warden keygen`); the first encrypts, all decrypt')
      .meta({
        examples: [
          [
            { id: 'k2', key: '${WARDEN_VAULT_KEY_2}' },
            { id: 'k1', key: '${WARDEN_VAULT_KEY_1}' },
          ],
        ],
      }),
    providers: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), providerSchema)
      .default({})
      .describe('OAuth providers users link accounts at, by name (used in credentials: { vault: NAME })')
      .meta({
        examples: [
          {
            github: {
              authorization_url: 'https://github.com/login/oauth/authorize',
              token_url: 'https://github.com/login/oauth/access_token',
              client_id: '${GITHUB_CLIENT_ID}',
              client_secret: '${GITHUB_CLIENT_SECRET}',
              scopes: ['repo'],
            },
          },
        ],
      }),
    connect_ttl: duration('10m')
      .describe('Lifetime of a connect link and of a linking flow')
      .meta({ examples: ['30m'] }),
    /** In-process cache of decrypted connections on the request path; 0 disables. */
    cache_ttl: duration('1s')
      .describe('In-process cache of decrypted connections on the request path (invalidated across instances); 0 disables it')
      .meta({ examples: [0] }),
    /** Lease of the cross-instance refresh lock; renewed while a refresh is in flight. */
    refresh_lease: duration('5s')
      .describe('Lease of the cross-instance refresh lock, renewed while a refresh runs')
      .meta({ examples: ['10s'] }),
    exchange_clients: z
      .array(
        z
          .strictObject({
            client_id: z.string().min(1).max(256).describe('The client; it may only exchange subject tokens whose agent (client_id/azp) is this id.'),
            client_secret: z
              .string()
              .min(32, 'must be at least 32 characters (a random secret from the environment)')
              .optional()
              .describe('Shared secret for client_secret_basic or client_secret_post (set it from the environment).'),
            jwks_uri: httpUrl
              .refine(isHttpsOrLoopback, 'must be https (plain http only on a loopback host): the keys decide who may pull user tokens')
              .optional()
              .describe('Where the client publishes its public keys, for private_key_jwt (RFC 7523) client authentication.'),
          })
          .refine((c) => (c.client_secret === undefined) !== (c.jwks_uri === undefined), 'give exactly one of client_secret or jwks_uri'),
      )
      .default([])
      .describe(
        'Clients allowed to call POST /.warden/oauth/token (RFC 8693 token exchange). Each authenticates with client_secret_basic, client_secret_post or private_key_jwt; none registered means every exchange is refused with invalid_client.',
      ),
  })
  .prefault({});

// ---------------------------------------------------------------- approvals

export const approvalRuleSchema = z
  .strictObject({
    when: z
      .string()
      .optional()
      .describe('CEL condition over request, body, path, claims, agent, user, tool, args; default: always. A run-time error counts as a match')
      .meta({ examples: ['request.method == "DELETE"'] }),
    message: z
      .string()
      .optional()
      .describe('What the approver reads; templates are rendered from the stored request')
      .meta({ examples: ['Delete {path.owner}/{path.repo}'] }),
    /** Who may decide: default the user the agent acts for. */
    approvers: z
      .strictObject({
        relation: z.string().describe('Relation the approver must have'),
        object: z.string().describe('Object, a template over the stored request'),
      })
      .optional()
      .describe('Also require user:<user> <relation> <object> in OpenFGA when approving (object is a template); default: the user the agent acts for')
      .meta({ examples: [{ relation: 'approver', object: 'account:{path.account}' }] }),
    ttl: durationMs()
      .optional()
      .describe('Overrides approvals.ttl for this rule')
      .meta({ examples: ['30m'] }),
  })
  .meta({ id: 'approval_rule', description: 'When to hold a request for a human, and what the approver reads' });

const approvalSchemaOneOrMany = z
  .union([approvalRuleSchema, z.array(approvalRuleSchema)])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .meta({ id: 'approval', description: 'One approval rule, or a list of them (the first whose when holds applies)' });

export const notifierSchema = z
  .union([
    z.strictObject({
      webhook: z
        .strictObject({
          url: httpUrl.describe('Where the signed JSON is POSTed').meta({ examples: ['https://hooks.example.com/warden'] }),
          secret: z
            .string()
            .min(16)
            .describe('HMAC-SHA256 key of the X-Warden-Signature header (at least 16 characters)')
            .meta({ examples: ['${APPROVAL_WEBHOOK_SECRET}'] }),
          timeout: duration('5s')
            .describe('Timeout of one delivery')
            .meta({ examples: ['3s'] }),
        })
        .describe('POST a signed JSON notice (approval.requested) to your endpoint'),
    }),
    z.strictObject({
      email: z
        .strictObject({
          smtp: z
            .string()
            .regex(/^smtps?:\/\//)
            .describe('smtp:// or smtps:// URL of the mail server, credentials in the URL if needed')
            .meta({ examples: ['smtps://user:${SMTP_PASSWORD}@smtp.example.com:465'] }),
          from: z
            .string()
            .min(3)
            .describe('Sender address')
            .meta({ examples: ['warden@example.com'] }),
          to: z
            .string()
            .min(1)
            .describe('Recipient: a fixed address or a template over the user’s identity ({user}, {claims.*}; e.g. {claims.email})')
            .meta({ examples: ['{claims.email}'] }),
          subject: z
            .string()
            .optional()
            .describe('Subject template')
            .meta({ examples: ['Approval needed: {agent} wants to {request.method} {request.path}'] }),
        })
        .describe('Mail the review link to the user'),
    }),
    z.strictObject({ log: z.literal(true).describe('A log line per approval request (never the review link)') }),
    /** Development only: print review links to the terminal. */
    z.strictObject({ console: z.literal(true).describe('Development only: print review links to the terminal; refused when NODE_ENV=production') }),
  ])
  .meta({ id: 'notifier', description: 'One notification channel: exactly one of webhook, email, log, console' });

/** The browsers' push services (RFC 8030) a subscription may point at unless `endpoint_hosts` says otherwise. */
export const DEFAULT_PUSH_HOSTS = ['fcm.googleapis.com', 'updates.push.services.mozilla.com', '*.push.apple.com', '*.notify.windows.com'] as const;

const base64url = /^[A-Za-z0-9_-]+$/;

export const pushSchema = z.strictObject({
  vapid_public_key: z
    .string()
    .regex(base64url, 'must be base64url (no padding)')
    .refine((k) => Buffer.from(k, 'base64url').length === 65, 'must be an uncompressed P-256 public key (65 bytes, base64url)')
    .describe('VAPID public key (RFC 8292 application server key): uncompressed P-256 point, base64url; `warden keygen --vapid` makes a pair')
    .meta({ examples: ['${WARDEN_VAPID_PUBLIC_KEY}'] }),
  vapid_private_key: z
    .string()
    .regex(base64url, 'must be base64url (no padding)')
    .refine((k) => Buffer.from(k, 'base64url').length === 32, 'must be a P-256 private key (32 bytes, base64url)')
    .describe('VAPID private key (32 bytes, base64url). A secret: set it from the environment, never in the file')
    .meta({ examples: ['${WARDEN_VAPID_PRIVATE_KEY}'] }),
  subject: z
    .string()
    .regex(/^(mailto:[^\s@]+@[^\s@]+|https:\/\/[^\s]+)$/, 'must be a mailto: address or an https: URL')
    .describe('VAPID `sub`: how a push service reaches the operator (mailto: or https:)')
    .meta({ examples: ['mailto:platform@example.com'] }),
  timeout: duration('10s')
    .describe('Timeout of one push request (DNS, connect, send and answer)')
    .meta({ examples: ['5s'] }),
  endpoint_hosts: z
    .array(z.string().regex(/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, 'a lower-case host name, optionally starting with *.'))
    .min(1)
    .default([...DEFAULT_PUSH_HOSTS])
    .describe(
      'Hosts a subscription endpoint may name (`*.example.com`: any subdomain). Endpoints are https on port 443 only, and every address the host resolves to must be public; default: the push services of Chrome, Firefox, Safari and Edge',
    )
    .meta({ examples: [['fcm.googleapis.com', 'updates.push.services.mozilla.com']] }),
  allow_loopback: z
    .boolean()
    .default(false)
    .describe('Tests only: also accept http(s) endpoints on 127.0.0.1 or [::1], any port (a local push service); refused when NODE_ENV=production'),
});

export const approvalsSchema = z
  .strictObject({
    ttl: duration('10m')
      .describe('A pending approval expires after this; an approved one must be used within it')
      .meta({ examples: ['30m'] }),
    hold: duration('25s')
      .describe("How long the agent's request is held before Warden answers 202 approval_pending")
      .meta({ examples: ['10s'] }),
    notify: z
      .array(notifierSchema)
      .default([])
      .describe('Channels told about each new approval: webhook, email, log, console')
      .meta({ examples: [[{ webhook: { url: '${APPROVAL_WEBHOOK_URL}', secret: '${APPROVAL_WEBHOOK_SECRET}' } }, { log: true }]] }),
    max_pending_per_user: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe('Pending approvals per user and agent; more get 429 rate_limited')
      .meta({ examples: [5] }),
    max_grant: duration('8h')
      .describe('Longest "allow this again for …" time box an approver may grant')
      .meta({ examples: ['1h'] }),
    review_auth: z
      .enum(['link', 'login', 'link+login'])
      .optional()
      .describe(
        'What lets someone decide on the review page: the secret link, a signed-in approver, or both. Default link+login when identity.login is set, else link (in production, link must be set explicitly)',
      ),
    ciba: z
      .strictObject({
        issuer: httpUrl.describe("The OpenID provider's issuer (discovery finds its backchannel endpoint)").meta({ examples: ['https://idp.example.com/'] }),
        client_id: z
          .string()
          .describe("Warden's client id at the CIBA provider")
          .meta({ examples: ['warden'] }),
        client_secret: z
          .string()
          .describe("Warden's client secret at the CIBA provider (client_secret_basic)")
          .meta({ examples: ['${CIBA_CLIENT_SECRET}'] }),
        scope: z
          .string()
          .default('openid')
          .describe('Scope of the backchannel authentication request')
          .meta({ examples: ['openid'] }),
        login_hint: z
          .string()
          .default('{user}')
          .describe('Template naming the user to the provider, over the user’s identity ({user}, {claims.*})')
          .meta({ examples: ['{claims.email}'] }),
        user_claim: z
          .string()
          .default('sub')
          .describe('ID token claim naming the person who approved at the provider: the request’s user, or one who holds the rule’s approvers relation')
          .meta({ examples: ['email'] }),
        requested_expiry: durationMs()
          .optional()
          .describe("How long the provider may take; default the approval's ttl")
          .meta({ examples: ['5m'] }),
        timeout: duration('10s').describe('Timeout of each HTTP call to the provider'),
      })
      .optional()
      .describe('Ask an external OpenID CIBA provider (poll mode) to notify and decide')
      .meta({ examples: [{ issuer: 'https://idp.example.com/', client_id: 'warden', client_secret: '${CIBA_CLIENT_SECRET}' }] }),
    push: pushSchema
      .optional()
      .describe(
        'Web Push (RFC 8030, RFC 8291 aes128gcm, VAPID RFC 8292) to the browsers people turn it on in from the console: each new approval they may decide is pushed with the rule message and a console link, never the request body. Needs sign-in (identity.login or the dev issuer)',
      )
      .meta({
        examples: [
          { vapid_public_key: '${WARDEN_VAPID_PUBLIC_KEY}', vapid_private_key: '${WARDEN_VAPID_PRIVATE_KEY}', subject: 'mailto:platform@example.com' },
        ],
      }),
  })
  .prefault({});

// ---------------------------------------------------------------- routes

export const credentialsSchema = z
  .union([
    z.literal('none').transform(() => ({ kind: 'none' as const })),
    z
      .strictObject({
        vault: z
          .string()
          .describe("The user's vaulted token of this provider (vault.providers)")
          .meta({ examples: ['github'] }),
      })
      .transform((v) => ({ kind: 'vault' as const, provider: v.vault })),
    z
      .strictObject({
        header: z
          .strictObject({
            name: z
              .string()
              .regex(/^[A-Za-z0-9-]+$/)
              .describe('Header name')
              .meta({ examples: ['X-Api-Key'] }),
            value: z
              .string()
              .describe('Header value, usually "${API_KEY}"')
              .meta({ examples: ['${API_KEY}'] }),
          })
          .describe('A static header (e.g. an API key)'),
      })
      .transform((v) => ({ kind: 'header' as const, name: v.header.name, value: v.header.value })),
    z
      .strictObject({
        token_exchange: z
          .strictObject({
            token_url: httpUrl.describe("Your authorization server's RFC 8693 token endpoint").meta({ examples: ['https://idp.example.com/oauth/token'] }),
            audience: z
              .string()
              .optional()
              .describe('audience parameter of the exchange')
              .meta({ examples: ['https://billing.internal'] }),
            resource: z.string().optional().describe('resource parameter of the exchange'),
            scope: z
              .string()
              .optional()
              .describe('scope parameter of the exchange')
              .meta({ examples: ['invoices.read'] }),
            client_id: z
              .string()
              .describe("Warden's client id at the authorization server")
              .meta({ examples: ['warden'] }),
            client_secret: z
              .string()
              .optional()
              .describe("Warden's client secret (client_secret_basic); without it only client_id is sent")
              .meta({ examples: ['${WARDEN_EXCHANGE_SECRET}'] }),
            /** Timeout of the exchange request (the result is cached until near expiry). */
            timeout: durationMs()
              .optional()
              .describe('Timeout of the exchange request (the result is cached until near expiry)')
              .meta({ examples: ['5s'] }),
          })
          .describe("Exchange the agent's token for one your authorization server issues (RFC 8693)"),
      })
      .transform((v) => ({ kind: 'token_exchange' as const, ...v.token_exchange })),
  ])
  .meta({ id: 'credentials', description: "What Warden sends upstream instead of the agent's token: none, {vault}, {header} or {token_exchange}" });

// ---------------------------------------------------------------- limits

export const rateLimitSchema = z
  .strictObject({
    key: z
      .string()
      .min(1)
      .default('{agent}:{user}')
      .describe('Template naming whose requests share the limit (default "{agent}:{user}"); each route or tool counts its own keys'),
    requests: z.number().int().min(1).describe('Requests allowed per `per` (sustained rate)'),
    per: durationMs().describe('The window of `requests`, e.g. 1m'),
    burst: z.number().int().min(1).optional().describe('Requests allowed at once (default: `requests`)'),
  })
  .describe('GCRA rate limit kept in the store, exact across instances; over it: 429 rate_limited');

export const budgetSchema = z
  .strictObject({
    key: z
      .string()
      .min(1)
      .default('{agent}:{user}')
      .describe('Template naming whose spend shares the budget (default "{agent}:{user}"); each route or tool keeps its own'),
    amount: z
      .union([z.number().finite().min(0), z.string().min(1)])
      .describe('What one request spends: a constant (1 = calls), or exactly one template such as "{body.amount}" / "{args.amount}" naming a JSON number'),
    max: z.number().finite().min(0).describe('Most that may be spent in any window of `per` (sliding)'),
    per: durationMs().describe('The sliding window, e.g. 24h'),
    over: z
      .enum(['approve', 'deny'])
      .default('deny')
      .describe("A request that would pass `max`: held for the user's approval (approve) or refused with 403 budget_exceeded (deny, default)"),
    lease: durationMs()
      .optional()
      .describe(
        'How long a reservation counts before the request is answered (default: approvals.hold + upstream timeout + 10s); a reservation of a crashed instance lapses after it',
      ),
  })
  .describe('Spend budget: amounts reserved atomically before forwarding, committed on success, released when the upstream fails');

const methods = z.array(z.string().regex(/^[A-Z]+$/, 'methods are upper case tokens'));

export const mcpToolSchema = z
  .strictObject({
    authorize: authorizeSchema.optional().describe("Checks for calls of this tool, on top of the route's"),
    approval: approvalSchemaOneOrMany.optional().describe('Approval rule(s) for calls of this tool'),
    credentials: credentialsSchema.optional().describe("Upstream credentials for calls of this tool (default: the route's)"),
    rate_limit: rateLimitSchema.optional(),
    budget: budgetSchema.optional(),
    assertion: routeAssertionSchema.optional(),
  })
  .meta({ id: 'mcp_tool', description: "Rules for one MCP tool, on top of the route's" });

export const mcpSchema = z.strictObject({
  other_tools: z
    .enum(['deny', 'allow'])
    .default('deny')
    .describe('Tools without a rule in tools: deny (hidden and refused) or allow')
    .meta({ examples: ['allow'] }),
  tools: z
    .record(z.string(), mcpToolSchema)
    .default({})
    .describe('Per-tool rules by tool name')
    .meta({ examples: [{ read_file: { authorize: [{ user: 'user:{user}', relation: 'can_read', object: 'file:{args.path}' }] } }] }),
  /** Record tool definitions and hide tools whose definition changed (tool pinning). */
  pin_tools: z
    .boolean()
    .default(true)
    .describe("Pin each tool's definition; a changed tool is hidden and refused until an operator accepts it")
    .meta({ examples: [false] }),
  /** How long an idle `Mcp-Session-Id` stays bound to the principal that created it. */
  session_ttl: duration('24h')
    .describe('How long an idle Mcp-Session-Id stays bound to the agent and user that created it')
    .meta({ examples: ['1h'] }),
  /** Keep-alive comments on quiet SSE answers (GET streams and streamed POST answers); 0 turns them off. */
  keepalive: duration('25s')
    .describe(
      'An SSE answer (GET stream or streamed tool call) that sent the agent nothing for this long gets a keep-alive comment line, so proxies and load balancers in front of Warden keep it open; 0s: none',
    )
    .meta({ examples: ['15s'] }),
  /** How long a GET stream's upstream may stay silent once open (instead of the route's timeout). */
  stream_idle_timeout: duration('1h')
    .refine((ms) => ms >= 1_000, 'stream_idle_timeout must be at least 1s')
    .describe(
      "How long the upstream may stay silent on an open GET stream (the server's channel to the agent) before Warden ends it cleanly (clients reconnect); the route's timeout still bounds the wait for the stream to open",
    )
    .meta({ examples: ['10m'] }),
});

export const routeSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
    .describe('Unique route name (letters, digits, _ . -), used in logs, metrics and approvals')
    .meta({ examples: ['github'] }),
  match: z
    .strictObject({
      path: z
        .string()
        .startsWith('/')
        .describe('Path pattern on the canonical path: :name one segment, * one segment, ** the rest')
        .meta({ examples: ['/github/repos/:owner/:repo/**'] }),
      methods: methods
        .optional()
        .describe('HTTP methods (upper case); default any. Another method on a matching path gets 405')
        .meta({ examples: [['GET', 'POST']] }),
    })
    .describe('Which requests the route takes')
    .meta({ examples: [{ path: '/notes/docs/:doc', methods: ['GET'] }] }),
  upstream: z
    .strictObject({
      url: httpUrl.describe('Upstream base URL; the canonical path (minus strip_prefix) is appended').meta({ examples: ['https://api.github.com'] }),
      strip_prefix: z
        .string()
        .startsWith('/')
        .optional()
        .describe('Leading part of the path removed before forwarding')
        .meta({ examples: ['/github'] }),
      timeout: durationMs()
        .optional()
        .describe('How long the upstream may take to answer; default server.limits.request_timeout')
        .meta({ examples: ['30s'] }),
      /** Extra headers sent upstream (static). */
      headers: z
        .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name'), z.string())
        .optional()
        .describe(
          'Static headers sent to the upstream on every request of this route (values may use ${VAR}); an inbound header of the same name is dropped first',
        )
        .meta({ examples: [{ 'X-Tenant': 'acme' }] }),
    })
    .describe('Where matching requests go')
    .meta({ examples: [{ url: 'https://api.github.com', strip_prefix: '/github' }] }),
  mode: z
    .enum(['enforce', 'shadow'])
    .optional()
    .describe(
      'enforce, or shadow: authorization and approval rules are evaluated and a would-deny or would-hold is recorded (decision log, warden_shadow_decisions_total) while the request is forwarded as if allowed; authentication, limits and credentials still apply. Default: the top-level mode',
    )
    .meta({ examples: ['shadow'] }),
  public: z
    .boolean()
    .optional()
    .describe('No token needed; a public route has no authorize, scopes, approval, vault credentials or mcp')
    .meta({ examples: [true] }),
  scopes: z
    .array(z.string())
    .optional()
    .describe('Token scopes required (403 forbidden, reason insufficient_scope)')
    .meta({ examples: [['github']] }),
  authorize: authorizeSchema
    .optional()
    .describe('OpenFGA checks: a list (all must allow), {all: [...]} or {any: [...]}; [] on purpose = any authenticated caller')
    .meta({ examples: [[{ user: 'user:{user}', relation: 'can_read', object: 'doc:{path.doc}' }]] }),
  approval: approvalSchemaOneOrMany
    .optional()
    .describe('Hold matching requests for a human: one rule or a list (the first whose when holds applies)')
    .meta({ examples: [{ when: 'request.method == "DELETE"', message: 'Delete document {path.doc}' }] }),
  credentials: credentialsSchema
    .optional()
    .describe('Credentials Warden sends upstream: none, {vault: provider}, {header: {name, value}} or {token_exchange: {...}}')
    .meta({ examples: [{ vault: 'github' }] }),
  mcp: mcpSchema
    .optional()
    .describe('Treat the route as an MCP Streamable HTTP endpoint: per-tool policy, filtered tools/list, pinning, sessions')
    .meta({ examples: [{ tools: { read_file: { authorize: [] } } }] }),
  rate_limit: rateLimitSchema.optional(),
  budget: budgetSchema.optional(),
  assertion: routeAssertionSchema.optional(),
});

// ---------------------------------------------------------------- audit

export const decisionLogSchema = z
  .strictObject({
    sink: z
      .enum(['stdout', 'file', 'http'])
      .default('file')
      .describe('Where decision records go: stdout (one JSON line each), a rotating JSONL file, or an HTTP endpoint (batched NDJSON POSTs with retry)')
      .meta({ examples: ['file'] }),
    path: z
      .string()
      .min(1)
      .optional()
      .describe('File sink: the JSONL file (rotated files get .1, .2, … with .1 the newest); with server.workers > 1 each worker writes <path>.w<N>')
      .meta({ examples: ['/var/log/warden/decisions.jsonl'] }),
    rotate: size(104_857_600)
      .describe('File sink: rotate when the file reaches this size')
      .meta({ examples: ['100MB'] }),
    keep: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(10)
      .describe('File sink: rotated files kept (older ones are deleted)')
      .meta({ examples: [30] }),
    url: httpUrl
      .optional()
      .describe('HTTP sink: where batches are POSTed (application/x-ndjson)')
      .meta({ examples: ['https://logs.internal/warden'] }),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('HTTP sink: extra request headers (e.g. an ingest token from the environment)')
      .meta({ examples: [{ authorization: 'Bearer ${LOG_INGEST_TOKEN}' }] }),
    batch: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(500)
      .describe('HTTP sink: records per POST at most')
      .meta({ examples: [1000] }),
    flush_interval: duration('1s')
      .describe('HTTP sink: longest wait before a partial batch is sent')
      .meta({ examples: ['200ms'] }),
    write_interval: duration('20ms')
      .describe(
        'Records are handed to the sink in one batch at most this long after they were decided (sooner when 256 KB of records are pending; always on shutdown and reload). A crash (kill -9) loses at most this window. 0: every event-loop turn. At most 10s',
      )
      .meta({ examples: ['50ms'] }),
    timeout: duration('5s')
      .describe('HTTP sink: timeout of one POST')
      .meta({ examples: ['2s'] }),
    retries: z
      .number()
      .int()
      .min(0)
      .max(20)
      .default(5)
      .describe('HTTP sink: retries of a failed POST (exponential backoff) before its records are counted as dropped')
      .meta({ examples: [10] }),
    max_buffer: z
      .number()
      .int()
      .min(1)
      .default(100_000)
      .describe('HTTP sink: records held while the endpoint is down; beyond it the oldest are dropped (warden_decision_log_dropped_total)')
      .meta({ examples: [1_000_000] }),
    max_buffer_bytes: size(67_108_864)
      .describe(
        'HTTP sink: bytes of records held while the endpoint is down, whichever of max_buffer and this is reached first; beyond it the oldest are dropped too',
      )
      .meta({ examples: ['256MiB'] }),
    chain: z
      .boolean()
      .default(true)
      .describe('Hash-chain the records (each carries the SHA-256 of the previous record of its instance) and write signed checkpoints')
      .meta({ examples: [true] }),
    checkpoint_every: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Write a signed checkpoint after this many records…')
      .meta({ examples: [10_000] }),
    checkpoint_interval: duration('60s')
      .describe('…or after this long with records since the last one')
      .meta({ examples: ['10s'] }),
    key: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Checkpoint signing key (PEM or private JWK, ES256 or EdDSA), usually "${WARDEN_AUDIT_KEY}". Default: the active identity.assertion key, else a key generated once in the data dir (audit-key.jwk.json; public JWKS in audit-key.jwks.json)',
      ),
  })
  .superRefine((v, ctx) => {
    if (v.sink === 'file' && !v.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'the file sink needs a path' });
    if (v.sink === 'http' && !v.url) ctx.addIssue({ code: 'custom', path: ['url'], message: 'the http sink needs a url' });
    if (v.sink !== 'file' && v.path) ctx.addIssue({ code: 'custom', path: ['path'], message: `path is for the file sink, not ${v.sink}` });
    if (v.sink !== 'http' && v.url) ctx.addIssue({ code: 'custom', path: ['url'], message: `url is for the http sink, not ${v.sink}` });
    if (v.write_interval > 10_000) ctx.addIssue({ code: 'custom', path: ['write_interval'], message: 'at most 10s (it bounds what a crash loses)' });
  })
  .describe('The decision log: one structured, hash-chained record per decision');

export const auditSchema = z
  .strictObject({
    decisions: decisionLogSchema.optional(),
  })
  .prefault({});

// ---------------------------------------------------------------- observability

/** OTLP/HTTP span export (OpenTelemetry); see docs/observability.md. */
export const tracingSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .optional()
      .describe(
        'Turn tracing on or off. Default: on when an endpoint is known (here, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT in the environment), off otherwise; false wins over the environment',
      ),
    endpoint: httpUrl
      .optional()
      .describe(
        'Full URL of an OTLP/HTTP traces endpoint (protobuf), e.g. a collector, Jaeger or Tempo. Default: from the OTEL_EXPORTER_OTLP_* environment variables',
      )
      .meta({ examples: ['http://otel-collector:4318/v1/traces'] }),
    sampling: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .describe('Share of the traces that start at Warden that are recorded (0..1, by trace id); see parent_based for traces a caller started')
      .meta({ examples: [0.01] }),
    parent_based: z
      .boolean()
      .default(true)
      .describe("Follow the caller's sampled flag when the request carries a valid traceparent (false: apply sampling to every request)"),
    service_name: z
      .string()
      .min(1)
      .optional()
      .describe('service.name of the exported spans. Default: OTEL_SERVICE_NAME, else "warden"')
      .meta({ examples: ['warden-prod'] }),
    headers: z
      .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name'), z.string())
      .optional()
      .describe(
        'Headers sent with every export (collector authentication; use ${VAR} for secrets: values are never logged). Default: OTEL_EXPORTER_OTLP_TRACES_HEADERS / OTEL_EXPORTER_OTLP_HEADERS',
      )
      .meta({ examples: [{ authorization: 'Bearer ${OTEL_TOKEN}' }] }),
    timeout: duration('10s').describe('How long one export may take (retries included) before its spans are dropped'),
    max_queue: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(2048)
      .describe('Finished spans waiting for export; when full (collector slow or down) new spans are dropped and counted, requests never wait'),
    max_batch: z.number().int().min(1).max(100_000).default(512).describe('Spans per export request (at most max_queue)'),
    flush_interval: duration('5s').describe('Export at least this often while spans are waiting'),
  })
  .prefault({});

export const metricsSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe(
        'Count Prometheus metrics and serve them at /metrics on the admin listener. false: nothing is counted per request and /metrics answers 404. Read at start (a reload that changes it logs a warning)',
      )
      .meta({ examples: [false] }),
  })
  .prefault({});

export const observabilitySchema = z
  .strictObject({
    tracing: tracingSchema.describe('OpenTelemetry traces: a span per pipeline stage and for the upstream call, exported over OTLP/HTTP'),
    metrics: metricsSchema.describe('Prometheus metrics (on by default)'),
  })
  .prefault({});

// ---------------------------------------------------------------- console

/** Who is the platform team in the console: a claim of the signed-in person's session, or an OpenFGA relation. */
export const consoleAdminSchema = z
  .union([
    z.strictObject({
      claim: z
        .string()
        .min(1)
        .max(200)
        .describe('Claim of the signed-in person (from the login ID token, kept in the session); dots walk into objects ("realm_access.roles")')
        .meta({ examples: ['roles'] }),
      value: z
        .string()
        .min(1)
        .describe('The claim must equal this string, or be a list that contains it')
        .meta({ examples: ['warden-admin'] }),
    }),
    z.strictObject({
      relation: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/)
        .describe('Relation the person (as user:<sub>) must hold, checked with the configured engine at higher consistency')
        .meta({ examples: ['admin'] }),
      object: z
        .string()
        .regex(/^[^:#\s{}]+:[^#\s{}]+$/)
        .describe('Literal object of that relation (type:id, no templates)')
        .meta({ examples: ['warden:console'] }),
    }),
  ])
  .describe(
    'The admin role: a claim match ({claim, value}) or an OpenFGA relation ({relation, object}). Unset: nobody is an admin. Fails closed: an engine error means "not an admin".',
  );

export const consoleSchema = z
  .strictObject({
    admin: consoleAdminSchema.optional(),
    activity_interval: duration('200ms')
      .describe(
        "Activity kept in the store (sign-in on and no decision-log file to read back): a request's item waits in memory at most this long and goes to the store in one batch, one write per person (sooner at 1,000 pending items, when that person opens the console on this instance, and always on shutdown and reload). A crash (kill -9) loses at most this window. 0: every event-loop turn. At most 10s",
      )
      .meta({ examples: ['1s'] }),
  })
  .superRefine((v, ctx) => {
    if (v.activity_interval > 10_000) ctx.addIssue({ code: 'custom', path: ['activity_interval'], message: 'at most 10s (it bounds what a crash loses)' });
  })
  .prefault({});

export const configSchema = z.strictObject({
  server: serverSchema.describe('Listeners, public URL, limits, workers'),
  store: storeSchema.describe('Where shared state lives (vault, approvals, locks, pub/sub)'),
  identity: identitySchema.describe('Who is calling: the identity providers whose tokens are accepted'),
  authz: authzSchema.describe('Fine-grained authorization: the OpenFGA model and engine'),
  vault: vaultSchema.describe('The token vault: encryption keys and OAuth providers users link'),
  approvals: approvalsSchema.describe('Human approval of risky requests'),
  audit: auditSchema.describe('Audit trail: the decision log'),
  observability: observabilitySchema.describe('Traces (OpenTelemetry) and Prometheus metrics (served on the admin listener at /metrics)'),
  console: consoleSchema.describe('The web console at /.warden/console'),
  mode: z
    .enum(['enforce', 'shadow'])
    .default('enforce')
    .describe('Default mode of routes without their own mode: enforce, or shadow (decide and record, never refuse or hold)')
    .meta({ examples: ['shadow'] }),
  routes: z.array(routeSchema).default([]).describe('Routes, matched in order; no match is 404'),
});
export type ConsoleAdminConfig = z.output<typeof consoleAdminSchema>;
export type DecisionLogConfig = z.output<typeof decisionLogSchema>;
export type TracingConfig = z.output<typeof tracingSchema>;

export type Config = z.output<typeof configSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type CheckConfig = z.output<typeof checkSchema>;
export type AuthorizeConfig = z.output<typeof authorizeSchema>;
export type ApprovalRuleConfig = z.output<typeof approvalRuleSchema>;
export type CredentialsConfig = z.output<typeof credentialsSchema>;
export type IssuerConfig = z.output<typeof issuerSchema>;
export type LoginConfig = z.output<typeof loginSchema>;
export type ProviderConfig = z.output<typeof providerSchema>;
export type McpConfig = z.output<typeof mcpSchema>;
export type McpToolConfig = z.output<typeof mcpToolSchema>;
export type AssertionSettings = z.output<typeof assertionSettingsSchema>;
export type AssertionKeyConfig = z.output<typeof assertionKeySchema>;
export type RouteAssertionConfig = z.output<typeof routeAssertionSchema>;
export type NotifierConfig = z.output<typeof notifierSchema>;
export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type BudgetConfig = z.output<typeof budgetSchema>;
export type PushConfig = z.output<typeof pushSchema>;
