import { describe, expect, it } from 'vitest';
import { compileTemplate, renderId, renderText, renderValue, TemplateRefused } from './template.js';

const vars = {
  agent: 'bot',
  user: 'alice',
  path: { owner: 'acme', repo: 'web' },
  body: { amount: 42, nested: { id: 'x' }, evil: 'a#b', colon: 'a:b', space: 'a b', empty: '', star: '*', starred: 'a*' },
  query: { q: ['1', '2'], one: '1' },
  args: { path: '/tmp/f' },
  request: { method: 'GET', path: '/x' },
};

describe('templates', () => {
  it('renders ids from request values', () => {
    expect(renderId(compileTemplate('repo:{path.owner}/{path.repo}'), vars)).toBe('repo:acme/web');
    expect(renderId(compileTemplate('user:{user}'), vars)).toBe('user:alice');
    expect(renderId(compileTemplate('file:{args.path}'), vars)).toBe('file:/tmp/f');
    expect(renderId(compileTemplate('group:eng#member'), vars)).toBe('group:eng#member');
  });

  it.each([
    '{body.star}',
    '{body.starred}',
    '{body.evil}',
    '{body.colon}',
    '{body.space}',
    '{body.empty}',
    '{body.missing}',
    '{query.q}',
    '{body.nested}',
    '{body.__proto__}',
  ])('refuses id value %s', (ref) => {
    expect(() => renderId(compileTemplate(`doc:${ref}`), vars)).toThrow(TemplateRefused);
  });

  it('keeps JSON types for single-template context values', () => {
    expect(renderValue(compileTemplate('{body.amount}'), vars)).toBe(42);
    expect(renderValue(compileTemplate('n={body.amount}'), vars)).toBe('n=42');
  });

  it('renders text without id restrictions', () => {
    expect(renderText(compileTemplate('Delete in {path.owner}/{path.repo}: {request.path}'), vars)).toBe('Delete in acme/web: /x');
  });

  it.each(['{unknown}', '{request.body}', '{agent.x}', '{ path.a', '{path..a}'])('rejects %s at compile time', (source) => {
    expect(() => compileTemplate(source)).toThrow();
  });
});
