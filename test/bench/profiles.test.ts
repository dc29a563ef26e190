/**
 * Two rows' CPU profiles compared per request (bench/lib/profiles.mjs, printed
 * by `profile-summary.mjs --against`): each function's share of its profile's
 * busy time times its row's CPU per request, and the sums by where the code lives.
 */

import { describe, expect, it } from 'vitest';
import { comparePerRequest, partOf, shortUrl, summarize, type CpuProfile } from '../../bench/lib/profiles.mjs';

/** A profile whose samples land on `leaves` (function name, url) with the given counts, 1 ms apart, plus idle. */
function profile(leaves: Array<[string, string, number]>, idle = 0): CpuProfile {
  const nodes: CpuProfile['nodes'] = [{ id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, children: [] }];
  const samples: number[] = [];
  const add = (functionName: string, url: string, count: number) => {
    const id = nodes.length + 1;
    nodes.push({ id, callFrame: { functionName, url, lineNumber: 9 } });
    nodes[0].children!.push(id);
    for (let i = 0; i < count; i++) samples.push(id);
  };
  for (const [fn, url, n] of leaves) add(fn, url, n);
  if (idle) add('(idle)', '', idle);
  return { nodes, samples, timeDeltas: samples.map(() => 1000) };
}

describe('comparing two rows’ profiles per request', () => {
  it('scales each function’s share of busy time by its row’s CPU per request', () => {
    // A: 100 µs per request, half of it in writev. B: 120 µs, a third in writev and a sixth in Warden's parse.
    const a = summarize(
      profile(
        [
          ['writev', '', 50],
          ['emit', 'node:events', 50],
        ],
        30,
      ),
    );
    const b = summarize(
      profile(
        [
          ['writev', '', 40],
          ['emit', 'node:events', 60],
          ['parse', 'file:///srv/warden/dist/src/http/strict-json.js', 20],
        ],
        5,
      ),
    );
    const c = comparePerRequest(a, b, 100, 120);
    const byFn = Object.fromEntries(c.functions.map((f) => [f.fn.split(' ')[0], f]));
    expect(byFn.writev.a).toBeCloseTo(50);
    expect(byFn.writev.b).toBeCloseTo(40);
    expect(byFn.parse.delta).toBeCloseTo(20);
    expect(byFn.emit.delta).toBeCloseTo(10);
    // Largest increase first; idle is never a function.
    expect(c.functions.map((f) => f.fn.split(' ')[0])).toEqual(['parse', 'emit', 'writev']);
    const parts = Object.fromEntries(c.parts.map((p) => [p.part, p]));
    expect(parts['Warden (src/)'].b).toBeCloseTo(20);
    expect(parts["Node's JavaScript"].delta).toBeCloseTo(10);
    // The parts add up to each row's CPU per request.
    expect(c.parts.reduce((s, p) => s + p.a, 0)).toBeCloseTo(100);
    expect(c.parts.reduce((s, p) => s + p.b, 0)).toBeCloseTo(120);
  });

  it('refuses to compare without both rows’ CPU per request', () => {
    const s = summarize(profile([['writev', '', 1]]));
    expect(() => comparePerRequest(s, s, 0, 10)).toThrow(/CPU µs per request/);
    expect(() => comparePerRequest(s, s, 10, Number.NaN)).toThrow(/CPU µs per request/);
  });

  it('names where code lives from its location', () => {
    expect(shortUrl('file:///work/x/dist/src/proxy/forward.js')).toBe('src/proxy/forward.js');
    expect(shortUrl('file:///work/x/node_modules/undici/lib/core/request.js')).toBe('npm:undici/lib/core/request.js');
    expect(shortUrl('file:///work/x/bench/servers/node-proxy.mjs')).toBe('bench/servers/node-proxy.mjs');
    expect(shortUrl('node:events')).toBe('node:events');
    expect(partOf('send src/proxy/forward.js:354')).toBe('Warden (src/)');
    expect(partOf('writeH1 npm:undici/lib/dispatcher/client-h1.js:1144')).toBe('undici (and its llhttp)');
    expect(partOf('wasm-function[20] wasm://wasm/00034eea:1')).toBe('undici (and its llhttp)');
    expect(partOf('x npm:ioredis/built/Redis.js:1')).toBe('other packages');
    expect(partOf('emit node:events:471')).toBe("Node's JavaScript");
    expect(partOf('(anonymous) bench/servers/node-proxy.mjs:56')).toBe("the row's own script (bench/servers)");
    expect(partOf('writev ')).toBe('V8, native code and the kernel (GC, writev, JSON.parse…)');
    expect(partOf('(garbage collector) ')).toBe('V8, native code and the kernel (GC, writev, JSON.parse…)');
  });
});
