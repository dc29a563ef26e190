import { describe, expect, it } from 'vitest';
import type { RouteConfig } from '../config/schema.js';
import { captureInputs, compileRouteInputs, fieldsFor, rebuildInputs } from './inputs.js';

const route = {
  name: 'pay',
  match: { path: '/pay/:account' },
  upstream: { url: 'http://127.0.0.1:1' },
  authorize: {
    mode: 'all',
    checks: [{ user: 'user:{user}', relation: 'can_pay', object: 'account:{path.account}', context: { amount: '{body.amount}', region: '{claims.region}' } }],
  },
  approval: [{ when: 'body.amount > 100 && request.headers["x-env"] == "prod" && request.headers.authorization != ""', message: 'Pay {body.to.iban}' }],
  mcp: {
    other_tools: 'deny',
    tools: { read_file: { authorize: { mode: 'all', checks: [{ user: 'user:{user}', relation: 'r', object: 'file:{args.path}' }] } } },
  },
} as unknown as RouteConfig;

describe('recorded inputs', () => {
  const [plan] = compileRouteInputs([route]);

  it('lists exactly the fields templates and when rules read, never a credential header', () => {
    expect(plan.fields).toEqual(['body.amount', 'body.to.iban', 'claims.region', 'headers.x-env']);
    expect(fieldsFor(plan, 'read_file')).toEqual(['args.path', 'body.amount', 'body.to.iban', 'claims.region', 'headers.x-env']);
    expect(fieldsFor(plan, 'other')).toEqual(plan.fields);
  });

  it('captures only those values, and says which were absent', () => {
    const got = captureInputs(plan.fields, {
      body: { amount: 120, memo: 'private text', to: { iban: 'DE00' } },
      claims: { sub: 'alice', email: 'a@example.com' },
      headers: { 'x-env': 'prod', authorization: 'Bearer secret' },
    });
    expect(got).toEqual({ input: { 'body.amount': 120, 'body.to.iban': 'DE00', 'headers.x-env': 'prod' }, input_missing: ['claims.region'] });
    expect(JSON.stringify(got)).not.toMatch(/private text|secret|a@example/);
  });

  it('lists a value longer than 512 bytes of JSON as missing, a string as an object (the agent chooses its length)', () => {
    const fields = ['body.to', 'body.tags', 'body.note'];
    const long = 'x'.repeat(600);
    expect(captureInputs(fields, { body: { to: long, tags: [long], note: 'y'.repeat(500) }, headers: {} })).toEqual({
      input: { 'body.note': 'y'.repeat(500) },
      input_missing: ['body.to', 'body.tags'],
    });
    // Measured as JSON: escapes count.
    expect(captureInputs(['body.to'], { body: { to: '"'.repeat(300) }, headers: {} })).toEqual({ input_missing: ['body.to'] });
  });

  it('rebuilds nested values (own properties only)', () => {
    const r = rebuildInputs({
      'body.to.iban': 'DE00',
      'body.amount': 1,
      'args.path': '/x',
      'claims.region': 'eu',
      'headers.x-env': 'prod',
      'body.__proto__.polluted': 1,
    });
    expect(r.body).toMatchObject({ amount: 1, to: { iban: 'DE00' } });
    expect(r.args).toEqual({ path: '/x' });
    expect(r.claims).toEqual({ region: 'eu' });
    expect(r.headers).toEqual({ 'x-env': 'prod' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
