/**
 * Shared headless Chromium for end-to-end tests: Debian's `/usr/bin/chromium`
 * driven by playwright-core (no browser download). One launcher so every test
 * uses the same flags; callers close what they launch.
 */

import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export type { Browser, BrowserContext, Page };

/** Screenshots taken by browser tests (gitignored). */
export const SCREENSHOTS = join(process.cwd(), 'test', '.screenshots');

/** Where Debian installs Chromium; `CHROMIUM_PATH` overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags that keep a headless run quiet and offline apart from the pages we open. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launch headless Chromium; close it with `browser.close()` in `afterAll`. */
export async function launchBrowser(options: { timeoutMs?: number } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
    timeout: options.timeoutMs ?? 60_000,
  });
}
