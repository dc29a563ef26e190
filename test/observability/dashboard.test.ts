/**
 * deploy/grafana-dashboard.json queries only metrics that exist: every
 * `warden_*` family it names is emitted somewhere in src/, and every
 * `process_*` / `nodejs_*` one is in a live scrape of /metrics.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { REPO_ROOT } from '../support/gateway.js';

const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/grafana-dashboard.json'), 'utf8')) as {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
};

function sources(dir: string): string {
  let text = '';
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) text += sources(path);
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) text += readFileSync(path, 'utf8');
  }
  return text;
}

/** Metric families in a PromQL expression (histogram series suffixes removed). */
function families(expr: string): string[] {
  return [...expr.matchAll(/\b((?:warden|process|nodejs)_[a-z0-9_]+)/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, ''));
}

describe('Grafana dashboard', () => {
  let warden: WardenHandle;
  beforeAll(async () => {
    warden = await startWarden({ config: 'identity: { dev_issuer: true }\nroutes: []\n' });
  });
  afterAll(async () => {
    await warden?.close();
  });

  it('has panels, each with a query', () => {
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(10);
    for (const p of dashboard.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
  });

  it('queries only metrics Warden emits', async () => {
    const src = sources(join(REPO_ROOT, 'src'));
    const scrape = await (await fetch(`${warden.adminUrl}/metrics`)).text();
    const named = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => families(t.expr))));
    expect(named.size).toBeGreaterThan(10);
    for (const name of named) {
      if (name.startsWith('warden_') && name !== 'warden_build_info') expect(src, name).toContain(`'${name}'`);
      else expect(scrape, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
  });
});
