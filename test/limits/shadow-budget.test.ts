/**
 * Limits are not shadowed: on a route in shadow mode a budget with
 * `over: approve` must not become "no budget" because shadow mode holds
 * nothing. The over-budget request is refused (403 budget_exceeded) and never
 * forwarded; the same traffic on the enforce twin is held for approval.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml } from '../support/config.js';

const route = (name: string, mode: string) => `
  - name: ${name}
    mode: ${mode}
    match: { path: "/${name}/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /${name} }
    authorize: []
    budget: { key: "{user}", amount: "{body.amount}", max: 100, per: 24h, over: approve }`;

const config = `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures')}
approvals:
  hold: 50ms
routes:${route('enf', 'enforce')}${route('sh', 'shadow')}
`;

describe('a budget with over: approve on a shadow route', () => {
  let upstream: Upstream;
  let w: WardenHandle;

  beforeAll(async () => {
    upstream = await startUpstream();
    w = await startWarden({ config, env: { UPSTREAM_URL: upstream.url }, logLevel: 'warn' });
  });
  afterAll(async () => {
    await w?.close();
    await upstream?.close();
  });

  const pay = (route: string, token: string, amount: number) =>
    fetch(`${w.url}/${route}/charges`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount }),
    });

  it('is still enforced: over the budget is refused, never forwarded unasked', async () => {
    const token = await w.token('bot', 'alice');
    for (const route of ['enf', 'sh']) {
      expect((await pay(route, token, 60)).status).toBe(200);
    }
    // Enforce: 60 + 60 > 100 is held for the user.
    expect((await pay('enf', token, 60)).status).toBe(202);

    const before = upstream.requests.length;
    const over = await pay('sh', token, 60);
    expect(over.status).toBe(403);
    expect(await over.json()).toMatchObject({ code: 'budget_exceeded', budget: 'sh', amount: 60, max: 100, spent: 60 });
    expect(upstream.requests.length).toBe(before);

    // Within the budget the shadow route still forwards.
    expect((await pay('sh', token, 40)).status).toBe(200);
    expect(upstream.requests.length).toBe(before + 1);
  });
});
