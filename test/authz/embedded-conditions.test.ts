/**
 * Conditions on the embedded engine: parameter types converted like OpenFGA
 * converts them (int, uint, double, bool, string, duration, timestamp,
 * ipaddress, list<T>, map<T>; `any` via the JSON shape), tuple context overriding request context,
 * and every failure reported as OpenFGA error 2000.
 */

import { describe, expect, it } from 'vitest';
import type { TupleKey } from '../../src/authz/authorizer.js';
import { parseModelDsl } from '../../src/authz/model.js';
import { compileConditions, createEmbeddedEngine, fgaCodeOf, FGA_ERROR, IPAddress } from '../../src/authz/embedded/index.js';

const MODEL = `model
  schema 1.1
type user
type doc
  relations
    define viewer: [user with in_network, user with not_expired, user with spend, user with tags, user with flags, user with counts]
condition in_network(ip: ipaddress, cidr: string) {
  ip.in_cidr(cidr)
}
condition not_expired(now: timestamp, granted: timestamp, ttl: duration) {
  now < granted + ttl
}
condition spend(amount: double, limit: double, count: uint) {
  amount <= limit && count < 3u
}
condition tags(required: string, tags: list<string>) {
  required in tags
}
condition flags(flags: map<bool>) {
  flags["beta"] == true
}
condition counts(n: int) {
  n * 2 < 10
}
`;

const t = (user: string, name: string, context?: Record<string, unknown>): TupleKey => ({
  object: 'doc:1',
  relation: 'viewer',
  user,
  condition: context ? { name, context } : { name },
});

const engine = createEmbeddedEngine({
  model: parseModelDsl(MODEL),
  tuples: [
    t('user:net', 'in_network', { cidr: '10.0.0.0/8' }),
    t('user:time', 'not_expired', { granted: '2026-01-01T00:00:00Z', ttl: '1h30m' }),
    t('user:spend', 'spend', { limit: 100 }),
    t('user:tags', 'tags', { tags: ['a', 'b'] }),
    t('user:flags', 'flags'),
    t('user:counts', 'counts', { n: 2 }),
  ],
});

const check = (user: string, context?: Record<string, unknown>): boolean | number | undefined => {
  try {
    return engine.check({ user, relation: 'viewer', object: 'doc:1', context });
  } catch (err) {
    return fgaCodeOf(err);
  }
};

describe('condition parameter types', () => {
  it('ipaddress with in_cidr (IPv4, IPv6, IPv4-mapped)', () => {
    expect(check('user:net', { ip: '10.1.2.3' })).toBe(true);
    expect(check('user:net', { ip: '192.168.1.1' })).toBe(false);
    expect(check('user:net', { ip: '::ffff:10.0.0.1' })).toBe(true);
    expect(check('user:net', { ip: '2001:db8::1' })).toBe(false);
    expect(check('user:net', { ip: 'not-an-ip' })).toBe(FGA_ERROR.validation);
    expect(check('user:net', { ip: '010.0.0.1' })).toBe(FGA_ERROR.validation);
    const ip = IPAddress.parse('2001:db8::1');
    expect(ip?.inCidr('2001:db8::/32')).toBe(true);
    expect(ip?.inCidr('2001:db9::/32')).toBe(false);
  });

  it('timestamp plus duration (Go duration syntax)', () => {
    expect(check('user:time', { now: '2026-01-01T01:00:00Z' })).toBe(true);
    expect(check('user:time', { now: '2026-01-01T01:30:00Z' })).toBe(false);
    expect(check('user:time', { now: '2026-01-01T02:00:00+01:00' })).toBe(true);
    expect(check('user:time', { now: 'yesterday' })).toBe(FGA_ERROR.validation);
  });

  it('double and uint', () => {
    expect(check('user:spend', { amount: 99.5, count: 0 })).toBe(true);
    expect(check('user:spend', { amount: '100', count: 2 })).toBe(true);
    expect(check('user:spend', { amount: 100.01, count: 0 })).toBe(false);
    expect(check('user:spend', { amount: 1, count: -1 })).toBe(FGA_ERROR.validation);
    expect(check('user:spend', { amount: '1e400', count: 0 })).toBe(FGA_ERROR.validation);
  });

  it('int must be integral; list and map convert their items', () => {
    expect(check('user:counts')).toBe(true);
    expect(check('user:tags', { required: 'b' })).toBe(true);
    expect(check('user:tags', { required: 'c' })).toBe(false);
    expect(check('user:flags', { flags: { beta: true, other: false } })).toBe(true);
    expect(check('user:flags', { flags: { beta: 'yes' } })).toBe(FGA_ERROR.validation);
    // `any` exists in the JSON model shape (the DSL has no keyword for it).
    const any = compileConditions({ c: { name: 'c', expression: 'v == "yes"', parameters: { v: { type_name: 'TYPE_NAME_ANY' } } } }).get('c');
    expect(any?.evaluate({ v: 'yes' }, undefined)).toBe(true);
    expect(any?.evaluate({ v: 'no' }, undefined)).toBe(false);
  });
});

describe('context rules', () => {
  it('the tuple context overrides the request context', () => {
    // The tuple stores n = 2; a request value of 100 is ignored.
    expect(check('user:counts', { n: 100 })).toBe(true);
    expect(check('user:spend', { amount: 50, limit: 10, count: 0 })).toBe(true);
  });

  it('a missing parameter is an error, not a deny', () => {
    expect(check('user:net')).toBe(FGA_ERROR.validation);
    expect(check('user:spend', { amount: 1 })).toBe(FGA_ERROR.validation);
  });

  it('request keys that are not parameters are ignored', () => {
    expect(check('user:net', { ip: '10.0.0.1', unrelated: { deep: [1, 2] } })).toBe(true);
  });

  it('a user without any tuple is simply denied, conditions or not', () => {
    expect(check('user:nobody')).toBe(false);
  });
});

describe('condition compilation', () => {
  it('refuses expressions that are not boolean or use undeclared names', () => {
    expect(() => compileConditions({ c: { name: 'c', expression: 'x + 1', parameters: { x: { type_name: 'TYPE_NAME_INT' } } } })).toThrow(
      /condition c: expected a bool/,
    );
    expect(() => compileConditions({ c: { name: 'c', expression: 'y > 1', parameters: { x: { type_name: 'TYPE_NAME_INT' } } } })).toThrow(/condition c/);
    expect(() => compileConditions({ c: { name: 'c', expression: 'x > 1', parameters: { x: { type_name: 'TYPE_NAME_NOPE' } } } })).toThrow(
      /unsupported parameter type/,
    );
  });
});
