/**
 * `warden start` reads gateway.yaml once (#17): the config its primary loaded
 * to learn `server.workers` is the one the gateway's first generation serves,
 * not read and validated a second time (seconds and tens of MB of start-up
 * heap with 2,000 routes). Reloads still read the file.
 */

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../src/gateway/config.js';
import { startGateway } from '../../src/gateway/gateway.js';
import { createLogger } from '../../src/observability/logger.js';

const yaml = (name: string) => `server: { listen: "127.0.0.1:0", admin_listen: null }
store: { driver: memory }
routes:
  - name: ${name}
    match: { path: "/a/**" }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
`;

describe('startGateway with a loaded config', () => {
  it('serves the loaded config without reading the file again; a reload reads the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-loaded-'));
    const file = join(dir, 'gateway.yaml');
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'model.fga'), 'model\n  schema 1.1\n\ntype user\n');
    writeFileSync(file, yaml('first'));
    const loaded = loadConfigFile(file, { WARDEN_DATA_DIR: dir });
    // The file changes after it was read: the first generation must be what was loaded.
    writeFileSync(file, yaml('second'));
    const logger = createLogger({ destination: { write: () => {} } });
    const gateway = await startGateway({ configFile: file, loaded, env: { WARDEN_DATA_DIR: dir }, logger });
    try {
      expect(gateway.runtime().config.routes[0].name).toBe('first');
      expect(await gateway.reload()).toBe(true);
      expect(gateway.runtime().config.routes[0].name).toBe('second');
    } finally {
      await gateway.close();
    }
  });
});
