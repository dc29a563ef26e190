import { describe, expect, it } from 'vitest';
import { checkHeaderReads, headerReadsOf } from './request-capture.js';

describe('headerReadsOf', () => {
  it.each([
    ['request.method == "DELETE" || body.amount > 100', null],
    ['request.headers["X-Mode"] == "purge"', ['x-mode']],
    ["'x-mode' in request.headers && request.headers['x-mode'] == 'purge'", ['x-mode']],
    ['has(request.headers.x_mode) && request . headers . x_mode == "1"', ['x_mode']],
  ])('%s reads %j', (when, names) => {
    const reads = headerReadsOf([when]);
    expect(reads === null ? null : [...(reads as Set<string>)]).toEqual(names);
  });

  it.each([
    'request.headers.exists(h, h.startsWith("x-"))',
    'size(request.headers) > 3',
    'request["headers"]["x-mode"] == "purge"',
    'request.headers[body.name] == "1"',
    'request.headers["x\\x2dmode"] == "purge"',
  ])('%s reads every header', (when) => {
    expect(headerReadsOf([when])).toBe('all');
  });
});

describe('checkHeaderReads', () => {
  it('refuses a read header sent twice or spelled another way, and nothing else', () => {
    const reads = new Set(['x-mode']);
    expect(() => checkHeaderReads(['X-Mode', 'purge', 'x-mode', 'soft'], reads)).toThrow(/more than once/);
    expect(() => checkHeaderReads(['X_Mode', 'purge'], reads)).toThrow(/another spelling/);
    expect(() => checkHeaderReads(['X-Mode', 'purge', 'Accept', 'a', 'Accept', 'b'], reads)).not.toThrow();
    expect(() => checkHeaderReads(['Accept', 'a', 'Accept', 'b'], 'all')).toThrow();
    expect(() => checkHeaderReads(['Cookie', 'a', 'Cookie', 'b', 'X-Mode', 'purge'], 'all')).not.toThrow();
  });
});
