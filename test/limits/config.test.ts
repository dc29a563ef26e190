/**
 * `rate_limit:` and `budget:` in gateway.yaml: what loads, what `warden
 * validate` refuses (with the YAML path), and how amounts and keys resolve.
 */

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/issues.js';
import { parseConfig } from '../../src/gateway/config.js';
import { compileAmount, renderKey, resolveAmount } from '../../src/limits/compile.js';
import { compileTemplate } from '../../src/templates/template.js';
import { rateLimitField, rateLimitPolicy, sfString } from '../../src/limits/headers.js';

const base = (route: string) => `
identity: { dev_issuer: true }
routes:
  - name: pay
    match: { path: "/pay/**" }
    upstream: { url: "http://127.0.0.1:9" }
${route}
`;

function issues(text: string): string[] {
  try {
    parseConfig(text, { env: {} });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.path}: ${i.message}`);
    throw err;
  }
}

describe('limits config', () => {
  it('loads rate_limit and budget with their defaults', () => {
    const { config } = parseConfig(
      base(`    authorize: []
    rate_limit: { requests: 100, per: 1m }
    budget: { amount: "{body.amount}", max: 500, per: 24h }`),
      { env: {} },
    );
    expect(config.routes[0].rate_limit).toEqual({ key: '{agent}:{user}', requests: 100, per: 60_000 });
    expect(config.routes[0].budget).toEqual({ key: '{agent}:{user}', amount: '{body.amount}', max: 500, per: 86_400_000, over: 'deny' });
  });

  it('refuses what cannot be enforced, each with its YAML path', () => {
    const found = issues(
      base(`    authorize: []
    rate_limit: { key: "{nope}", requests: 0, per: 1m, extra: 1 }
    budget: { amount: "{body.amount} EUR", max: -1, per: 24h, over: maybe }`),
    );
    expect(found.some((i) => i.startsWith('routes[0].rate_limit.requests'))).toBe(true);
    expect(found.some((i) => i.startsWith('routes[0].rate_limit'))).toBe(true);
    expect(found.some((i) => i.startsWith('routes[0].budget.max'))).toBe(true);
    expect(found.some((i) => i.startsWith('routes[0].budget.over'))).toBe(true);
    const found2 = issues(
      base(`    authorize: []
    rate_limit: { key: "{nope}", requests: 1, per: 1m }
    budget: { amount: "{body.amount} EUR", max: 1, per: 24h, lease: 10ms }`),
    );
    expect(found2).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^routes\[0\]\.rate_limit\.key: unknown variable \{nope\}/),
        expect.stringMatching(/^routes\[0\]\.budget\.amount: must be a number or exactly one template/),
        expect.stringMatching(/^routes\[0\]\.budget\.lease: must be at least 1s/),
      ]),
    );
    expect(issues(base(`    public: true\n    budget: { amount: 1, max: 10, per: 1h }`))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^routes\[0\]\.budget: a budget needs an authenticated agent/)]),
    );
  });

  it('an amount is a constant or exactly one {ref} to a JSON number', () => {
    expect(compileAmount(1)).toEqual({ constant: 1 });
    expect(compileAmount('2.5')).toEqual({ constant: 2.5 });
    expect(() => compileAmount('{agent}')).toThrow(/cannot hold an amount/);
    expect(() => compileAmount('{query.amount}')).toThrow(/cannot hold an amount/);
    expect(() => compileAmount('x{body.a}')).toThrow(/exactly one template/);
    const src = compileAmount('{body.payment.amount}');
    expect(resolveAmount(src, { body: { payment: { amount: 12.5 } } })).toBe(12.5);
    for (const v of ['12', -1, Number.NaN, null, true, [1]]) {
      expect(() => resolveAmount(src, { body: { payment: { amount: v } } })).toThrow(expect.objectContaining({ code: 'bad_request' }));
    }
    // Never reads through prototypes.
    expect(() => resolveAmount(compileAmount('{body.constructor}'), { body: {} })).toThrow(expect.objectContaining({ code: 'bad_request' }));
  });

  it('keys: a missing agent or user is empty, any other missing value refuses the request', () => {
    expect(renderKey(compileTemplate('{agent}:{user}'), { agent: 'bot', user: null })).toBe('bot:');
    expect(renderKey(compileTemplate('acct:{path.account}'), { path: { account: 'a1' } })).toBe('acct:a1');
    expect(() => renderKey(compileTemplate('{body.account}'), { body: {} })).toThrow(expect.objectContaining({ code: 'bad_request' }));
    expect(() => renderKey(compileTemplate('{body.account}'), { body: { account: { x: 1 } } })).toThrow(expect.objectContaining({ code: 'bad_request' }));
  });

  it('formats the IETF fields as Structured Field strings with integer parameters', () => {
    expect(rateLimitPolicy('pay', 100, 60_000)).toBe('"pay";q=100;w=60');
    expect(rateLimitPolicy('fast', 10, 500)).toBe('"fast";q=10;w=1');
    expect(rateLimitField('pay', 0, 1_500)).toBe('"pay";r=0;t=2');
    expect(sfString('a"b\\c\u00e9\n')).toBe('"a\\"b\\\\c__"');
  });
});
