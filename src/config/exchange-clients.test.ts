import { describe, expect, it } from 'vitest';
import { vaultSchema } from './schema.js';

const KEY = Buffer.alloc(32, 1).toString('base64');
const parse = (jwks_uri: string) => vaultSchema.safeParse({ keys: [{ id: 'k1', key: KEY }], exchange_clients: [{ client_id: 'bot', jwks_uri }] });

describe('vault.exchange_clients[].jwks_uri', () => {
  it('refuses plain http to a host that is not loopback (the keys decide who may pull user tokens)', () => {
    const r = parse('http://keys.example.com/jwks.json');
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toContain('must be https');
  });

  it.each(['https://keys.example.com/jwks.json', 'http://127.0.0.1:9000/jwks.json', 'http://localhost:9000/jwks.json', 'http://[::1]:9000/jwks.json'])(
    'accepts %s',
    (uri) => {
      expect(parse(uri).success).toBe(true);
    },
  );
});
