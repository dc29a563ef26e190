/**
 * `warden validate` as a user runs it (the built binary): every problem once,
 * with the line to fix and, where a typo is likely, what was probably meant.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuiltCli, runCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';

let dir: string;
const env = () => {
  const e: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(e)) if (/^(WARDEN_|REDIS_|OIDC_|FGA_|VAULT_|APPROVAL_|NOTES_|MCP_)/.test(k)) delete e[k];
  return e;
};
const validate = async (name: string, text: string, extraEnv: NodeJS.ProcessEnv = {}) => {
  writeFileSync(join(dir, name), text);
  return runCli(['validate', '-c', name], { cwd: dir, env: { ...env(), ...extraEnv } });
};
const problems = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('  '));

beforeAll(() => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-validate-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const model = join(REPO_ROOT, 'policies/model.fga');

describe('warden validate', () => {
  it('suggests what a misspelled key, a {x} parameter, an unknown or lower-case method probably meant; one run, right lines', async () => {
    const r = await validate(
      'typos.yaml',
      [
        'server:',
        '  lisen: 127.0.0.1:8080', // line 2
        'identity: { dev_issuer: true }',
        `authz: { model: ${model} }`,
        'routes:',
        '  - name: docs',
        '    match: { path: "/docs/{doc}", methods: [GETS, post] }', // line 7
        '    upstream: { url: "http://127.0.0.1:9", strip_prefx: /docs }', // line 8
        '    authorize:',
        '      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }',
        '      - { user: "user:{user}", relation: can_read, object: "doc:{path.id}" }', // line 11
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(1);
    const lines = problems(r.stderr);
    expect(lines).toContain('  server.lisen (line 2): unknown key — did you mean listen?');
    expect(lines).toContain(
      '  routes[0].match.path (line 7): "{doc}" is not a path parameter: route patterns write parameters as ":name" — did you mean ":doc"?',
    );
    expect(lines).toContain('  routes[0].match.methods[0] (line 7): unknown HTTP method "GETS" — did you mean GET?');
    expect(lines).toContain('  routes[0].match.methods[1] (line 7): methods are upper case — did you mean POST?');
    expect(lines).toContain('  routes[0].upstream.strip_prefx (line 8): unknown key — did you mean strip_prefix?');
    // {path.doc} is what "{doc}" was meant to be; {path.id} names nothing.
    expect(lines.filter((l) => l.includes('{path.doc}'))).toEqual([]);
    expect(lines.some((l) => l.startsWith('  routes[0].authorize[1].object (line 11): {path.id} names no parameter of the route'))).toBe(true);
    // Each problem once.
    expect(new Set(lines).size).toBe(lines.length);
    expect(lines.filter((l) => l.includes('methods[1]'))).toHaveLength(1);
  });

  it('{path.x} must name a :x of the route pattern, in checks and approval messages', async () => {
    const r = await validate(
      'params.yaml',
      `identity: { dev_issuer: true }
authz: { model: ${model} }
routes:
  - name: repos
    match: { path: "/repos/:owner/:repo/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.owner}" }
    approval: { message: "Delete {path.ownr}/{path.repo}" }
`,
    );
    expect(r.code).toBe(1);
    expect(problems(r.stderr)).toEqual([
      '  routes[0].approval.message (line 9): {path.ownr} names no parameter of the route: the pattern "/repos/:owner/:repo/**" has :owner, :repo — did you mean {path.owner}?',
    ]);
  });

  it('names every missing environment variable once, without repeating what the schema says about the empty value', async () => {
    const r = await runCli(['validate', '-c', join(REPO_ROOT, 'deploy/gateway.yaml')], { cwd: dir, env: { ...env(), NODE_ENV: 'production' } });
    expect(r.code).toBe(1);
    const lines = problems(r.stderr);
    expect(lines.every((l) => l.includes('is not set'))).toBe(true);
    const paths = lines.map((l) => l.trim().split(' ')[0]);
    expect(new Set(paths).size).toBe(paths.length);
    expect(lines.some((l) => l.includes('environment variable REDIS_URL is not set'))).toBe(true);
  });

  it('schema problems, cross-checks, every refused tuple and the names routes use: all in one run, each once', async () => {
    writeFileSync(
      join(dir, 'bad-tuples.yaml'),
      [
        '- { user: "user:alice", relation: owner, object: "doc:1" }',
        '- { user: "user:bob", relation: ownr, object: "doc:2" }',
        '- { user: "usr:carol", relation: owner, object: "doc:3" }',
        '',
      ].join('\n'),
    );
    const r = await validate(
      'everything.yaml',
      [
        'server:',
        '  lisen: 127.0.0.1:8080', // line 2: schema (unknown key)
        '  workers: 2', // line 3: cross-check (needs a shared store)
        'identity: { dev_issuer: true }',
        `authz: { model: ${join(REPO_ROOT, 'test/core/fixtures/model.fga')}, tuples: bad-tuples.yaml }`, // line 5
        'routes:',
        '  - name: docs',
        '    match: { path: "/docs/:doc", methods: [GETS] }', // line 8: schema (method)
        '    upstream: { url: "http://127.0.0.1:9" }',
        '    authorize:',
        '      - { user: "user:{user}", relation: can_reed, object: "doc:{path.doc}" }', // line 11: model names
        '      - { user: "user:{user}", relation: can_read, object: "doc:{path.id}" }', // line 12: route check
        '  - name: docs', // line 13: cross-check (duplicate name)
        '    match: { path: "/other" }',
        '    upstream: { url: "http://127.0.0.1:9" }',
        '    public: true',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(1);
    const lines = problems(r.stderr);
    expect(lines).toContain('  server.lisen (line 2): unknown key — did you mean listen?');
    expect(lines).toContain('  routes[0].match.methods[0] (line 8): unknown HTTP method "GETS" — did you mean GET?');
    expect(lines.some((l) => l.startsWith('  server.workers (line 3): several workers need a shared store'))).toBe(true);
    expect(lines).toContain('  routes[1].name (line 13): duplicate route name docs');
    expect(lines.some((l) => l.startsWith('  routes[0].authorize[1].object (line 12): {path.id} names no parameter'))).toBe(true);
    expect(lines.filter((l) => l.startsWith('  authz.tuples (line 5): '))).toEqual([
      `  authz.tuples (line 5): ${join(dir, 'bad-tuples.yaml')}:2: tuple 2 (doc:2#ownr@user:bob): relation 'doc#ownr' not found`,
      `  authz.tuples (line 5): ${join(dir, 'bad-tuples.yaml')}:3: tuple 3 (doc:3#owner@usr:carol): type 'usr' not found`,
    ]);
    expect(lines).toContain('  routes[0].authorize[0].relation (line 11): type doc has no relation can_reed');
    expect(lines).toHaveLength(8);
    expect(r.stderr).toContain('8 problems');
  });

  it('cross-check problems alone (no schema problem) do not hide the names routes use in the model', async () => {
    const text = [
      'identity: { dev_issuer: true }', // line 1: cross-check under NODE_ENV=production
      `authz: { model: ${join(REPO_ROOT, 'test/core/fixtures/model.fga')} }`,
      'routes:',
      '  - name: docs',
      '    match: { path: "/docs/:doc" }',
      '    upstream: { url: "http://127.0.0.1:9" }',
      '    authorize:',
      '      - { user: "user:{user}", relation: can_fly, object: "doc:{path.doc}" }', // line 8: not in the model
      '',
    ].join('\n');
    const r = await validate('cross-check-only.yaml', text, { NODE_ENV: 'production' });
    expect(r.code).toBe(1);
    expect(problems(r.stderr)).toEqual([
      '  identity.dev_issuer (line 1): the dev issuer must not be enabled when NODE_ENV=production',
      '  routes[0].authorize[0].relation (line 8): type doc has no relation can_fly',
    ]);
    expect(r.stderr).toContain('2 problems');
    // `warden start` still refuses that config, naming the cross-check problem.
    const start = await runCli(['start', '-c', 'cross-check-only.yaml'], { cwd: dir, env: { ...env(), NODE_ENV: 'production', WARDEN_LISTEN: '127.0.0.1:0' } });
    expect(start.code).toBe(1);
    expect(start.stderr).toContain('identity.dev_issuer (line 1): the dev issuer must not be enabled when NODE_ENV=production');
  });

  it('points a YAML indentation mistake at the line that is indented wrongly', async () => {
    const r = await validate('indent.yaml', 'server:\n  listen: 127.0.0.1:8080\n   admin_listen: 127.0.0.1:9090\nidentity: { dev_issuer: true }\n');
    expect(r.code).toBe(1);
    const lines = problems(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ {2}\(root\) \(line 3\): .*indented deeper/);
  });

  it('says that a ${VAR} inside { … } must be quoted, once, instead of the parser’s cascade', async () => {
    const text = [
      'identity:',
      '  dev_issuer: true',
      '  login: { issuer: "https://idp.example.test/", client_id: w, session: { secret: ${WARDEN_SESSION_SECRET}, ttl: 12h } }', // line 3
      '',
    ].join('\n');
    const r = await validate('flow-var.yaml', text, { WARDEN_SESSION_SECRET: 's'.repeat(40) });
    expect(r.code).toBe(1);
    expect(problems(r.stderr)).toEqual([
      '  (root) (line 3): a ${VAR} inside { … } or [ … ] must be quoted ("${VAR}"): YAML reads its braces as the collection’s own',
    ]);
    // Quoted, it loads; in block style it needs no quotes.
    expect(
      (
        await validate('flow-var-quoted.yaml', text.replace('${WARDEN_SESSION_SECRET}', '"${WARDEN_SESSION_SECRET}"'), {
          WARDEN_SESSION_SECRET: 's'.repeat(40),
        })
      ).stderr,
    ).not.toContain('must be quoted');
  });
});
