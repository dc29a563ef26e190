/**
 * How configuration problems are reported: every check (schema, the config's
 * own, each feature's) returns ConfigIssues; loading collects them all and
 * throws one ConfigError listing every problem with its YAML path and line.
 */

import { WardenError } from '../core/errors.js';
import type { Config } from './schema.js';

/** One problem of a config file. */
export interface ConfigIssue {
  /** YAML path such as `routes[2].match.path`. */
  path: string;
  line?: number;
  message: string;
}

/** A check over a schema-valid config; returns every problem it finds, never throws. */
export type ConfigCheck = (config: Config, env: NodeJS.ProcessEnv) => ConfigIssue[];

/** Invalid configuration; `issues` lists every problem found. */
export class ConfigError extends WardenError {
  /**
   * The config as far as it could be read: when only cross-checks failed, the
   * schema-valid config; when the schema failed, the config with the offending
   * values left out, had that made it schema-valid (its cross-checks are
   * already in `issues`). `warden validate` goes on to check policies against
   * it, so one run reports everything. Never used to serve.
   */
  partial?: { config: Config; baseDir: string; lineOf(path: ReadonlyArray<string | number>): number | undefined };

  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super('config_invalid', `${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n` + issues.map((i) => '  ' + formatIssue(i)).join('\n'), {
      reason: 'config_invalid',
    });
    this.name = 'ConfigError';
  }
}

/** `path (line N): message`. */
export function formatIssue(i: ConfigIssue): string {
  return `${i.path || '(root)'}${i.line ? ` (line ${i.line})` : ''}: ${i.message}`;
}

/** `['routes', 2, 'match']` → `routes[2].match`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** `routes[2].match` → `['routes', 2, 'match']`. */
export function parsePath(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return out;
}
