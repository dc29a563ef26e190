/**
 * Browser helpers for Warden's sign-in: the development login page (dev
 * issuer) and the connect confirmation. Pages are playwright-core pages.
 */

import type { Page, Response } from 'playwright-core';

/** If `page` is on Warden's development sign-in page, sign in as `user` and wait until it has left it. */
export async function devSignInIfAsked(page: Page, user: string): Promise<void> {
  if (!new URL(page.url()).pathname.endsWith('/.warden/login')) return;
  await page.fill('#user', user);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.endsWith('/.warden/login') && !u.pathname.endsWith('/.warden/login/dev')),
    page.click('#dev-login button'),
  ]);
}

/**
 * Open a `connect_url` as `user` (signing in on the dev login page when asked),
 * check the confirmation page, and press its button. Resolves with the answer
 * of the last navigation (the provider callback, or whatever stopped the flow).
 */
export async function connectAs(page: Page, connectUrl: string, user: string): Promise<Response | null> {
  await page.goto(connectUrl);
  await devSignInIfAsked(page, user);
  const [answer] = await Promise.all([page.waitForNavigation(), page.click('#confirm button')]);
  // The POST answers 303 to the provider, which sends the browser on to Warden's callback.
  await page.waitForLoadState('load');
  return answer;
}
