import { describe, expect, it } from 'vitest';
import type { Connection } from '../../src/vault/records.js';
import { coversScopes } from '../../src/vault/stage.js';

const connection = (scopes: string[]): Connection => ({
  user: 'alice',
  provider: 'github',
  accessToken: 'token',
  tokenType: 'Bearer',
  scopes,
  version: 1,
  status: 'active',
  createdAt: 0,
  updatedAt: 0,
});

describe("the vault warm path's scope check (coversScopes)", () => {
  it('answers like missingScopes, and from its memo only for the same connection and the same required list', () => {
    const conn = connection(['repo', 'read:user']);
    const required = ['repo'];
    expect(coversScopes(conn, required)).toBe(true);
    expect(coversScopes(conn, required)).toBe(true);
    // A reload makes the provider's list anew: a scope added there is checked, not taken from the memo.
    expect(coversScopes(conn, ['repo', 'admin:org'])).toBe(false);
    expect(coversScopes(conn, ['read:user'])).toBe(true);
    // A refreshed connection is a new object with its own scopes.
    const narrowed = connection(['read:user']);
    expect(coversScopes(narrowed, required)).toBe(false);
    expect(coversScopes(narrowed, required)).toBe(false);
    expect(coversScopes(conn, required)).toBe(true);
  });
});
