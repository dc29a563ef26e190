/**
 * `npm start` end to end: scripts/dev-start.mjs as a user runs it. The banner
 * appears only after Warden's own child said it listens; every command of the
 * printed "try this" is run as printed (the vault link in Chromium: the notes
 * API then receives the user's token, never the agent's); SIGTERM stops every
 * child; a port that is taken or a child that dies ends it with a non-zero exit
 * and a line naming the port and how to change it.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { launchBrowser, type Browser } from '../support/browser.js';
import { devSignInIfAsked } from '../support/login.js';

const ROOT = resolve(import.meta.dirname, '../..');
const EXAMPLE_PORTS = [9100, 9101, 9102];

interface Run {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<number | null>;
}

function runStart(env: Record<string, string>): Run {
  const proc = spawn(process.execPath, [join(ROOT, 'scripts/dev-start.mjs')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  process.once('exit', () => proc.kill('SIGKILL'));
  return { proc, out: () => out, err: () => err, exit };
}

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => r(port));
    });
  });
}

function occupy(port: number): Promise<Server> {
  return new Promise((r, reject) => {
    const s = createServer()
      .once('error', reject)
      .listen(port, '127.0.0.1', () => r(s));
  });
}

/** Run one printed shell command (bash, in the repo root, with TOKEN). */
function sh(command: string, token = '', expectedStatus = 0): string {
  const r = spawnSync('bash', ['-c', command], { cwd: ROOT, env: { ...process.env, TOKEN: token }, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== expectedStatus) throw new Error(`${command} → exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function childPids(pid: number): number[] {
  const r = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let listen: string;
let adminListen: string;
let browser: Browser;

beforeAll(async () => {
  listen = `127.0.0.1:${await freePort()}`;
  adminListen = `127.0.0.1:${await freePort()}`;
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('npm start', () => {
  it('prints the banner once its own Warden listens, and every printed step works, the vault included', async () => {
    const run = runStart({ WARDEN_LISTEN: listen, WARDEN_ADMIN_LISTEN: adminListen });
    try {
      await until('the banner', () => run.out().includes('Stop with Ctrl-C.'));
      const out = run.out();
      // Warden's own "listening" line came before the banner.
      expect(out.indexOf('"msg":"warden listening"')).toBeGreaterThan(-1);
      expect(out.indexOf('"msg":"warden listening"')).toBeLessThan(out.indexOf('Warden is running on'));
      expect(out).toContain(`Warden is running on http://${listen}`);
      expect(out).toContain(`Console (sign in as alice): http://${listen}/.warden/console`);

      const banner = out.slice(out.indexOf('Try this'));
      const lines = banner.split('\n').map((l) => l.trim());
      const tokenLine = lines.find((l) => l.startsWith('TOKEN=$('))!;
      const token = sh(`${tokenLine.slice('TOKEN='.length)}`.replace(/^\$\((.*)\)$/, '$1')).trim();
      expect(token.split('.')).toHaveLength(3);
      const curls = lines.filter((l) => l.startsWith('curl '));
      const explain = lines.find((l) => l.includes('cli.js explain'))!;

      // 1. identity + authorization
      const doc1 = JSON.parse(sh(curls[0], token)) as { id: string; credentials_seen: { authorization: string | null } };
      expect(doc1.id).toBe('1');
      expect(doc1.credentials_seen.authorization).toBeNull();
      expect(sh(curls[1], token)).toMatch(/^HTTP\/1\.1 401/);
      expect(sh(curls[2], token)).toMatch(/^HTTP\/1\.1 403/);

      // 2. token vault: 403 with a connect_url, linked in the browser, then the user's token arrives.
      const needLink = JSON.parse(sh(curls[3], token)) as { code: string; connect_url: string };
      expect(needLink.code).toBe('connection_required');
      const page = await browser.newPage();
      await page.goto(needLink.connect_url);
      await devSignInIfAsked(page, 'alice');
      await Promise.all([page.waitForURL(/127\.0\.0\.1:9102\/authorize/), page.click('#confirm button')]);
      expect(await page.locator('#title').textContent()).toBe('Notes Cloud: link your account');
      await page.getByRole('button', { name: 'Link as alice' }).click();
      await page.waitForURL(/\/\.warden\/callback\/notes-cloud/);
      expect(await page.locator('#title').textContent()).toBe('Account connected');
      await page.close();
      const me = JSON.parse(sh(curls[4], token)) as { notes_cloud_account: string; agent_token_seen: boolean; credentials_seen: { authorization: string } };
      expect(me).toMatchObject({ notes_cloud_account: 'alice', agent_token_seen: false });
      expect(me.credentials_seen.authorization).toMatch(/^Bearer nc_at_/);

      // 3. approval: held, then 202 with the review link printed in Warden's terminal.
      const held = sh(curls[5], token);
      expect(held).toMatch(/^HTTP\/1\.1 202/);
      const link = /(http:\/\/\S+\/\.warden\/approvals\/\S+\/review\?t=\S+)/;
      await until('the review link in the terminal', () => link.test(run.err()), 10_000);
      const review = link.exec(run.err())![1];
      const reviewPage = await browser.newPage();
      await reviewPage.goto(review);
      await devSignInIfAsked(reviewPage, 'alice');
      await reviewPage
        .getByRole('button', { name: /approve/i })
        .first()
        .click();
      await reviewPage.waitForLoadState();
      await reviewPage.close();
      expect(sh(curls[5], token)).toMatch(/^HTTP\/1\.1 200/);

      // the decision trace (explain exits 1 for a denial)
      const trace = sh(explain, token, 1);
      expect(trace).toContain('DENY  user:alice can_read doc:2');
      expect(trace).toMatch(/decision\s+DENY/);
    } finally {
      run.proc.kill('SIGTERM');
    }
    expect(await run.exit).toBe(0);
  }, 120_000);

  it('SIGTERM reaches every child', async () => {
    const run = runStart({ WARDEN_LISTEN: listen, WARDEN_ADMIN_LISTEN: adminListen });
    await until('the banner', () => run.out().includes('Stop with Ctrl-C.'));
    const kids = childPids(run.proc.pid!);
    expect(kids).toHaveLength(2);
    run.proc.kill('SIGTERM');
    expect(await run.exit).toBe(0);
    for (const pid of kids) expect(alive(pid)).toBe(false);
    // Every port is free again.
    for (const port of [...EXAMPLE_PORTS, Number(listen.split(':')[1])]) (await occupy(port)).close();
  }, 90_000);

  it('a taken port stops it with a non-zero exit and a line naming the port and the fix; no banner', async () => {
    const blocker = await occupy(Number(listen.split(':')[1]));
    try {
      const run = runStart({ WARDEN_LISTEN: listen, WARDEN_ADMIN_LISTEN: adminListen });
      expect(await run.exit).toBe(1);
      expect(run.err()).toContain(`port ${listen.split(':')[1]} (Warden's agent listener, ${listen}) is already in use`);
      expect(run.err()).toContain('WARDEN_LISTEN=');
      expect(run.out()).not.toContain('Warden is running');
    } finally {
      blocker.close();
    }
    const example = await occupy(9101);
    try {
      const run = runStart({ WARDEN_LISTEN: listen, WARDEN_ADMIN_LISTEN: adminListen });
      expect(await run.exit).toBe(1);
      expect(run.err()).toContain('port 9101 (the example notes API, 127.0.0.1:9101) is already in use');
      expect(run.out()).not.toContain('Warden is running');
    } finally {
      example.close();
    }
  }, 60_000);

  it('a child that dies stops everything with a non-zero exit', async () => {
    const run = runStart({ WARDEN_LISTEN: listen, WARDEN_ADMIN_LISTEN: adminListen });
    await until('the banner', () => run.out().includes('Stop with Ctrl-C.'));
    const kids = childPids(run.proc.pid!);
    const warden = kids.find((pid) => spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).stdout.includes('cli.js start'))!;
    process.kill(warden, 'SIGKILL');
    expect(await run.exit).not.toBe(0);
    expect(run.err()).toMatch(/warden exited unexpectedly \(SIGKILL\); stopping everything/);
    for (const pid of kids) expect(alive(pid)).toBe(false);
  }, 90_000);
});
