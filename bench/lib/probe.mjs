/**
 * Before a row is measured: one request of its own must get the upstream's
 * answer through it, and the chain must really run (bench/run.mjs and
 * bench/side-by-side.mjs). A row that refused its requests would measure its
 * refusals, and an MCP refusal is a 200 with a JSON-RPC error in it.
 */

import { VAULT_TOKEN } from './warden.mjs';

/** One request with fetch: the variant must answer 200 with the upstream's body (and swap credentials). */
export async function probe(v, sut, spreadRequest) {
  const request = concrete(spreadRequest);
  const send = (path, extra = {}) =>
    fetch(sut.url + path, { method: request.method, headers: { ...request.headers, ...extra }, body: request.body, signal: AbortSignal.timeout(5_000) }).then(
      async (r) => ({ status: r.status, auth: r.headers.get('x-bench-auth'), text: await r.text() }),
    );
  if (v.kind === 'openfga') {
    const r = await send(request.path);
    if (r.status !== 200 || JSON.parse(r.text).allowed !== true) throw new Error(`OpenFGA check answered ${r.status}: ${r.text.slice(0, 300)}`);
    return;
  }
  if (v.mcp) {
    const list = await fetch(sut.url + '/mcp', {
      method: 'POST',
      headers: { ...request.headers, 'x-bench-list': '1' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      signal: AbortSignal.timeout(5_000),
    });
    const text = await list.text();
    if (list.status !== 200) throw new Error(`tools/list (pinning) answered ${list.status}: ${text.slice(0, 300)}`);
  }
  // x-bench-check: the MCP upstream echoes the Authorization it saw (measured requests do not ask: no extra header).
  const r = await send(request.path, v.mcp ? { 'x-bench-check': '1' } : {});
  if (r.status !== 200) throw new Error(`probe answered ${r.status}: ${r.text.slice(0, 300)}`);
  if (r.text !== request.expect) throw new Error(`probe body differs from the upstream's (${r.text.length} bytes): ${r.text.slice(0, 120)}`);
  // The chain must really run: no token is refused, and an MCP tool without a rule is refused.
  if (v.auth) {
    const anon = await send(request.path, { authorization: '' });
    if (anon.status !== 401) throw new Error(`a request without a token answered ${anon.status}, expected 401`);
  }
  if (v.mcp) {
    const other = await fetch(sut.url + '/mcp', {
      method: 'POST',
      headers: request.headers,
      body: request.body.replace('read_file', 'drop_table'),
      signal: AbortSignal.timeout(5_000),
    });
    if ((await other.text()) === request.expect) throw new Error('a tools/call without a tool rule reached the upstream');
    if (r.auth !== `Bearer ${VAULT_TOKEN}`)
      throw new Error(`MCP upstream saw Authorization ${JSON.stringify((r.auth ?? '').slice(0, 40))}, expected the vault token`);
  }
  if (v.kind === 'warden' && !v.mcp) {
    const echo = await send('/api/items/auth');
    const want = v.swap ? `Bearer ${VAULT_TOKEN}` : '';
    if (echo.status !== 200 || echo.text !== want)
      throw new Error(`upstream saw Authorization ${JSON.stringify(echo.text.slice(0, 40))}, expected ${JSON.stringify(want.slice(0, 40))}`);
    // G5: the upstream receives a signed assertion (a compact JWS), and only then.
    const identity = await send('/api/items/identity');
    const signed = /^eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+$/.test(identity.text);
    if (identity.status !== 200 || signed !== Boolean(v.assertion))
      throw new Error(`upstream saw Warden-Identity ${JSON.stringify(identity.text.slice(0, 40))}`);
  }
}

/** The request with `{id}` (a spread row) filled in with 42: what the probe sends and what wrk's URL names. */
export const concrete = (request) => ({ ...request, path: request.path.replaceAll('{id}', '42'), body: request.body?.replaceAll('{id}', '42') });
