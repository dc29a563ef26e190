import { describe, expect, it } from 'vitest';
import { celReadPaths, grantBinding } from './grant-binding.js';
import { templatePaths } from '../templates/template.js';
import type { CelVars } from './rules.js';

const cel = (body: unknown): CelVars => ({
  request: { method: 'POST', path: '/p', query: {}, headers: {} },
  body,
  path: {},
  claims: {},
  agent: 'bot',
  user: 'alice',
  tool: null,
  args: null,
});

describe('celReadPaths', () => {
  it.each([
    ['body.amount > 50', [['body', 'amount']]],
    [
      'has(body.amount) && body.amount > 100',
      [
        ['body', 'amount'],
        ['body', 'amount'],
      ],
    ],
    ['request.method == "DELETE"', [['request', 'method']]],
    ['body.items.exists(i, i.price > 10)', [['body', 'items']]],
    ['body["amount"] > 5', [['body']]],
    ['size(body . to) > 0', [['body', 'to']]],
    ['x.body == 1 || somebody.y', []],
    ['args.path.startsWith("/etc")', [['args', 'path']]],
  ])('%s reads %j', (expr, paths) => {
    expect(celReadPaths(expr)).toEqual(paths);
  });

  it('template references', () => {
    expect(templatePaths('Pay {body.amount} to {body.to} ({path.id})')).toEqual([
      ['body', 'amount'],
      ['body', 'to'],
      ['path', 'id'],
    ]);
  });
});

describe('grantBinding', () => {
  const rule = { when: 'body.amount > 50', message: 'Pay {body.amount} to {body.to}' };
  const shown = (body: unknown) => ({ body });
  const bind = (body: Record<string, unknown>, r: typeof rule = rule, source = 'routes[0].approval[0]') =>
    grantBinding(source, r as never, cel(body), shown(body));

  it('is equal for the same read and shown values, whatever else the body holds', () => {
    expect(bind({ amount: 60, to: 'carol' })).toBe(bind({ amount: 60, to: 'carol', memo: 'x' }));
  });

  it('differs when a read or shown value differs, or is absent', () => {
    const base = bind({ amount: 60, to: 'carol' });
    expect(bind({ amount: 999999, to: 'carol' })).not.toBe(base);
    expect(bind({ amount: 60, to: 'mallory' })).not.toBe(base);
    expect(bind({ amount: 60 })).not.toBe(base);
    expect(bind({ amount: '60', to: 'carol' })).not.toBe(base);
  });

  it('differs for another rule', () => {
    expect(bind({ amount: 60, to: 'carol' }, rule, 'routes[0].approval[1]')).not.toBe(bind({ amount: 60, to: 'carol' }));
  });
});
