/**
 * The documentation as a small site: a short README whose links all resolve,
 * every docs/ page reachable from it, relative links between pages valid, and
 * no page naming the hosts measurements were taken on.
 */

import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { REPO_ROOT } from '../support/gateway.js';

const pages = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const read = (f: string) => readFileSync(join(REPO_ROOT, f), 'utf8');
const links = (f: string) => [...read(f).matchAll(/\]\(([^)\s#]+)(#[^)\s]*)?\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l));

describe('documentation site', () => {
  it('README is short: what Warden is, a picture, the quick start, links', () => {
    const readme = read('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('npm test');
  });

  it('every docs/ page is linked from the README', () => {
    const linked = new Set(links('README.md'));
    for (const page of pages.filter((p) => p.startsWith('docs/'))) expect([...linked], `${page} is not linked from README.md`).toContain(page);
  });

  it('every relative link of every page resolves to a file', () => {
    for (const page of pages) {
      for (const link of links(page)) expect(existsSync(resolve(REPO_ROOT, dirname(page), link)), `${page} → ${link}`).toBe(true);
    }
  });

  it('no page names the machine it was measured or built on', () => {
    for (const page of pages) expect(read(page), page).not.toMatch(/this machine|dev machine|2-core machine|Xeon|EPYC|Intel\(R\)|Ryzen/i);
  });
});
