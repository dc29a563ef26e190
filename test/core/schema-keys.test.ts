/**
 * Every key of the config schema must do something (#12 A.9): a policy key
 * that is accepted and ignored is a defect in a security gateway. The schema
 * is walked (zod's own definitions, so a new key is seen at once) and every
 * key path must appear in one of two tables below:
 *
 * - TESTED: a test whose configuration sets the key (checked: the file sets
 *   `key:` under its parent), i.e. a test that shows the key has an effect;
 * - READ_ONLY: keys no test configures yet, with the module that reads them
 *   (checked: the module names the key). Each is a gap to close with a test;
 *   adding a key here is a deliberate, reviewed act.
 *
 * Paths drop array and record steps (`routes.upstream.headers`).
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { configSchema } from '../../src/config/schema.js';
import { REPO_ROOT } from '../support/gateway.js';

const TESTED: Record<string, string> = {
  mode: 'test/audit/shadow.test.ts',
  'routes.mode': 'test/audit/shadow.test.ts',
  'audit.decisions.timeout': 'test/audit/decision-log.test.ts',
  'audit.decisions.retries': 'test/audit/decision-log.test.ts',
  'audit.decisions.max_buffer': 'test/audit/decision-log.test.ts',
  'audit.decisions.max_buffer_bytes': 'test/audit/decision-log.test.ts',
  'audit.decisions.chain': 'test/audit/decision-log.test.ts',
  'audit.decisions.checkpoint_interval': 'test/audit/decision-log.test.ts',
  'audit.decisions.key': 'test/audit/decision-log.test.ts',
  audit: 'test/audit/decision-log.test.ts',
  'audit.decisions': 'test/audit/decision-log.test.ts',
  'audit.decisions.sink': 'test/audit/decision-log.test.ts',
  'audit.decisions.path': 'test/audit/decision-log.test.ts',
  'audit.decisions.rotate': 'test/audit/decision-log.test.ts',
  'audit.decisions.keep': 'test/audit/decision-log.test.ts',
  'audit.decisions.url': 'test/audit/decision-log.test.ts',
  'audit.decisions.headers': 'test/audit/decision-log.test.ts',
  'audit.decisions.batch': 'test/audit/decision-log.test.ts',
  'audit.decisions.flush_interval': 'test/audit/decision-log.test.ts',
  observability: 'test/observability/tracing.e2e.test.ts',
  'observability.tracing': 'test/observability/tracing.e2e.test.ts',
  'observability.metrics': 'test/observability/metrics-off.test.ts',
  'observability.metrics.enabled': 'test/observability/metrics-off.test.ts',
  'observability.tracing.endpoint': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.sampling': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.parent_based': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.service_name': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.headers': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.timeout': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.max_queue': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.max_batch': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.flush_interval': 'test/observability/tracing.e2e.test.ts',
  'observability.tracing.enabled': 'test/observability/tracing-config.test.ts',
  'audit.decisions.write_interval': 'test/audit/decision-log.test.ts',
  'audit.decisions.checkpoint_every': 'test/audit/decision-log.test.ts',
  approvals: 'test/login/dev-login.e2e.test.ts',
  console: 'test/console/admin.e2e.test.ts',
  'console.admin': 'test/console/admin.e2e.test.ts',
  'console.admin.relation': 'test/console/admin.e2e.test.ts',
  'console.admin.object': 'test/console/admin.e2e.test.ts',
  'console.admin.claim': 'test/console/admin-role.test.ts',
  'console.admin.value': 'test/console/admin-role.test.ts',
  'console.activity_interval': 'test/console/activity-ring.e2e.test.ts',
  'approvals.ciba': 'test/approvals/ciba.test.ts',
  'approvals.ciba.client_id': 'test/approvals/ciba.test.ts',
  'approvals.ciba.client_secret': 'test/approvals/ciba.test.ts',
  'approvals.ciba.issuer': 'test/approvals/ciba.test.ts',
  'approvals.ciba.login_hint': 'test/approvals/ciba.test.ts',
  'approvals.ciba.requested_expiry': 'test/approvals/ciba.test.ts',
  'approvals.ciba.scope': 'test/identity/oidc-peer.test.ts',
  'approvals.ciba.user_claim': 'test/approvals/ciba.test.ts',
  'approvals.hold': 'test/login/dev-login.e2e.test.ts',
  'approvals.push': 'test/console/push.e2e.test.ts',
  'approvals.push.vapid_public_key': 'test/console/push.e2e.test.ts',
  'approvals.push.vapid_private_key': 'test/console/push.e2e.test.ts',
  'approvals.push.subject': 'test/console/push.e2e.test.ts',
  'approvals.push.timeout': 'test/console/push.e2e.test.ts',
  'approvals.push.allow_loopback': 'test/console/push.e2e.test.ts',
  'approvals.push.endpoint_hosts': 'test/approvals/push-endpoint.test.ts',
  'approvals.max_grant': 'test/approvals/binding.test.ts',
  'approvals.max_pending_per_user': 'test/approvals/binding.test.ts',
  'approvals.notify': 'test/login/dev-login.e2e.test.ts',
  'approvals.notify.email': 'test/approvals/e2e.test.ts',
  'approvals.notify.email.from': 'test/approvals/e2e.test.ts',
  'approvals.notify.email.smtp': 'test/approvals/e2e.test.ts',
  'approvals.notify.email.to': 'test/approvals/e2e.test.ts',
  'approvals.notify.log': 'test/limits/instances.test.ts',
  'approvals.notify.webhook': 'test/login/dev-login.e2e.test.ts',
  'approvals.notify.webhook.secret': 'test/login/dev-login.e2e.test.ts',
  'approvals.notify.webhook.timeout': 'test/approvals/redis.test.ts',
  'approvals.notify.webhook.url': 'test/login/dev-login.e2e.test.ts',
  'approvals.review_auth': 'test/login/dev-login.e2e.test.ts',
  'approvals.ttl': 'test/approvals/redis.test.ts',
  authz: 'test/core/oidc.test.ts',
  'authz.cache_ttl': 'test/vault/memory.test.ts',
  'authz.engine': 'test/authz/openfga-unreachable.test.ts',
  'authz.model': 'test/core/oidc.test.ts',
  'authz.openfga': 'test/core/production.test.ts',
  'authz.openfga.api_url': 'test/authz/openfga-create.test.ts',
  'authz.openfga.model_id': 'test/core/production.test.ts',
  'authz.openfga.retries': 'test/authz/openfga-create.test.ts',
  'authz.openfga.store_id': 'test/authz/openfga-create.test.ts',
  'authz.openfga.timeout': 'test/authz/openfga-create.test.ts',
  'authz.tuples': 'test/core/oidc.test.ts',
  'authz.invalid_tuples': 'test/authz/invalid-tuples.test.ts',
  identity: 'test/core/oidc.test.ts',
  'identity.assertion': 'test/assertion/e2e.test.ts',
  'identity.assertion.issuer': 'test/assertion/rotation.test.ts',
  'identity.assertion.jti': 'test/assertion/e2e.test.ts',
  'identity.assertion.keys': 'test/assertion/rotation.test.ts',
  'identity.assertion.keys.alg': 'test/assertion/config.test.ts',
  'identity.assertion.keys.id': 'test/assertion/rotation.test.ts',
  'identity.assertion.keys.private_key': 'test/assertion/rotation.test.ts',
  'identity.assertion.keys.status': 'test/assertion/rotation.test.ts',
  'identity.assertion.ttl': 'test/assertion/e2e.test.ts',
  'identity.clock_tolerance': 'test/core/connection-token.test.ts',
  'identity.dev_issuer': 'test/core/cli-store.test.ts',
  'identity.issuers': 'test/core/oidc.test.ts',
  'identity.issuers.agent_claim': 'test/identity/verifier-oidc.test.ts',
  'identity.issuers.user_prefix': 'test/identity/issuer-namespaces.test.ts',
  'identity.issuers.algorithms': 'test/core/oidc.test.ts',
  'identity.issuers.allow_untyped': 'test/identity/verifier-oidc.test.ts',
  'identity.issuers.audience_binding': 'test/mcp/audience-binding.test.ts',
  'identity.issuers.audience': 'test/core/oidc.test.ts',
  'identity.issuers.issuer': 'test/core/oidc.test.ts',
  'identity.issuers.jwks_uri': 'test/core/connection-token.test.ts',
  'identity.issuers.user_claim': 'test/identity/verifier-oidc.test.ts',
  'identity.login': 'test/login/session.test.ts',
  'identity.login.client_id': 'test/login/session.test.ts',
  'identity.login.client_secret': 'test/login/login.e2e.test.ts',
  'identity.login.issuer': 'test/login/session.test.ts',
  'identity.login.scopes': 'test/login/session.test.ts',
  'identity.login.session': 'test/login/session.test.ts',
  'identity.login.session.secret': 'test/login/dev-login.e2e.test.ts',
  'identity.login.session.ttl': 'test/login/login.e2e.test.ts',
  'identity.login.algorithms': 'test/login/id-token.test.ts',
  'identity.login.timeout': 'test/login/id-token.test.ts',
  'identity.login.user_claim': 'test/login/id-token.test.ts',
  'identity.token_cache_size': 'test/identity/verifier-oidc.test.ts',
  routes: 'test/vault/tickets.test.ts',
  'routes.approval': 'test/login/dev-login.e2e.test.ts',
  'routes.approval.approvers': 'test/login/login.e2e.test.ts',
  'routes.approval.approvers.object': 'test/login/login.e2e.test.ts',
  'routes.approval.approvers.relation': 'test/login/login.e2e.test.ts',
  'routes.approval.message': 'test/login/dev-login.e2e.test.ts',
  'routes.approval.ttl': 'test/approvals/redis.test.ts',
  'routes.approval.when': 'test/login/dev-login.e2e.test.ts',
  'routes.assertion': 'test/assertion/e2e.test.ts',
  'routes.assertion.audience': 'test/assertion/e2e.test.ts',
  'routes.assertion.authz': 'test/assertion/e2e.test.ts',
  'routes.assertion.claims': 'test/assertion/e2e.test.ts',
  'routes.assertion.header': 'test/assertion/e2e.test.ts',
  'routes.mcp.tools.assertion': 'test/assertion/mcp.test.ts',
  'routes.mcp.tools.assertion.audience': 'test/assertion/mcp.test.ts',
  'routes.mcp.tools.assertion.authz': 'test/assertion/mcp.test.ts',
  'routes.mcp.tools.assertion.claims': 'test/assertion/mcp.test.ts',
  'routes.mcp.tools.assertion.header': 'test/assertion/mcp.test.ts',
  'routes.authorize': 'test/vault/tickets.test.ts',
  'routes.authorize.all.contextual_tuples.object': 'test/core/authorize.test.ts',
  'routes.authorize.all.contextual_tuples.relation': 'test/core/authorize.test.ts',
  'routes.authorize.all.contextual_tuples.user': 'test/core/authorize.test.ts',
  'routes.authorize.any': 'test/core/authorize.test.ts',
  'routes.authorize.any.contextual_tuples': 'test/core/authorize.test.ts',
  'routes.authorize.any.contextual_tuples.object': 'test/core/authorize.test.ts',
  'routes.authorize.any.contextual_tuples.relation': 'test/core/authorize.test.ts',
  'routes.authorize.any.contextual_tuples.user': 'test/core/authorize.test.ts',
  'routes.authorize.any.object': 'test/core/authorize.test.ts',
  'routes.authorize.any.relation': 'test/core/authorize.test.ts',
  'routes.authorize.any.user': 'test/core/authorize.test.ts',
  'routes.authorize.contextual_tuples': 'test/core/authorize.test.ts',
  'routes.authorize.contextual_tuples.object': 'test/core/authorize.test.ts',
  'routes.authorize.contextual_tuples.relation': 'test/core/authorize.test.ts',
  'routes.authorize.contextual_tuples.user': 'test/core/authorize.test.ts',
  'routes.authorize.object': 'test/core/oidc.test.ts',
  'routes.authorize.relation': 'test/core/oidc.test.ts',
  'routes.authorize.user': 'test/vault/tickets.test.ts',
  'routes.budget': 'test/limits/config.test.ts',
  'routes.budget.amount': 'test/limits/config.test.ts',
  'routes.budget.key': 'test/limits/config.test.ts',
  'routes.budget.lease': 'test/limits/config.test.ts',
  'routes.budget.max': 'test/limits/config.test.ts',
  'routes.budget.over': 'test/limits/config.test.ts',
  'routes.budget.per': 'test/limits/config.test.ts',
  'routes.credentials': 'test/vault/tickets.test.ts',
  'routes.credentials.header': 'test/core/hardening.test.ts',
  'routes.credentials.header.name': 'src/proxy/headers.test.ts',
  'routes.credentials.header.value': 'test/core/hardening.test.ts',
  'routes.credentials.token_exchange': 'test/vault/e2e.test.ts',
  'routes.credentials.token_exchange.audience': 'test/vault/e2e.test.ts',
  'routes.credentials.token_exchange.client_id': 'test/vault/e2e.test.ts',
  'routes.credentials.token_exchange.client_secret': 'test/vault/e2e.test.ts',
  'routes.credentials.token_exchange.resource': 'test/vault/e2e.test.ts',
  'routes.credentials.token_exchange.scope': 'test/vault/e2e.test.ts',
  'routes.credentials.token_exchange.timeout': 'test/vault/e2e.test.ts',
  'routes.credentials.token_exchange.token_url': 'test/vault/e2e.test.ts',
  'routes.credentials.vault': 'test/vault/tickets.test.ts',
  'routes.match': 'test/vault/tickets.test.ts',
  'routes.match.methods': 'test/core/authorize.test.ts',
  'routes.match.path': 'test/vault/tickets.test.ts',
  'routes.mcp': 'test/limits/mcp.test.ts',
  'routes.mcp.keepalive': 'test/mcp/held-streams.test.ts',
  'routes.mcp.other_tools': 'test/mcp/list-filter.test.ts',
  'routes.mcp.pin_tools': 'test/mcp/hostile-upstream.test.ts',
  'routes.mcp.stream_idle_timeout': 'test/mcp/held-streams.test.ts',
  'routes.mcp.tools': 'test/limits/mcp.test.ts',
  'routes.mcp.tools.approval': 'test/mcp/list-filter.test.ts',
  'routes.mcp.tools.approval.approvers': 'test/login/login.e2e.test.ts',
  'routes.mcp.tools.approval.approvers.object': 'test/login/login.e2e.test.ts',
  'routes.mcp.tools.approval.approvers.relation': 'test/login/login.e2e.test.ts',
  'routes.mcp.tools.approval.message': 'test/login/dev-login.e2e.test.ts',
  'routes.mcp.tools.approval.ttl': 'test/approvals/redis.test.ts',
  'routes.mcp.tools.approval.when': 'test/login/dev-login.e2e.test.ts',
  'routes.mcp.tools.authorize': 'test/limits/mcp.test.ts',
  'routes.mcp.tools.authorize.all.contextual_tuples.object': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.all.contextual_tuples.relation': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.all.contextual_tuples.user': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any.contextual_tuples': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any.contextual_tuples.object': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any.contextual_tuples.relation': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any.contextual_tuples.user': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any.object': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any.relation': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.any.user': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.contextual_tuples': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.contextual_tuples.object': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.contextual_tuples.relation': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.contextual_tuples.user': 'test/core/authorize.test.ts',
  'routes.mcp.tools.authorize.object': 'test/core/oidc.test.ts',
  'routes.mcp.tools.authorize.relation': 'test/core/oidc.test.ts',
  'routes.mcp.tools.authorize.user': 'test/vault/tickets.test.ts',
  'routes.mcp.tools.budget': 'test/limits/mcp.test.ts',
  'routes.mcp.tools.budget.amount': 'test/limits/config.test.ts',
  'routes.mcp.tools.budget.key': 'test/limits/config.test.ts',
  'routes.mcp.tools.budget.lease': 'test/limits/config.test.ts',
  'routes.mcp.tools.budget.max': 'test/limits/config.test.ts',
  'routes.mcp.tools.budget.over': 'test/limits/config.test.ts',
  'routes.mcp.tools.budget.per': 'test/limits/config.test.ts',
  'routes.mcp.tools.credentials': 'test/mcp/list-filter.test.ts',
  'routes.mcp.tools.credentials.header': 'test/core/hardening.test.ts',
  'routes.mcp.tools.credentials.header.name': 'src/proxy/headers.test.ts',
  'routes.mcp.tools.credentials.header.value': 'test/core/hardening.test.ts',
  'routes.mcp.tools.credentials.token_exchange': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.token_exchange.audience': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.token_exchange.client_id': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.token_exchange.client_secret': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.token_exchange.resource': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.token_exchange.scope': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.token_exchange.timeout': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.token_exchange.token_url': 'test/vault/e2e.test.ts',
  'routes.mcp.tools.credentials.vault': 'test/vault/tickets.test.ts',
  'routes.mcp.tools.rate_limit': 'test/limits/mcp.test.ts',
  'routes.mcp.tools.rate_limit.key': 'test/limits/config.test.ts',
  'routes.mcp.tools.rate_limit.per': 'test/limits/config.test.ts',
  'routes.mcp.tools.rate_limit.requests': 'test/limits/config.test.ts',
  'routes.name': 'test/vault/tickets.test.ts',
  'routes.public': 'test/limits/config.test.ts',
  'routes.rate_limit': 'test/limits/config.test.ts',
  'routes.rate_limit.key': 'test/limits/config.test.ts',
  'routes.rate_limit.per': 'test/limits/config.test.ts',
  'routes.rate_limit.requests': 'test/limits/config.test.ts',
  'routes.scopes': 'test/vault/tickets.test.ts',
  'routes.upstream': 'test/vault/tickets.test.ts',
  'routes.upstream.headers': 'test/core/hardening.test.ts',
  'routes.upstream.strip_prefix': 'test/login/dev-login.e2e.test.ts',
  'routes.upstream.timeout': 'test/core/production.test.ts',
  'routes.upstream.url': 'test/vault/tickets.test.ts',
  server: 'test/authz/openfga-model-tests.test.ts',
  'server.admin_listen': 'test/core/packaging.test.ts',
  'server.admin_token': 'test/core/admin-guard.test.ts',
  'server.limits': 'test/core/authorize.test.ts',
  'server.limits.body_bytes': 'test/core/authorize.test.ts',
  'server.limits.client_timeout': 'test/core/proxy.test.ts',
  'server.limits.keep_alive_timeout': 'test/core/keep-alive-timeout.test.ts',
  'server.limits.header_bytes': 'test/core/proxy.test.ts',
  'server.limits.request_timeout': 'test/core/hardening.test.ts',
  'server.limits.upstream_connections': 'test/core/upstream-connections.test.ts',
  'server.listen': 'test/limits/mcp.test.ts',
  'server.metrics_auth': 'test/core/admin-guard.test.ts',
  'server.public_url': 'test/login/session.test.ts',
  'server.shutdown_timeout': 'test/core/cli.test.ts',
  'server.trusted_proxies': 'test/core/proxy.test.ts',
  'server.watch': 'test/core/watch-reload.test.ts',
  store: 'test/core/cli-store.test.ts',
  'store.driver': 'test/core/cli-store.test.ts',
  'store.key_prefix': 'test/core/cli-store.test.ts',
  'store.limit_blocks': 'test/limits/blocks.test.ts',
  'store.sentinel_master': 'test/topology/sentinel-tls.test.ts',
  'store.sentinels': 'test/topology/sentinel-tls.test.ts',
  'store.timeout': 'test/core/production.test.ts',
  'store.tls': 'test/topology/sentinel-tls.test.ts',
  'store.tls.ca': 'test/topology/sentinel-tls.test.ts',
  'store.tls.cert': 'test/topology/sentinel-tls.test.ts',
  'store.tls.key': 'test/topology/sentinel-tls.test.ts',
  'store.url': 'test/core/cli-store.test.ts',
  vault: 'test/vault/tickets.test.ts',
  'vault.cache_ttl': 'test/vault/memory.test.ts',
  'vault.connect_ttl': 'test/login/login.e2e.test.ts',
  'vault.exchange_clients': 'test/vault/exchange-endpoint.test.ts',
  'vault.exchange_clients.client_id': 'test/vault/exchange-endpoint.test.ts',
  'vault.exchange_clients.client_secret': 'test/vault/exchange-endpoint.test.ts',
  'vault.exchange_clients.jwks_uri': 'test/vault/exchange-endpoint.test.ts',
  'vault.keys': 'test/vault/tickets.test.ts',
  'vault.keys.id': 'test/core/cli-store.test.ts',
  'vault.keys.key': 'test/core/cli-store.test.ts',
  'vault.providers': 'test/vault/tickets.test.ts',
  'vault.providers.authorization_url': 'test/vault/tickets.test.ts',
  'vault.providers.client_id': 'test/vault/tickets.test.ts',
  'vault.providers.client_secret': 'test/vault/memory.test.ts',
  'vault.providers.issuer': 'test/login/session.test.ts',
  'vault.providers.refresh_before': 'test/vault/memory.test.ts',
  'vault.providers.scopes': 'test/vault/tickets.test.ts',
  'vault.providers.timeout': 'test/topology/sentinel-tls.test.ts',
  'vault.providers.token_url': 'test/vault/tickets.test.ts',
  'vault.refresh_lease': 'test/vault/e2e.test.ts',
};

const READ_ONLY: Record<string, string> = {
  'approvals.ciba.timeout': 'src/approvals/ciba.ts',
  'approvals.notify.console': 'src/approvals/notifiers.ts',
  'approvals.notify.email.subject': 'src/approvals/notifiers.ts',
  'authz.cache_size': 'src/authz/cache.ts',
  'authz.openfga.api_token': 'src/authz/create.ts',
  'identity.issuers.token_types': 'src/identity/claims.ts',
  'routes.authorize.all': 'src/config/schema.ts',
  'routes.authorize.all.context': 'src/authz/stage.ts',
  'routes.authorize.all.contextual_tuples': 'src/authz/stage.ts',
  'routes.authorize.all.object': 'src/authz/stage.ts',
  'routes.authorize.all.relation': 'src/authz/stage.ts',
  'routes.authorize.all.user': 'src/authz/stage.ts',
  'routes.authorize.any.context': 'src/authz/stage.ts',
  'routes.authorize.context': 'src/authz/stage.ts',
  'routes.mcp.session_ttl': 'src/mcp/stage.ts',
  'routes.mcp.tools.authorize.all': 'src/config/schema.ts',
  'routes.mcp.tools.authorize.all.context': 'src/authz/stage.ts',
  'routes.mcp.tools.authorize.all.contextual_tuples': 'src/authz/stage.ts',
  'routes.mcp.tools.authorize.all.object': 'src/authz/stage.ts',
  'routes.mcp.tools.authorize.all.relation': 'src/authz/stage.ts',
  'routes.mcp.tools.authorize.all.user': 'src/authz/stage.ts',
  'routes.mcp.tools.authorize.any.context': 'src/authz/stage.ts',
  'routes.mcp.tools.authorize.context': 'src/authz/stage.ts',
  'routes.mcp.tools.rate_limit.burst': 'src/limits/compile.ts',
  'routes.rate_limit.burst': 'src/limits/compile.ts',
  'server.admin_hosts': 'src/gateway/gateway.ts',
  'server.workers': 'src/cli/start.ts',
  'store.sentinel_password': 'src/store/config-checks.ts',
  'store.tls.servername': 'src/store/create.ts',
  'vault.providers.client_auth': 'src/vault/providers.ts',
  'vault.providers.params': 'src/vault/as-metadata.ts',
  'vault.providers.revocation_url': 'src/vault/providers.ts',
};

/** Every key path of a zod schema (arrays and records are transparent). */
function keyPaths(schema: z.ZodType): string[] {
  const out = new Set<string>();
  const walk = (s: unknown, path: string, depth: number): void => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const def = (s as { _zod?: { def?: any } })?._zod?.def;
    if (!def || depth > 50) return;
    switch (def.type) {
      case 'object':
        for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
          const p = path ? `${path}.${k}` : k;
          out.add(p);
          walk(v, p, depth + 1);
        }
        break;
      case 'optional':
      case 'default':
      case 'prefault':
      case 'nullable':
      case 'readonly':
      case 'catch':
      case 'nonoptional':
        walk(def.innerType, path, depth + 1);
        break;
      case 'pipe':
        walk(def.in, path, depth + 1);
        walk(def.out, path, depth + 1);
        break;
      case 'union':
        for (const o of def.options) walk(o, path, depth + 1);
        break;
      case 'array':
        walk(def.element, path, depth + 1);
        break;
      case 'record':
        walk(def.valueType, path, depth + 1);
        break;
      case 'lazy':
        walk(def.getter(), path, depth + 1);
        break;
    }
  };
  walk(schema, '', 0);
  return [...out].sort();
}

const read = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8');

/** Implementation files (no tests, not the schema itself), relative to the repository. */
function sourceFiles(dir = 'src'): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && p !== 'src/config/schema.ts' ? [p] : [];
  });
}
const setsKey = (text: string, key: string) => new RegExp(`(^|[\\s{,'"])${key.replace(/[$]/g, '\\$&')}['"]?\\s*:`, 'm').test(text);

describe('every config key does something (#12 A.9)', () => {
  const paths = keyPaths(configSchema);

  it('walks the whole schema', () => {
    expect(paths.length).toBeGreaterThan(150);
    expect(paths).toContain('routes.upstream.headers');
  });

  it('every key is in a table', () => {
    const missing = paths.filter((p) => !(p in TESTED) && !(p in READ_ONLY));
    expect(missing, 'add the key to TESTED with a test that sets it').toEqual([]);
  });

  it('no table names a key the schema does not have', () => {
    const known = new Set(paths);
    expect([...Object.keys(TESTED), ...Object.keys(READ_ONLY)].filter((k) => !known.has(k))).toEqual([]);
  });

  it.each(Object.entries(TESTED))('%s is set by a test (%s)', (path, file) => {
    expect(existsSync(join(REPO_ROOT, file)), file).toBe(true);
    const text = read(file);
    const segs = path.split('.');
    expect(setsKey(text, segs[segs.length - 1]), `${file} sets ${segs[segs.length - 1]}:`).toBe(true);
    if (segs.length > 1) expect(setsKey(text, segs[segs.length - 2]), `${file} sets ${segs[segs.length - 2]}:`).toBe(true);
  });

  it.each(Object.entries(READ_ONLY))('%s is at least read (%s)', (path, file) => {
    const leaf = path.split('.').pop()!;
    // The module named is where the key was read when this table was written; code moves, so any module counts.
    const readers = sourceFiles().filter((f) => new RegExp(`\\b${leaf}\\b`).test(read(f)));
    expect(readers, `${path} is read by no module (expected ${file})`).not.toEqual([]);
  });
});
