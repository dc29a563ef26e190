/**
 * Listen addresses from the environment: WARDEN_LISTEN and WARDEN_ADMIN_LISTEN
 * replace `server.listen` / `server.admin_listen` of any config file, so one
 * file serves every replica and a container image can bind its own interface.
 * Applied to the raw document before schema validation.
 */

import type { ConfigIssue } from './issues.js';

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** The environment variables that override config keys, for docs and `--help`. */
export const LISTEN_OVERRIDES = [
  { variable: 'WARDEN_LISTEN', key: 'listen', nullable: false },
  { variable: 'WARDEN_ADMIN_LISTEN', key: 'admin_listen', nullable: true },
] as const;

/** Apply the overrides to the parsed YAML (mutated); a malformed value is an issue, never ignored. */
export function applyEnvOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): void {
  for (const { variable, key, nullable } of LISTEN_OVERRIDES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    let next: string | null;
    if (nullable && value === 'off') next = null;
    else if (HOST_PORT.test(value)) next = value;
    else {
      issues.push({ path: `server.${key}`, message: `${variable} must be host:port${nullable ? ' or off' : ''} (got ${JSON.stringify(value)})` });
      continue;
    }
    const server = raw.server;
    if (server === undefined || server === null) raw.server = { [key]: next };
    else if (typeof server === 'object' && !Array.isArray(server)) (server as Record<string, unknown>)[key] = next;
  }
}
