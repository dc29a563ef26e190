/**
 * CIBA: a provider's 200 answer is an approval only with an ID token whose
 * signature verifies against the provider's JWKS (#12 A.12). The provider here
 * is a real HTTP server that publishes one key and answers the poll with a
 * token signed by another (or with no ID token, or an access token).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createCibaClient, type CibaAnswer } from '../../src/approvals/ciba.js';
import { captureLogs } from '../support/logs.js';

type Key = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let server: Server;
let issuer: string;
let published: Key;
let stranger: Key;
/** What the token endpoint answers next. */
let answer: () => Promise<Record<string, unknown>>;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  published = pair.privateKey;
  stranger = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'op-1', alg: 'RS256', use: 'sig' };
  server = createServer((req, res) => {
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    req.resume();
    const respond = async () => {
      if (req.url === '/.well-known/openid-configuration')
        return json({ issuer, backchannel_authentication_endpoint: `${issuer}/bc`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
      if (req.url === '/jwks') return json({ keys: [jwk] });
      if (req.url === '/bc') return json({ auth_req_id: 'req-1', expires_in: 60, interval: 1 });
      if (req.url === '/token') return json(await answer());
      res.writeHead(404).end();
    };
    req.on('end', () => {
      respond().catch((err: unknown) => res.destroy(err as Error));
    });
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const idToken = (key: Key, claims: Record<string, unknown> = {}, typ?: string) =>
  new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'op-1', ...(typ ? { typ } : {}) })
    .setIssuer(issuer)
    .setAudience('warden-ciba')
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);

async function answerOf(userClaim?: string, userPrefix?: string): Promise<CibaAnswer> {
  const client = createCibaClient(
    { issuer, client_id: 'warden-ciba', client_secret: 'ciba-secret', scope: 'openid', timeout: 2000, user_claim: userClaim, user_prefix: userPrefix },
    captureLogs().logger,
  );
  const req = await client.start({ loginHint: 'alice', bindingMessage: 'pay 60', requestedExpirySeconds: 60 });
  return client.poll({ ...req, interval: 0.01 }, new AbortController().signal);
}
const outcome = async () => (await answerOf()).outcome;

describe('CIBA ID token verification', () => {
  it('a forged ID token (signed by a key the provider does not publish) is not an approval', async () => {
    answer = async () => ({ access_token: 'at', token_type: 'Bearer', id_token: await idToken(stranger) });
    expect(await outcome()).toBe('failed');
  });

  it('an answer without an ID token, or with an access token in its place, is not an approval', async () => {
    answer = async () => ({ access_token: 'at', token_type: 'Bearer' });
    expect(await outcome()).toBe('failed');
    answer = async () => ({ access_token: 'at', token_type: 'Bearer', id_token: await idToken(published, {}, 'at+jwt') });
    expect(await outcome()).toBe('failed');
    answer = async () => ({
      access_token: 'at',
      token_type: 'Bearer',
      id_token: await idToken(published, { 'urn:openid:params:jwt:claim:auth_req_id': 'another-request' }),
    });
    expect(await outcome()).toBe('failed');
  });

  it('a genuine ID token is an approval by the person it names (sub, or the configured user_claim)', async () => {
    answer = async () => ({
      access_token: 'at',
      token_type: 'Bearer',
      id_token: await idToken(published, { 'urn:openid:params:jwt:claim:auth_req_id': 'req-1', email: 'alice@example.test' }),
    });
    expect(await answerOf()).toEqual({ outcome: 'approved', person: 'alice' });
    expect(await answerOf('email')).toEqual({ outcome: 'approved', person: 'alice@example.test' });
    // Named as agent tokens of the same issuer name users (identity.issuers[].user_prefix).
    expect(await answerOf(undefined, 'partner/')).toEqual({ outcome: 'approved', person: 'partner/alice' });
  });

  it('an ID token without the claim naming the person is not an approval', async () => {
    answer = async () => ({ access_token: 'at', token_type: 'Bearer', id_token: await idToken(published) });
    expect(await answerOf('email')).toEqual({ outcome: 'failed' });
  });
});
