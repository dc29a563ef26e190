/**
 * The push endpoint rule (SSRF): a subscription's endpoint is chosen by whoever
 * holds a console session. Static checks (scheme, port, IP literal, host
 * allow-list), the resolved-address check, and the sender failing closed: an
 * allowed host name that resolves to loopback, a private or a metadata address
 * is never contacted — shown with a real push service listening on loopback
 * that must receive nothing.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEndpointUrl, isPublicAddress, resolveEndpoint, type EndpointPolicy } from '../../src/approvals/push/endpoint-policy.js';
import { createPushSender } from '../../src/approvals/push/sender.js';
import { generateVapidKeys, vapidKeyIssue } from '../../src/approvals/push/vapid.js';
import { DEFAULT_PUSH_HOSTS, type PushConfig } from '../../src/config/schema.js';
import { parseConfig } from '../../src/gateway/config.js';
import { newBrowserKeys, startPushService, type PushService } from '../support/push-service.js';

const POLICY: EndpointPolicy = { hosts: [...DEFAULT_PUSH_HOSTS, 'push.example.test'], allowLoopback: false };

describe('push endpoint rule', () => {
  it('accepts the browsers’ push services over https on 443 only', () => {
    for (const ok of [
      'https://fcm.googleapis.com/fcm/send/abc:def',
      'https://updates.push.services.mozilla.com/wpush/v2/gAAAA',
      'https://web.push.apple.com/QGu',
      'https://wns2-bn3p.notify.windows.com/w/?token=x',
    ]) {
      expect(checkEndpointUrl(ok, POLICY).ok, ok).toBe(true);
    }
    const reason = (u: string) => {
      const r = checkEndpointUrl(u, POLICY);
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason('http://fcm.googleapis.com/x')).toBe('scheme');
    expect(reason('https://fcm.googleapis.com:444/x')).toBe('port');
    expect(reason('https://127.0.0.1/x')).toBe('ip_literal');
    expect(reason('https://[::ffff:127.0.0.1]/x')).toBe('ip_literal');
    expect(reason('https://2130706433/x')).toBe('ip_literal'); // WHATWG URL turns it into 127.0.0.1
    expect(reason('https://0x7f.1/x')).toBe('ip_literal');
    expect(reason('https://push.apple.com/x')).toBe('host_not_allowed'); // *.push.apple.com is subdomains only
    expect(reason('https://evilpush.apple.com.attacker.example/x')).toBe('host_not_allowed');
    expect(reason('https://xnotify.windows.com/x')).toBe('host_not_allowed');
    expect(reason('https://fcm.googleapis.com./x')).toBe('host_not_allowed');
    expect(reason('https://FCM.googleapis.com/x')).toBe('ok'); // hosts compare lower-cased, as URL parsing gives them
    expect(reason('http://127.0.0.1:9000/push')).toBe('scheme');
    expect(reason('not a url')).toBe('not_a_url');
    // Loopback only when allowed, and only as literals (a name could resolve anywhere).
    const loopback = { ...POLICY, allowLoopback: true };
    expect(checkEndpointUrl('http://127.0.0.1:9000/push', loopback).ok).toBe(true);
    expect(checkEndpointUrl('http://[::1]:9000/push', loopback).ok).toBe(true);
    expect(checkEndpointUrl('http://localhost:9000/push', loopback).ok).toBe(false);
    expect(checkEndpointUrl('http://10.0.0.1:9000/push', loopback).ok).toBe(false);
  });

  it('only public unicast addresses pass', () => {
    for (const bad of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      '::ffff:10.0.0.1',
      '::ffff:8.8.8.8',
      '::a9fe:a9fe', // IPv4-compatible ::169.254.169.254 (deprecated form; the embedded address would be reached)
      '::7f00:1',
      'fd00::1',
      'fe80::1',
      'ff02::1',
      '64:ff9b::a00:1',
      '2002:a00:1::1',
      'not-an-ip',
    ]) {
      expect(isPublicAddress(bad), bad).toBe(false);
    }
    for (const good of ['8.8.8.8', '142.250.74.10', '2607:f8b0:4004:c07::5f', '2a00:1450:4001:80b::200a']) expect(isPublicAddress(good), good).toBe(true);
  });

  it('resolution fails closed: one internal address, no address, or a resolver error refuses', async () => {
    const check = checkEndpointUrl('https://push.example.test/x', POLICY);
    if (!check.ok) throw new Error('expected ok');
    const with_ = (addresses: string[]) => async () => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    expect(await resolveEndpoint(check, 1000, with_(['8.8.8.8']))).toEqual({ ok: true, address: '8.8.8.8', family: 4 });
    expect(await resolveEndpoint(check, 1000, with_(['8.8.8.8', '10.0.0.1']))).toEqual({ ok: false, reason: 'address_not_public' });
    expect(await resolveEndpoint(check, 1000, with_([]))).toEqual({ ok: false, reason: 'address_not_public' });
    expect(await resolveEndpoint(check, 1000, () => Promise.reject(new Error('ENOTFOUND')))).toEqual({ ok: false, reason: 'dns' });
    expect(await resolveEndpoint(check, 50, () => new Promise(() => {}))).toEqual({ ok: false, reason: 'dns' });
  });

  it('VAPID keys: keygen makes a pair that checks; a mismatched pair is named', () => {
    const a = generateVapidKeys();
    const b = generateVapidKeys();
    expect(Buffer.from(a.publicKey, 'base64url')).toHaveLength(65);
    expect(Buffer.from(a.privateKey, 'base64url')).toHaveLength(32);
    expect(vapidKeyIssue(a.publicKey, a.privateKey)).toBeNull();
    expect(vapidKeyIssue(a.publicKey, b.privateKey)).toMatch(/not the private key/);
  });
});

describe('approvals.push config', () => {
  const a = generateVapidKeys();
  const b = generateVapidKeys();
  const yaml = (pub: string, priv: string, extra = '') =>
    `approvals:\n  push:\n    vapid_public_key: ${pub}\n    vapid_private_key: ${priv}\n    subject: mailto:ops@example.com\n${extra}`;

  it('accepts a matching pair with the default hosts; refuses mismatched keys, bad subjects, loopback in production', () => {
    const { config } = parseConfig(yaml(a.publicKey, a.privateKey));
    expect(config.approvals.push?.endpoint_hosts).toEqual([...DEFAULT_PUSH_HOSTS]);
    expect(config.approvals.push?.allow_loopback).toBe(false);
    expect(config.approvals.push?.timeout).toBe(10_000);
    expect(() => parseConfig(yaml(a.publicKey, b.privateKey))).toThrow(/approvals\.push\.vapid_private_key.*not the private key/s);
    expect(() => parseConfig(yaml(a.publicKey, 'short'))).toThrow(/approvals\.push\.vapid_private_key/);
    expect(() => parseConfig(yaml(a.publicKey, a.privateKey).replace('mailto:ops@example.com', 'http://ops.example.com'))).toThrow(/approvals\.push\.subject/);
    expect(() => parseConfig(yaml(a.publicKey, a.privateKey, '    endpoint_hosts: ["Evil Host"]\n'))).toThrow(/approvals\.push\.endpoint_hosts/);
    const loopback = yaml(a.publicKey, a.privateKey, '    allow_loopback: true\n');
    expect(parseConfig(loopback).config.approvals.push?.allow_loopback).toBe(true);
    expect(() => parseConfig(loopback, { env: { NODE_ENV: 'production' } })).toThrow(/approvals\.push\.allow_loopback.*tests only/s);
  });
});

describe('push sender against a real local push service', () => {
  let push: PushService;
  const vapid = generateVapidKeys();
  const cfg = (over: Partial<PushConfig> = {}): PushConfig => ({
    vapid_public_key: vapid.publicKey,
    vapid_private_key: vapid.privateKey,
    subject: 'mailto:ops@example.com',
    timeout: 1000,
    endpoint_hosts: ['push.example.test'],
    allow_loopback: false,
    ...over,
  });
  const sub = (endpoint: string) => {
    const k = newBrowserKeys();
    return { v: 1 as const, user: 'alice', endpoint, p256dh: k.p256dh, auth: k.auth, createdAt: 0, updatedAt: 0 };
  };

  beforeAll(async () => {
    push = await startPushService();
  });
  afterAll(async () => {
    await push?.close();
  });

  it('an allowed host name that resolves to loopback, private or metadata addresses is never contacted', async () => {
    const port = new URL(push.origin).port;
    for (const address of ['127.0.0.1', '10.0.0.7', '169.254.169.254', '::1']) {
      const sender = createPushSender(cfg(), async () => [{ address, family: address.includes(':') ? 6 : 4 }]);
      const outcome = await sender.send(sub(`https://push.example.test/push/rebind-${port}`), '{}', { ttlSeconds: 60 });
      expect(outcome, address).toEqual({ result: 'refused', reason: 'address_not_public' });
    }
    // Without allow_loopback the local service itself is refused before any connection.
    const sender = createPushSender(cfg());
    expect(await sender.send(sub(push.endpoint('direct')), '{}', { ttlSeconds: 60 })).toEqual({ result: 'refused', reason: 'scheme' });
    expect(push.messages).toHaveLength(0);
  });

  it('allow_loopback delivers to the local service; every request has a deadline', async () => {
    // The answers that come are not raced against a short deadline (a busy machine's first connection can take 300 ms).
    const sender = createPushSender(cfg({ allow_loopback: true, timeout: 10_000 }));
    expect(await sender.send(sub(push.endpoint('ok')), '{"a":1}', { ttlSeconds: 60 })).toEqual({ result: 'sent', status: 201 });
    push.answer('/push/slow', 'hang');
    const hasty = createPushSender(cfg({ allow_loopback: true, timeout: 300 }));
    const started = Date.now();
    expect(await hasty.send(sub(push.endpoint('slow')), '{}', { ttlSeconds: 60 })).toEqual({ result: 'timeout' });
    expect(Date.now() - started).toBeLessThan(2000);
    push.answer('/push/gone', 410);
    expect(await sender.send(sub(push.endpoint('gone')), '{}', { ttlSeconds: 60 })).toEqual({ result: 'gone', status: 410 });
    push.answer('/push/redirect', 307);
    expect(await sender.send(sub(push.endpoint('redirect')), '{}', { ttlSeconds: 60 })).toMatchObject({ result: 'failed', status: 307 });
  });
});
