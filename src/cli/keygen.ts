/** `warden keygen`: print a fresh vault key; `warden keygen --vapid`: a VAPID key pair for approvals.push (as environment lines). */

import { parseArgs } from 'node:util';
import { generateVapidKeys } from '../approvals/push/vapid.js';
import { generateVaultKey } from '../vault/crypto.js';

export async function run(argv: string[] = []): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { vapid: { type: 'boolean' } } });
  if (values.vapid) {
    const { publicKey, privateKey } = generateVapidKeys();
    process.stdout.write(`WARDEN_VAPID_PUBLIC_KEY=${publicKey}\nWARDEN_VAPID_PRIVATE_KEY=${privateKey}\n`);
    return;
  }
  process.stdout.write(generateVaultKey() + '\n');
}
