/**
 * The gateway.yaml contract as a strict zod schema. Unknown keys are errors.
 * Durations become milliseconds and sizes bytes here, so the rest of Warden
 * never parses units. Cross-field checks live in `validate.ts`.
 */

import { z } from 'zod';
import { parseDuration, parseSize } from './duration.js';

/** A duration in milliseconds ("500ms", "30s", "10m", "1h"; a bare number is seconds). */
const durationMs = () =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)} (use e.g. 500ms, 30s, 10m, 1h)` });
      return z.NEVER;
    }
    return ms;
  });
const duration = (fallback: string) => durationMs().optional().transform((v) => v ?? (parseDuration(fallback) as number));

const size = (fallback: number) =>
  z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const bytes = parseSize(v);
      if (bytes === null) {
        ctx.addIssue({ code: 'custom', message: `invalid size ${JSON.stringify(v)} (bytes, or e.g. 64KiB, 10MB)` });
        return z.NEVER;
      }
      return bytes;
    })
    .optional()
    .transform((v) => v ?? fallback);

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port');
const httpUrl = z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');
const stringList = z.union([z.string(), z.array(z.string()).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]));

// ---------------------------------------------------------------- server

export const serverSchema = z
  .strictObject({
    listen: hostPort.default('127.0.0.1:8080'),
    public_url: httpUrl.optional(),
    admin_listen: hostPort.nullable().default('127.0.0.1:9090'),
    admin_token: z
      .string()
      .min(32, 'must be at least 32 characters (use a random secret from the environment)')
      .optional()
      .describe('Bearer secret for the admin listener (set it from the environment: "${WARDEN_ADMIN_TOKEN}"). With it, every admin endpoint but /metrics requires `Authorization: Bearer <token>`; without it, admin reads stay open and state-changing admin endpoints are refused.'),
    admin_hosts: z
      .array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'must be a host name'))
      .default([])
      .describe('Host names (besides IP literals, localhost and the admin_listen host) the admin listener may be addressed by. Any other Host is refused, which defeats DNS rebinding.'),
    metrics_auth: z.boolean().default(false).describe('Require server.admin_token on GET /metrics too (default: /metrics is open to whoever reaches the admin listener).'),
    trusted_proxies: z.array(z.string()).default([]),
    limits: z
      .strictObject({
        header_bytes: size(16_384),
        body_bytes: size(10_485_760),
        request_timeout: duration('60s'),
        /** Time allowed to receive the request headers and body (slow clients). */
        client_timeout: duration('30s'),
      })
      .prefault({}),
    watch: z.boolean().default(false),
    /** node:cluster workers sharing one port; 1 = no cluster. */
    workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
    shutdown_timeout: duration('10s'),
  })
  .prefault({});

// ---------------------------------------------------------------- store

export const storeSchema = z
  .strictObject({
    driver: z.enum(['memory', 'redis']).default('memory'),
    url: z
      .string()
      .optional()
      .describe(
        'redis://[user:password@]host:port[/db], or rediss://… for TLS. With `sentinels`, host:port is ignored (the sentinels name the master); scheme, credentials and db still apply.',
      ),
    key_prefix: z.string().default('warden:'),
    /** Each store call fails closed after this long. */
    timeout: duration('2s'),
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
  issuer: z.string().min(1),
  audience: stringList,
  jwks_uri: httpUrl.optional(),
  algorithms: z.array(algorithm).min(1).default(['RS256', 'ES256']),
  agent_claim: z.string().optional(),
  user_claim: z.string().default('sub'),
  /** Accepted JOSE `typ` values; RFC 9068 access tokens by default. */
  token_types: z.array(z.string()).default(['at+jwt', 'application/at+jwt']),
  /** Also accept tokens without `typ` (many IdPs omit it); ID tokens are still refused. */
  allow_untyped: z.boolean().default(false),
});

/** `identity.login`: Warden as an OpenID Connect relying party for people in a browser (src/identity/login/). */
export const loginSchema = z
  .strictObject({
    issuer: httpUrl.describe('The user IdP (OIDC discovery at <issuer>/.well-known/openid-configuration); ID tokens must carry exactly this iss'),
    client_id: z.string().min(1).describe('Warden\'s client id at the IdP (its redirect URI is <public_url>/.warden/login/callback)'),
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

export const identitySchema = z
  .strictObject({
    issuers: z.array(issuerSchema).default([]),
    login: loginSchema.optional(),
    dev_issuer: z.boolean().default(false),
    clock_tolerance: duration('30s'),
    /** Verified-token cache entries; 0 disables the cache. */
    token_cache_size: z.number().int().min(0).default(10_000),
  })
  .prefault({});

// ---------------------------------------------------------------- authz

export const tupleSchema = z.strictObject({
  user: z.string().min(1),
  relation: z.string().min(1),
  object: z.string().min(1),
  condition: z
    .strictObject({ name: z.string().min(1), context: z.record(z.string(), z.unknown()).optional() })
    .optional(),
});

export const checkSchema = z.strictObject({
  user: z.string().min(1),
  relation: z.string().min(1),
  object: z.string().min(1),
  context: z.record(z.string(), z.unknown()).optional(),
  contextual_tuples: z.array(z.strictObject({ user: z.string(), relation: z.string(), object: z.string() })).optional(),
});

/** `[checks]` (all must allow), `{ all: [...] }` or `{ any: [...] }`. */
export const authorizeSchema = z.union([
  z.array(checkSchema).transform((checks) => ({ mode: 'all' as const, checks })),
  z.strictObject({ all: z.array(checkSchema) }).transform((v) => ({ mode: 'all' as const, checks: v.all })),
  z.strictObject({ any: z.array(checkSchema).min(1) }).transform((v) => ({ mode: 'any' as const, checks: v.any })),
]);

export const authzSchema = z
  .strictObject({
    engine: z.enum(['embedded', 'openfga']).default('embedded'),
    model: z.string().default('policies/model.fga'),
    tuples: z.string().optional(),
    openfga: z
      .strictObject({
        api_url: httpUrl,
        store_id: z.string().optional(),
        model_id: z.string().optional(),
        api_token: z.string().optional(),
        timeout: duration('2s'),
        retries: z.number().int().min(0).max(5).default(1),
      })
      .optional(),
    cache_ttl: duration('5s'),
    cache_size: z.number().int().min(0).default(10_000),
  })
  .prefault({});

// ---------------------------------------------------------------- vault

export const providerSchema = z.strictObject({
  authorization_url: httpUrl.optional(),
  token_url: httpUrl.optional(),
  issuer: httpUrl.optional(),
  revocation_url: httpUrl.optional(),
  client_id: z.string().min(1),
  client_secret: z.string().optional(),
  /** Token-endpoint client authentication; default client_secret_basic with a secret, else none. */
  client_auth: z.enum(['client_secret_basic', 'client_secret_post', 'none']).optional(),
  scopes: z.array(z.string()).default([]),
  /** Extra authorization-request parameters (e.g. `access_type: offline`). */
  params: z.record(z.string(), z.string()).default({}),
  /** Refresh when the access token expires within this window. */
  refresh_before: duration('60s'),
  timeout: duration('10s'),
});

export const vaultSchema = z
  .strictObject({
    keys: z.array(z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/), key: z.string() })).default([]),
    providers: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), providerSchema).default({}),
    connect_ttl: duration('10m'),
    /** In-process cache of decrypted connections on the request path; 0 disables. */
    cache_ttl: duration('1s'),
    /** Lease of the cross-instance refresh lock; renewed while a refresh is in flight. */
    refresh_lease: duration('5s'),
    exchange_clients: z
      .array(
        z
          .strictObject({
            client_id: z.string().min(1).max(256).describe('The client; it may only exchange subject tokens whose agent (client_id/azp) is this id.'),
            client_secret: z.string().min(32, 'must be at least 32 characters (a random secret from the environment)').optional().describe('Shared secret for client_secret_basic or client_secret_post (set it from the environment).'),
            jwks_uri: httpUrl.optional().describe('Where the client publishes its public keys, for private_key_jwt (RFC 7523) client authentication.'),
          })
          .refine((c) => (c.client_secret === undefined) !== (c.jwks_uri === undefined), 'give exactly one of client_secret or jwks_uri'),
      )
      .default([])
      .describe('Clients allowed to call POST /.warden/oauth/token (RFC 8693 token exchange). Each authenticates with client_secret_basic, client_secret_post or private_key_jwt; none registered means every exchange is refused with invalid_client.'),
  })
  .prefault({});

// ---------------------------------------------------------------- approvals

export const approvalRuleSchema = z.strictObject({
  when: z.string().optional(),
  message: z.string().optional(),
  /** Who may decide: default the user the agent acts for. */
  approvers: z.strictObject({ relation: z.string(), object: z.string() }).optional(),
  ttl: durationMs().optional(),
});

const approvalSchemaOneOrMany = z
  .union([approvalRuleSchema, z.array(approvalRuleSchema)])
  .transform((v) => (Array.isArray(v) ? v : [v]));

export const notifierSchema = z.union([
  z.strictObject({ webhook: z.strictObject({ url: httpUrl, secret: z.string().min(16), timeout: duration('5s') }) }),
  z.strictObject({
    email: z.strictObject({ smtp: z.string().regex(/^smtps?:\/\//), from: z.string().min(3), to: z.string().min(1), subject: z.string().optional() }),
  }),
  z.strictObject({ log: z.literal(true) }),
  /** Development only: print review links to the terminal. */
  z.strictObject({ console: z.literal(true) }),
]);

export const approvalsSchema = z
  .strictObject({
    ttl: duration('10m'),
    hold: duration('25s'),
    notify: z.array(notifierSchema).default([]),
    max_pending_per_user: z.number().int().min(1).default(20),
    max_grant: duration('8h'),
    review_auth: z
      .enum(['link', 'login', 'link+login'])
      .optional()
      .describe('What lets someone decide on the review page: the secret link, a signed-in approver, or both. Default link+login when identity.login is set, else link'),
    ciba: z
      .strictObject({
        issuer: httpUrl,
        client_id: z.string(),
        client_secret: z.string(),
        scope: z.string().default('openid'),
        login_hint: z.string().default('{user}'),
        requested_expiry: durationMs().optional(),
        timeout: duration('10s'),
      })
      .optional(),
  })
  .prefault({});

// ---------------------------------------------------------------- routes

export const credentialsSchema = z.union([
  z.literal('none').transform(() => ({ kind: 'none' as const })),
  z.strictObject({ vault: z.string() }).transform((v) => ({ kind: 'vault' as const, provider: v.vault })),
  z
    .strictObject({ header: z.strictObject({ name: z.string().regex(/^[A-Za-z0-9-]+$/), value: z.string() }) })
    .transform((v) => ({ kind: 'header' as const, name: v.header.name, value: v.header.value })),
  z
    .strictObject({
      token_exchange: z.strictObject({
        token_url: httpUrl,
        audience: z.string().optional(),
        resource: z.string().optional(),
        scope: z.string().optional(),
        client_id: z.string(),
        client_secret: z.string().optional(),
        /** Timeout of the exchange request (the result is cached until near expiry). */
        timeout: durationMs().optional(),
      }),
    })
    .transform((v) => ({ kind: 'token_exchange' as const, ...v.token_exchange })),
]);

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
      .describe('A request that would pass `max`: held for the user\'s approval (approve) or refused with 403 budget_exceeded (deny, default)'),
    lease: durationMs()
      .optional()
      .describe('How long a reservation counts before the request is answered (default: approvals.hold + upstream timeout + 10s); a reservation of a crashed instance lapses after it'),
  })
  .describe('Spend budget: amounts reserved atomically before forwarding, committed on success, released when the upstream fails');

const methods = z.array(z.string().regex(/^[A-Z]+$/, 'methods are upper case tokens'));

export const mcpToolSchema = z.strictObject({
  authorize: authorizeSchema.optional(),
  approval: approvalSchemaOneOrMany.optional(),
  credentials: credentialsSchema.optional(),
  rate_limit: rateLimitSchema.optional(),
  budget: budgetSchema.optional(),
});

export const mcpSchema = z.strictObject({
  other_tools: z.enum(['deny', 'allow']).default('deny'),
  tools: z.record(z.string(), mcpToolSchema).default({}),
  /** Record tool definitions and hide tools whose definition changed (tool pinning). */
  pin_tools: z.boolean().default(true),
  /** How long an idle `Mcp-Session-Id` stays bound to the principal that created it. */
  session_ttl: duration('24h'),
});

export const routeSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  match: z.strictObject({
    path: z.string().startsWith('/'),
    methods: methods.optional(),
  }),
  upstream: z.strictObject({
    url: httpUrl,
    strip_prefix: z.string().startsWith('/').optional(),
    timeout: durationMs().optional(),
    /** Extra headers sent upstream (static). */
    headers: z
      .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name'), z.string())
      .optional()
      .describe('Static headers sent to the upstream on every request of this route (values may use ${VAR}); an inbound header of the same name is dropped first'),
  }),
  public: z.boolean().optional(),
  scopes: z.array(z.string()).optional(),
  authorize: authorizeSchema.optional(),
  approval: approvalSchemaOneOrMany.optional(),
  credentials: credentialsSchema.optional(),
  mcp: mcpSchema.optional(),
  rate_limit: rateLimitSchema.optional(),
  budget: budgetSchema.optional(),
});

export const configSchema = z.strictObject({
  server: serverSchema,
  store: storeSchema,
  identity: identitySchema,
  authz: authzSchema,
  vault: vaultSchema,
  approvals: approvalsSchema,
  routes: z.array(routeSchema).default([]),
});

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
export type NotifierConfig = z.output<typeof notifierSchema>;
export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type BudgetConfig = z.output<typeof budgetSchema>;
