/**
 * Shadow mode through a real Warden: the same traffic sent to an enforce route
 * and to its shadow twin. The shadow route never refuses and never holds (the
 * upstream gets every request), and what it records — decision log and
 * warden_shadow_decisions_total — is exactly what the enforce route decided.
 * Authentication still applies on a shadow route.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { devPolicyYaml } from '../support/config.js';

const route = (name: string, mode?: string) => `
  - name: ${name}${mode ? `\n    mode: ${mode}` : ''}
    match: { path: "/${name}/:account/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /${name} }
    authorize: [{ user: "user:{user}", relation: can_pay, object: "account:{path.account}" }]
    approval: { when: 'request.method == "DELETE"', message: "Delete in {path.account}" }`;

const config = (file: string, globalMode?: string) => `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures')}
approvals:
  hold: 50ms
audit:
  decisions: { sink: file, path: "${file}" }
${globalMode ? `mode: ${globalMode}` : ''}
routes:
${route('enf', globalMode ? 'enforce' : undefined).slice(1)}${route('sh', globalMode ? undefined : 'shadow')}
`;

describe('shadow mode', () => {
  let upstream: Upstream;
  let dir: string;
  beforeAll(async () => {
    upstream = await startUpstream();
    dir = mkdtempSync(join(tmpdir(), 'warden-shadow-'));
  });
  afterAll(async () => {
    await upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const how of ['route mode: shadow', 'top-level mode: shadow']) {
    it(`records what enforce decides, never blocks or holds (${how})`, async () => {
      const file = join(dir, `${how.split(' ')[0]}.jsonl`);
      const w: WardenHandle = await startWarden({
        config: config(file, how.startsWith('top') ? 'shadow' : undefined),
        env: { UPSTREAM_URL: upstream.url },
        logLevel: 'warn',
      });
      let metrics = '';
      const traffic: Array<[string, string, string]> = [
        ['GET', 'alice', 'acme'], // allow
        ['GET', 'bob', 'acme'], // deny
        ['DELETE', 'alice', 'acme'], // hold
        ['DELETE', 'bob', 'acme'], // deny (authorize comes first)
        ['POST', 'bob', 'bobco'], // allow
      ];
      const enforced: number[] = [];
      const shadowed: number[] = [];
      try {
        const tokens: Record<string, string> = { alice: await w.token('bot', 'alice'), bob: await w.token('bot', 'bob') };
        for (const [method, user, account] of traffic) {
          const send = async (r: string) => {
            const res = await fetch(`${w.url}/${r}/${account}/x`, { method, headers: { authorization: `Bearer ${tokens[user]}` } });
            await res.arrayBuffer();
            return res.status;
          };
          enforced.push(await send('enf'));
          const before = upstream.requests.length;
          shadowed.push(await send('sh'));
          expect(upstream.requests.length, `${method} ${user} reached the upstream`).toBe(before + 1);
        }
        // Authentication is not shadowed.
        expect((await fetch(`${w.url}/sh/acme/x`)).status).toBe(401);
        metrics = await (await fetch(`${w.adminUrl}/metrics`)).text();
      } finally {
        await w.close();
      }
      expect(enforced).toEqual([200, 403, 202, 403, 200]);
      expect(shadowed).toEqual([200, 200, 200, 200, 200]);

      const recs = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
        .filter((r) => r.t === 'decision');
      const enf = recs.filter((r) => r.route === 'enf');
      const sh = recs.filter((r) => r.route === 'sh' && r.status !== 401);
      expect(enf.map((r) => r.decision)).toEqual(['allow', 'deny', 'pending', 'deny', 'allow']);
      const asShadow = { allow: 'allow', deny: 'would_deny', pending: 'would_hold' } as Record<string, string>;
      expect(sh.map((r) => r.shadow.outcome)).toEqual(enf.map((r) => asShadow[r.decision]));
      expect(sh.every((r) => r.mode === 'shadow' && r.decision === 'allow' && r.status === 200)).toBe(true);
      expect(enf.every((r) => r.mode === undefined && r.shadow === undefined)).toBe(true);
      // The same checks with the same answers.
      expect(sh.map((r) => r.checks)).toEqual(enf.map((r) => r.checks));
      expect(sh[1].shadow).toMatchObject({ code: 'forbidden', reason: 'check_denied' });
      expect(metrics).toMatch(/warden_shadow_decisions_total\{outcome="allow",route="sh"\} 2\b/);
      expect(metrics).toMatch(/warden_shadow_decisions_total\{outcome="would_deny",route="sh"\} 2\b/);
      expect(metrics).toMatch(/warden_shadow_decisions_total\{outcome="would_hold",route="sh"\} 1\b/);
      expect(metrics).not.toMatch(/warden_shadow_decisions_total\{[^}]*route="enf"/);
      // The refused token (401) was decided by authentication, which shadow mode does not touch.
      const anon = recs.find((r) => r.route === 'sh' && r.status === 401);
      expect(anon).toMatchObject({ decision: 'deny' });
      expect(anon.shadow).toBeUndefined();
    });
  }
});
