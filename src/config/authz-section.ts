/**
 * The `authz` part of a gateway.yaml on its own, for commands that talk to
 * OpenFGA before Warden can start (`warden fga push` / `pull`): the store and
 * model ids they print may not be set yet, and nothing outside `authz` is
 * needed, so only problems inside `authz` count.
 */

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, formatPath, type ConfigIssue } from './issues.js';
import { substitute } from './load.js';
import { authzSchema } from './schema.js';
import type { z } from 'zod';

/** Keys push and pull may find unset: they come from the flags, the environment or the push itself. */
const MAY_BE_UNSET = new Set(['authz.openfga.store_id', 'authz.openfga.model_id', 'authz.openfga.api_url', 'authz.openfga.api_token']);

export interface AuthzSection {
  authz: z.output<typeof authzSchema>;
  baseDir: string;
  /** authz.openfga values as written (after substitution), missing ones absent. */
  openfga: { api_url?: string; store_id?: string; model_id?: string; api_token?: string };
}

/** Read and check `authz` of `file`; throws ConfigError naming every problem inside it. */
export function loadAuthzSection(file: string, env: NodeJS.ProcessEnv = process.env): AuthzSection {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({ path: '', line: e.linePos?.[0]?.line, message: e.message.split('\n')[0] })),
    );
  }
  const all: ConfigIssue[] = [];
  substitute(doc, env, all, (n) => (n.range ? counter.linePos(n.range[0]).line : undefined));
  const issues = all.filter((i) => (i.path === 'authz' || i.path.startsWith('authz.')) && !MAY_BE_UNSET.has(i.path));
  const raw = (doc.toJS() ?? {}) as { authz?: Record<string, unknown> };
  const section = { ...(raw.authz ?? {}) };
  const openfga: AuthzSection['openfga'] = {};
  if (section.openfga && typeof section.openfga === 'object') {
    const given = { ...(section.openfga as Record<string, unknown>) };
    for (const key of ['api_url', 'store_id', 'model_id', 'api_token'] as const) {
      if (typeof given[key] === 'string' && given[key] !== '') openfga[key] = given[key] as string;
      else delete given[key];
    }
    // The schema wants an api_url; push and pull take it from elsewhere when unset.
    section.openfga = { api_url: 'http://unset.invalid', ...given };
  }
  const parsed = authzSchema.safeParse(section);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = formatPath(['authz', ...issue.path.filter((p): p is string | number => typeof p !== 'symbol')]);
      issues.push({ path, message: issue.code === 'unrecognized_keys' ? `unknown key ${issue.keys.join(', ')}` : issue.message });
    }
  }
  if (issues.length) throw new ConfigError(file, issues);
  return { authz: (parsed as { data: AuthzSection['authz'] }).data, baseDir: dirname(resolve(file)), openfga };
}
