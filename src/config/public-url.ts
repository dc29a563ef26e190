/** Where Warden is reached from outside, and where it keeps local state. */

import { resolve } from 'node:path';
import type { Config } from './schema.js';

/** Base URL for links: server.public_url, else the configured listen address (or the bound one for port 0). */
export function publicUrlOf(config: Config, boundUrl?: string): string {
  if (config.server.public_url) return config.server.public_url.replace(/\/+$/, '');
  const port = Number(config.server.listen.slice(config.server.listen.lastIndexOf(':') + 1));
  if (port === 0 && boundUrl) return boundUrl;
  return `http://${config.server.listen}`;
}

/**
 * WARDEN_DATA_DIR, default `.warden/`, relative to the config file's directory:
 * `warden start` and `warden token -c …` find the same dev-issuer key from any
 * working directory.
 */
export function dataDirOf(env: NodeJS.ProcessEnv, baseDir: string): string {
  return resolve(baseDir, env.WARDEN_DATA_DIR || '.warden');
}
