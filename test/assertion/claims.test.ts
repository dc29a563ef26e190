/**
 * The claim set on its own: the act chain (nesting, the same actor not
 * repeated, only identifying members copied), exp bounded by the token's, and
 * mapped claims limited to small values.
 */

import { describe, expect, it } from 'vitest';
import { actClaim, buildClaims } from '../../src/identity/assertion/claims.js';
import type { Principal } from '../../src/core/principal.js';

function principal(agent: string, user: string | null, claims: Record<string, unknown> = {}, expiresAt = 2_000_000_000): Principal {
  return { agent, user, scopes: ['read', 'write'], issuer: 'https://idp.test', claims: { sub: user ?? agent, azp: agent, ...claims }, actors: [], expiresAt };
}

describe('act', () => {
  it('puts the calling agent outermost and nests the incoming chain beneath it', () => {
    const p = principal('bot', 'alice', {
      client_id: 'bot-client',
      act: { sub: 'planner', client_id: 'p', secret: 'x', act: { sub: 'orchestrator', role: 'admin' } },
    });
    expect(actClaim(p)).toEqual({ sub: 'bot', client_id: 'bot-client', act: { sub: 'planner', client_id: 'p', act: { sub: 'orchestrator' } } });
  });

  it('does not repeat the calling agent when the token already names it as the current actor', () => {
    const p = principal('bot', 'alice', { act: { sub: 'bot', act: { sub: 'orchestrator' } } });
    expect(actClaim(p)).toEqual({ sub: 'bot', client_id: 'bot', act: { sub: 'orchestrator' } });
  });

  it('a token without act: the agent alone', () => {
    expect(actClaim(principal('bot', null))).toEqual({ sub: 'bot', client_id: 'bot' });
  });
});

describe('buildClaims', () => {
  const base = { issuer: 'https://warden.test', audience: 'https://api.internal', route: 'r', now: 1_000, ttlSeconds: 60, jti: 'j' };

  it('sub is the user (the agent for a machine token), exp never past the token', () => {
    const c = buildClaims({ ...base, principal: principal('bot', 'alice', {}, 1_030), mapped: [] });
    expect(c).toMatchObject({
      iss: 'https://warden.test',
      aud: 'https://api.internal',
      sub: 'alice',
      iat: 1_000,
      exp: 1_030,
      scope: 'read write',
      route: 'r',
      jti: 'j',
    });
    expect(c).not.toHaveProperty('approval');
    expect(buildClaims({ ...base, principal: principal('bot', null), mapped: [] }).sub).toBe('bot');
  });

  it('maps only allow-listed claims, and only small values', () => {
    const p = principal('bot', 'alice', { email: 'a@x', org: 'acme', big: 'x'.repeat(2000), obj: { a: 1 }, groups: ['a', 'b'] });
    const c = buildClaims({
      ...base,
      principal: p,
      mapped: [
        ['mail', 'email'],
        ['tenant', 'org'],
        ['big', 'big'],
        ['obj', 'obj'],
        ['groups', 'groups'],
        ['none', 'missing'],
      ],
    });
    expect(c).toMatchObject({ mail: 'a@x', tenant: 'acme', groups: ['a', 'b'] });
    for (const k of ['big', 'obj', 'none', 'email', 'org']) expect(c).not.toHaveProperty(k);
  });

  it('carries the approval evidence with decided_at in seconds', () => {
    const c = buildClaims({
      ...base,
      principal: principal('bot', 'alice'),
      mapped: [],
      approval: { id: 'ap1', approvedBy: 'alice', decidedAt: 1_700_000_000_500, digest: 'd'.repeat(64), via: 'review' },
    });
    expect(c.approval).toEqual({ id: 'ap1', approved_by: 'alice', decided_at: 1_700_000_000, digest: 'd'.repeat(64), via: 'review' });
  });
});
