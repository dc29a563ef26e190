/** `warden keygen`: print a fresh vault key. */

import { generateVaultKey } from '../vault/crypto.js';

export async function run(): Promise<void> {
  process.stdout.write(generateVaultKey() + '\n');
}
