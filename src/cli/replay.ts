/** `warden replay` (being built: see docs/policy-testing.md). */

import { fail } from './common.js';

export function run(): Promise<void> {
  fail('warden replay: not implemented yet', 2);
}
