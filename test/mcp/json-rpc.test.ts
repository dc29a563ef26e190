import { describe, expect, it } from 'vitest';
import { parseMcpBody, serializeMessages, toolCallParams } from '../../src/mcp/json-rpc.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { WardenError } from '../../src/core/errors.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof WardenError ? `${err.code}/${err.reason}` : 'other';
  }
  return undefined;
}

describe('parseMcpBody', () => {
  it('parses a single request, a notification and a response', () => {
    const p = parseMcpBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/list"}'));
    expect(p.batch).toBe(false);
    expect(p.messages[0]).toMatchObject({ kind: 'request', id: 1, method: 'tools/list' });
    expect(parseMcpBody('{"jsonrpc":"2.0","method":"notifications/initialized"}').messages[0].kind).toBe('notification');
    expect(parseMcpBody('{"jsonrpc":"2.0","id":"s1","result":{}}').messages[0].kind).toBe('response');
  });

  it('parses a batch', () => {
    const p = parseMcpBody('[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]');
    expect(p.batch).toBe(true);
    expect(p.messages.map((m) => m.kind)).toEqual(['request', 'notification']);
  });

  it.each([
    ['empty', '', 'bad_request/invalid_json_rpc'],
    ['not json', '{nope', 'bad_request/parse_error'],
    ['no jsonrpc', '{"id":1,"method":"x"}', 'bad_request/invalid_json_rpc'],
    ['wrong version', '{"jsonrpc":"1.0","id":1,"method":"x"}', 'bad_request/invalid_json_rpc'],
    ['method not string', '{"jsonrpc":"2.0","id":1,"method":5}', 'bad_request/invalid_json_rpc'],
    ['object id', '{"jsonrpc":"2.0","id":{},"method":"x"}', 'bad_request/invalid_json_rpc'],
    ['fractional id', '{"jsonrpc":"2.0","id":1.5,"method":"x"}', 'bad_request/invalid_json_rpc'],
    ['request with result', '{"jsonrpc":"2.0","id":1,"method":"x","result":1}', 'bad_request/invalid_json_rpc'],
    ['response with both', '{"jsonrpc":"2.0","id":1,"result":1,"error":{}}', 'bad_request/invalid_json_rpc'],
    ['params scalar', '{"jsonrpc":"2.0","id":1,"method":"x","params":3}', 'bad_request/invalid_json_rpc'],
    ['empty batch', '[]', 'bad_request/invalid_json_rpc'],
    ['scalar', '42', 'bad_request/invalid_json_rpc'],
    ['bad element', '[{"jsonrpc":"2.0","id":1,"method":"x"}, 3]', 'bad_request/invalid_json_rpc'],
  ])('rejects %s', (_name, body, code) => {
    expect(codeOf(() => parseMcpBody(body))).toBe(code);
  });

  it('rejects invalid UTF-8', () => {
    expect(codeOf(() => parseMcpBody(Buffer.from([0x7b, 0xff, 0x7d])))).toBe('bad_request/parse_error');
  });

  it('rejects oversized batches', () => {
    const batch = JSON.stringify(Array.from({ length: 65 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })));
    expect(codeOf(() => parseMcpBody(batch))).toBe('bad_request/invalid_json_rpc');
  });

  it('re-serializes what it parsed: duplicate keys cannot be read differently upstream', () => {
    const raw = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"delete_file","arguments":{"path":"a"}}}';
    const parsed = parseMcpBody(raw);
    const forwarded = serializeMessages(parsed).toString('utf8');
    expect(forwarded.match(/"name"/g)).toHaveLength(1);
    expect(toolCallParams(parsed.messages[0]).name).toBe(JSON.parse(forwarded).params.name);
  });
});

describe('toolCallParams', () => {
  const msg = (params: unknown) => parseMcpBody(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params })).messages[0];
  it('extracts name and arguments', () => {
    expect(toolCallParams(msg({ name: 'read_file', arguments: { path: 'a' } }))).toEqual({ name: 'read_file', args: { path: 'a' } });
    expect(toolCallParams(msg({ name: 'ping' }))).toEqual({ name: 'ping', args: {} });
  });
  it.each([[{}], [{ name: '' }], [{ name: 3 }], [{ name: 'x', arguments: [1] }], [{ name: 'x', arguments: 'a' }]])('rejects %j', (params) => {
    expect(codeOf(() => toolCallParams(msg(params)))).toBe('bad_request/invalid_json_rpc');
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and keeps __proto__ as data', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a":1}'))).toBe('{"__proto__":{"x":1},"a":1}');
  });
});
