import { describe, expect, it } from 'vitest';
import { compilePattern } from './routes.js';

describe('compilePattern', () => {
  it('matches params, single wildcards and rest', () => {
    const p = compilePattern('/github/repos/:owner/:repo/**');
    expect(p.match(['github', 'repos', 'o', 'r'])).toEqual({ owner: 'o', repo: 'r' });
    expect(p.match(['github', 'repos', 'o', 'r', 'issues', '1'])).toEqual({ owner: 'o', repo: 'r' });
    expect(p.match(['github', 'repos', 'o'])).toBeNull();
    expect(p.literalPrefix).toBe('/github/repos');
    const star = compilePattern('/a/*/c');
    expect(star.match(['a', 'x', 'c'])).toEqual({});
    expect(star.match(['a', 'x', 'y', 'c'])).toBeNull();
  });

  it('is case-sensitive and exact on literals', () => {
    const p = compilePattern('/docs/:id');
    expect(p.match(['Docs', '1'])).toBeNull();
    expect(p.match(['docs', '1', 'x'])).toBeNull();
    expect(p.match(['docs'])).toBeNull();
  });

  it.each(['/a/**/b', '/a/:x/:x', '/a/b%2f', 'no-slash', '/a/../b', '/a/:1x'])('rejects %s', (source) => {
    expect(() => compilePattern(source)).toThrow();
  });
});
