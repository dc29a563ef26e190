/**
 * docs/configuration.md and gateway.schema.json are generated from the zod
 * schema (`npm run docs:config`). These tests fail when a committed file is
 * out of date or a key has no `.describe()` text, so the reference can never
 * drift from what Warden accepts.
 */

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReference, gatewayJsonSchema, gatewayJsonSchemaText } from '../../src/config/reference.js';
import { parseConfig } from '../../src/gateway/config.js';
import { REPO_ROOT } from '../support/gateway.js';

const read = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8');
const REGENERATE = 'out of date: run `npm run docs:config` and commit the result';

describe('generated configuration reference', () => {
  it('docs/configuration.md is what the schema generates', () => {
    expect(read('docs/configuration.md') === configReference().markdown, `docs/configuration.md is ${REGENERATE}`).toBe(true);
  });

  it('gateway.schema.json is what the schema generates', () => {
    expect(read('gateway.schema.json') === gatewayJsonSchemaText(), `gateway.schema.json is ${REGENERATE}`).toBe(true);
  });

  it('every key has a description (add .describe() in src/config/schema.ts)', () => {
    expect(configReference().undescribed.map((k) => k.key)).toEqual([]);
  });

  it('documents every key the schema has, including keys added later', () => {
    const { markdown } = configReference();
    const keys: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      const props = node.properties as Record<string, Record<string, unknown>> | undefined;
      if (!props || node.$ref) return;
      for (const [k, child] of Object.entries(props)) {
        keys.push(path ? `${path}.${k}` : k);
        if (!child.$ref) walk(child, path ? `${path}.${k}` : k);
      }
    };
    const schema = gatewayJsonSchema() as Record<string, unknown>;
    for (const [name, section] of Object.entries(schema.properties as Record<string, Record<string, unknown>>)) {
      walk((section.items as Record<string, unknown>) ?? section, name + (section.items ? '[]' : ''));
    }
    expect(keys.length).toBeGreaterThan(60);
    for (const key of keys) expect(markdown, key).toContain('`' + key + '`');
  });

  it('every example written in the schema is valid where it is shown', () => {
    // Durations and sizes are where a wrong example would mislead most: each must parse.
    const base = 'identity: { dev_issuer: true }\nauthz: { model: policies/model.fga }\n';
    let seen = 0;
    const walk = (node: unknown) => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      const kind = n['x-warden-type'];
      if ((kind === 'duration' || kind === 'size') && Array.isArray(n.examples)) {
        for (const value of n.examples) {
          const text =
            kind === 'duration'
              ? `${base}server: { shutdown_timeout: ${JSON.stringify(value)} }`
              : `${base}server: { limits: { body_bytes: ${JSON.stringify(value)} } }`;
          expect(() => parseConfig(text, { env: {}, baseDir: REPO_ROOT }), `${kind} example ${JSON.stringify(value)}`).not.toThrow();
          seen++;
        }
      }
      for (const v of Object.values(n)) walk(v);
    };
    walk(gatewayJsonSchema());
    expect(seen).toBeGreaterThan(20);
  });

  it('the shipped configs carry the yaml-language-server modeline pointing at the schema', () => {
    expect(read('gateway.yaml').split('\n')[0]).toBe('# yaml-language-server: $schema=./gateway.schema.json');
    expect(read('deploy/gateway.yaml').split('\n')[0]).toBe('# yaml-language-server: $schema=../gateway.schema.json');
    expect(read('docs/configuration.md')).toContain('# yaml-language-server: $schema=./gateway.schema.json');
  });
});
