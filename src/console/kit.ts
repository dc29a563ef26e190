/**
 * What every console view gets from the console's routes: the base path, the
 * signed-in person (or the answer to send instead), the checked form of a
 * POST, and HTML answers with the console's headers. Views live in
 * `views/`, one module per page, and register their own routes.
 */

import type { Context } from 'hono';
import type { SignedInPerson } from '../http/session.js';
import type { Runtime } from '../core/runtime.js';

export interface ConsoleKit {
  rt: Runtime;
  /** `<public path>/.warden/console` */
  base: string;
  /** The signed-in person, or the answer to send instead (sign in first; 503 without sign-in). */
  person(c: Context): Promise<SignedInPerson | Response>;
  /**
   * A POST from this origin with this session's console token, by whoever
   * `guard` (default: `person`) lets in: who posted what, or the refusal page.
   */
  posted(c: Context, guard?: (c: Context) => Promise<SignedInPerson | Response>): Promise<{ who: SignedInPerson; form: Record<string, string> } | Response>;
  /**
   * Whether the session `who` came with still holds (not signed out, not expired), looked up
   * again rather than from this request's cache: for event streams, which outlive a click.
   * False when it cannot be checked.
   */
  stillSignedIn(c: Context, who: SignedInPerson): Promise<boolean>;
  /** This session's console CSRF token. */
  csrf(who: SignedInPerson): string;
  /** An HTML answer with the console's headers. */
  page(c: Context, status: number, body: string): Response;
  /** The refusal / not-found page. */
  message(c: Context, status: number, who: SignedInPerson, title: string, text: string): Response;
}
