/** What every `warden` command shares: usage text, exiting with a message, finding and loading the config. */

import { loadConfigFile, ConfigError, type LoadedConfig } from '../config/load.js';

export const USAGE = `Usage: warden <command> [options]

Commands:
  start    [-c gateway.yaml]                      serve (SIGHUP reloads, SIGTERM drains and exits)
  validate [-c gateway.yaml]                      check config and policies; exit 1 listing every problem
  token    --agent ID [--user ID] [--scope "a b"] [--ttl 1h] [--claim k=v] [-c …]
                                                  print a dev-issuer access token
  explain  --token JWT [-X METHOD] PATH [--data BODY] [-H "K: V"] [-c …]
                                                  run the pipeline without forwarding; print the decision trace
  fga push [-c …]                                 write policies/ to the configured OpenFGA server
  keygen                                          print a fresh vault key (base64, 32 bytes)
  vault rekey [-c …]                              re-encrypt vault records with the first key (resumable)
  mcp accept --route NAME --tool NAME [-c …]      accept a changed MCP tool definition

Environment: WARDEN_DATA_DIR (default .warden/), WARDEN_LOG_LEVEL (default info).`;

/** Print `message` on stderr and exit with `code`. */
export function fail(message: string, code = 1): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
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
