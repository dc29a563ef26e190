/** What every `warden` command shares: usage text, exiting with a message, finding and loading the config. */

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config/issues.js';
import type { LoadedConfig } from '../config/load.js';
import { loadConfigFile } from '../gateway/config.js';

export const USAGE = `Usage: warden <command> [options]

Commands:
  start    [-c gateway.yaml]                      serve (SIGHUP reloads, SIGTERM drains and exits)
  validate [-c gateway.yaml]                      check config and policies; exit 1 listing every problem
  token    --agent ID [--user ID] [--scope "a b"] [--ttl 1h] [--claim k=v] [--route NAME | --resource URL] [-c …]
                                                  print a dev-issuer access token (MCP routes: --route, aud = its resource)
  explain  --token JWT [-X METHOD] PATH [--data BODY] [-H "K: V"] [-c …]
                                                  run the pipeline without forwarding; print the decision trace
  fga push [-c …] [--api-url URL]                 create the OpenFGA store if needed, write policies/, print the ids
  fga pull [-c …] [--api-url URL] [--out DIR]     write an OpenFGA store's model and tuples into policies/
  schema                                          print the JSON Schema of gateway.yaml
  keygen                                          print a fresh vault key (base64, 32 bytes)
  vault rekey [-c …]                              re-encrypt vault records with the first key (resumable)
  mcp accept --route NAME --tool NAME [--hash H] [-c …]
                                                  show a changed MCP tool definition; with --hash, accept exactly it
  audit verify [--jwks FILE] FILE…                check decision-log files; name the first bad record
  test     [-c gateway.yaml] [-v] [--json] FILE…  run policy test cases (YAML) offline; exit 1 on a failure
  replay   -c NEW.yaml [--allow …] [--json] LOG…  decide recorded requests again under a new config; print what flips

Options: -h, --help (also after a command), -V, --version.
Environment: WARDEN_CONFIG (default gateway.yaml), WARDEN_LISTEN, WARDEN_ADMIN_LISTEN,
WARDEN_DATA_DIR (default .warden/ next to the config), WARDEN_LOG_LEVEL (default info).
Documentation: docs/cli.md`;

const CONFIG_OPTION = '  -c, --config FILE   gateway.yaml to use (default: $WARDEN_CONFIG, else ./gateway.yaml)';

/** `warden <command> --help`, one text per command (and sub-command). */
export const HELP: Record<string, string> = {
  audit: `Usage: warden audit verify [--jwks FILE] [--partial] [--allow-unsigned] [--json] FILE…

Check decision-log files (oldest first: decisions.jsonl.2 decisions.jsonl.1
decisions.jsonl) and name the first record that was edited, deleted, inserted
or moved, and the first chain (a start or reload) removed or spliced in whole.
Exit 0 when the chains are whole, 1 at the first bad record.

  --jwks FILE   public keys checkpoints must be signed with (the data dir's
                audit-key.jwks.json, or /.warden/jwks.json when the identity
                assertion key signs them); without it signatures are not
                checked. With it, a chain no valid signature covers fails
  --partial     the first file starts after seq 0, or its first chain continues
                one in older files (rotated away)
  --allow-unsigned  with --jwks: report a chain without any valid signature
                instead of failing (a log written unsigned, knowingly)
  --json        machine-readable result`,
  test: `Usage: warden test [-c gateway.yaml] [-v] [--json] FILE…

Run gateway-level policy test cases against the config, offline: the real
route matching, scopes, MCP tool rules, authorization checks (embedded engine,
tuples from the config's files plus a file's own \`tuples:\`), limits (peeked)
and approval rules; nothing is forwarded, held, stored or spent. A case:

  - name: bob cannot delete alice's doc
    agent: demo-agent              # azp; user: sub; scope: "a b"; act: [planner]; claims: {…}
    user: bob                      # token: none for a request without a token
    request: DELETE /notes/docs/1  # or method: + path:
    body: {…}                      # JSON body; MCP: tool: NAME, args: {…} (mcp_method: tools/list)
    expect: deny forbidden         # allow | hold | deny [code] | error [code]; status: 403 optional

Failures name FILE:LINE of the case, expected and got, and the check or rule
that decided. Exit 0 when every case passes, 1 when one fails, 2 when a file
or the config cannot be read. Docs: docs/policy-testing.md.

  -v, --verbose   also list passing cases
  --json          results as JSON
${CONFIG_OPTION} (a file's own \`config:\` wins)`,
  replay: `Usage: warden replay -c NEW.yaml [--allow FILTER]… [--examples N] [--json] [--fga-api-url URL --fga-store-id ID [--fga-model-id ID]] LOG…

Decide every request recorded in decision-log files (audit.decisions) again
under NEW.yaml and its policies, offline: no upstream is contacted, nothing is
held, stored, notified or spent. Prints, per route, the requests whose outcome
changes (allow→deny, deny→allow, new holds, dropped holds, other changes of
status or code) with examples, and how many records could not be decided again
and why. Rotated files may be given in any order; checkpoints are skipped.

  --allow FILTER     a change that does not fail the run (repeatable), e.g.
                     route=payments,change=deny->allow; keys: route, change
                     (allow->deny, deny->allow, new-hold, dropped-hold,
                     code, error; * any; a|b either), code (the new code),
                     tool
  --examples N       example records per change (default 3)
  --json             the diff as JSON on stdout
  --fga-api-url URL  decide with this OpenFGA server instead of the embedded
  --fga-store-id ID  engine (env FGA_API_URL, FGA_STORE_ID, FGA_MODEL_ID,
  --fga-model-id ID  FGA_API_TOKEN)
  -c, --config FILE  the new gateway.yaml (default: $WARDEN_CONFIG, else ./gateway.yaml)

Exit 0 when nothing changes beyond --allow filters, 1 when something does, 2
on usage or config errors. Progress goes to stderr. Docs: docs/policy-testing.md.`,
  start: `Usage: warden start [-c gateway.yaml]

Serve the gateway. SIGHUP (and server.watch: true) reloads config and policies
atomically; an invalid new config is logged and the old one kept. SIGTERM and
SIGINT stop accepting, let in-flight requests finish (server.shutdown_timeout)
and exit 0. WARDEN_LISTEN / WARDEN_ADMIN_LISTEN override the listen addresses.

${CONFIG_OPTION}`,
  validate: `Usage: warden validate [-c gateway.yaml]

Check the config and its policies without serving: schema, cross-checks, the
authorization model, every tuple and every name routes use. Prints every
problem once, with its YAML path and line, and exits 1; exits 0 when valid.

${CONFIG_OPTION}`,
  token: `Usage: warden token --agent ID [--user ID] [--scope "a b"] [--ttl 1h] [--claim k=v] [--route NAME | --resource URL] [-c gateway.yaml]

Print an access token from the development issuer (identity.dev_issuer: true),
alone on stdout. Without --user it is a machine token (the agent acting as
itself). The signing key is in the data dir next to the config file
(WARDEN_DATA_DIR, default .warden/), the same one \`warden start\` uses.

  --agent ID       the OAuth client (azp, client_id)            (required)
  --user ID        the user the agent acts for (sub)
  --scope "a b"    space-separated scopes
  --ttl 1h         lifetime (default 1h)
  --claim k=v      an extra claim (repeatable)
  --route NAME     for an MCP route: its resource goes into aud (RFC 8707)
  --resource URL   a resource for aud (repeatable)
${CONFIG_OPTION}`,
  explain: `Usage: warden explain --token JWT [-X METHOD] PATH [--data BODY] [-H "K: V"] [--json] [-c gateway.yaml]

Run the pipeline for one request without forwarding it or changing any state,
and print the decision trace: route, identity, each check and its answer, rate
limits, the approval rule and its message, the credentials that would be used.
Exit 0 for allow or pending, 1 for deny.

  --token JWT        the agent's access token
  -X, --request M    method (default GET)
  -d, --data BODY    request body (JSON for MCP tools/call)
  -H, --header K:V   a request header (repeatable)
  --json             the trace as JSON
${CONFIG_OPTION}`,
  fga: `Usage: warden fga push [-c gateway.yaml] [--api-url URL] [--store-name NAME]
       warden fga pull [-c gateway.yaml] [--api-url URL] [--out DIR]

push: write policies/ (authz.model and authz.tuples) to an OpenFGA server.
Uses authz.openfga.store_id when set, else the store named --store-name
(default warden), else creates it. Prints
  export FGA_STORE_ID=… FGA_MODEL_ID=…
on stdout (details on stderr), so eval "$(warden fga push)" sets both. Run it
before the first \`warden start\` with authz.engine: openfga.

pull: write the store's current model (DSL) and tuples (YAML) into --out
(default: the directory of authz.model), for local development with the
embedded engine or to replay production decisions.

  --api-url URL      OpenFGA HTTP API (default: authz.openfga.api_url, else $FGA_API_URL)
  --store-name NAME  store to reuse or create when no store id is configured (push)
  --out DIR          where pull writes model.fga and tuples.yaml
${CONFIG_OPTION}
The API token is authz.openfga.api_token, else $FGA_API_TOKEN.`,
  schema: `Usage: warden schema

Print the JSON Schema (draft 2020-12) of gateway.yaml. Editors with the YAML
language server complete and check keys with the first line
  # yaml-language-server: $schema=./gateway.schema.json`,
  keygen: `Usage: warden keygen

Print a fresh vault key: 32 random bytes, base64. Put it in vault.keys (first
position to make it the key that encrypts).`,
  vault: `Usage: warden vault rekey [-c gateway.yaml]

Re-encrypt every vault record still sealed with an older key with the first
key in vault.keys. Safe alongside live traffic, idempotent and resumable; exits
1 when a record cannot be opened.

${CONFIG_OPTION}`,
  mcp: `Usage: warden mcp accept --route NAME --tool NAME [--hash SHA256] [-c gateway.yaml]

Review, then accept, the changed definition of an MCP tool, so it is shown
and callable again (tool pinning). Without --hash: print the whole new
definition (a line diff against the pinned one, every field) and its hash,
accept nothing, exit 1. With --hash: accept the new definition only if it is
still the one with that hash.

  --route NAME    the route's name
  --tool NAME     the tool's name
  --hash SHA256   the hash printed for the definition you reviewed
${CONFIG_OPTION}`,
};

const CONTROL = /\p{Cc}/gu;
const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `s` as a terminal may show it: every control character (ESC and CSI sequences, carriage return, line
 * breaks) written as an escape. For values others chose (tool names agents sent, fields of a log file that
 * may have been edited), which could otherwise erase a line and draw another in its place.
 */
export function printable(s: string): string {
  return s.replace(CONTROL, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Print `message` on stderr and exit with `code`. */
export function fail(message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** A command's flags and positionals: its own `options` plus `-c/--config`, which every command that reads a config takes. */
export function commandArgs<O extends Options>(argv: string[], options: O) {
  return parseArgs({ args: argv, allowPositionals: true, options: { config: { type: 'string', short: 'c' }, ...options } as const });
}

/** `-c`, else WARDEN_CONFIG, else ./gateway.yaml. */
export function configPath(values: { config?: string }): string {
  return values.config ?? process.env.WARDEN_CONFIG ?? 'gateway.yaml';
}

/** Load the config or exit 1 with every problem. */
export function loadOrExit(file: string): LoadedConfig {
  try {
    return loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}
