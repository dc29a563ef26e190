/**
 * Property tests of id rendering (#12 C): whatever value a request supplies,
 * a rendered OpenFGA id has exactly the structure its template's literal text
 * gives it: no substituted value adds a separator (`:`, `#`), whitespace or
 * control character, or makes the id (or any part of it) a wildcard.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileRender, compileTemplate, renderId, renderText, renderWith, TemplateRefused, type TemplateRef } from './template.js';

const TEMPLATES = ['user:{body.a}', 'doc:{path.a}', 'doc:{path.a}/{path.b}', 'group:{body.a}#member', 'repo:{path.a}-{body.b}', 'file:{args.a}'];

// Values biased towards what breaks ids, plus arbitrary strings, numbers and non-scalars.
const value = fc.oneof(
  fc.constantFrom('*', '#', ':', '@', 'a*', '*a', 'user:*', 'x#member', ' ', '\t', '\n', '\u0085', '\u2028', '\u0000', '', 'a'.repeat(300), 'ok', 'é', '%2A'),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }),
);

/** Count a character. */
const count = (s: string, c: string) => s.split(c).length - 1;

describe('renderId (properties)', () => {
  it('never adds a separator or whitespace, never renders a wildcard, or refuses', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TEMPLATES), value, value, (source, a, b) => {
        const t = compileTemplate(source);
        const literal = source.replace(/\{[^}]*\}/g, '');
        let id: string;
        try {
          id = renderId(t, { body: { a, b }, path: { a: a as string, b: b as string }, args: { a } });
        } catch (err) {
          expect(err).toBeInstanceOf(TemplateRefused);
          return;
        }
        expect(count(id, ':')).toBe(count(literal, ':'));
        expect(count(id, '#')).toBe(count(literal, '#'));
        expect(id).not.toContain('*');
        expect(id).not.toMatch(/[\s\u0000-\u001f\u007f\u0085\u2028\u2029]/u);
        // The id part (after the type) is never empty.
        expect(id.slice(id.indexOf(':') + 1).split('#')[0].length).toBeGreaterThan(0);
      }),
      { numRuns: 5000 },
    );
  });

  it('substitutes an acceptable value verbatim', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._~@/+=-]{1,40}$/), (v) => {
        expect(renderId(compileTemplate('doc:{path.a}'), { path: { a: v } })).toBe(`doc:${v}`);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('compileRender (properties)', () => {
  // Every shape the closure specializes: empty, one literal, one ref (one level and deeper), 2, 3 and more parts.
  const SOURCES = [
    '',
    'k',
    '{agent}',
    '{body.a}',
    '{agent}:{user}',
    'x{path.a}',
    '{agent}:{user}:{path.a}',
    'a{body.a}b{body.b}c',
    '{user}{tool}{args.a}{claims.a}-',
  ];
  const text = (v: unknown, p: TemplateRef) => {
    if (v === undefined || v === null) throw new TemplateRefused(p.raw, 'is missing');
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  };

  it('renders exactly what renderWith renders, and refuses what it refuses', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SOURCES), value, value, fc.option(fc.string({ maxLength: 6 })), (source, a, b, agent) => {
        const t = compileTemplate(source);
        const vars = { agent, user: b as string, tool: 'x', body: { a, b }, path: { a: a as string }, args: { a }, claims: { a: b } };
        let expected: string | Error;
        try {
          expected = renderWith(t, vars, text);
        } catch (err) {
          expected = err as Error;
        }
        if (expected instanceof Error) expect(() => compileRender(t, text)(vars)).toThrow(expected.message);
        else expect(compileRender(t, text)(vars)).toBe(expected);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads own properties only, like lookup', () => {
    const render = compileRender(compileTemplate('{body.constructor}'), (v, p) => {
      if (v === undefined) throw new TemplateRefused(p.raw, 'is missing');
      return String(v);
    });
    expect(() => render({ body: {} })).toThrow(TemplateRefused);
    expect(renderText(compileTemplate('{agent}'), { agent: 'a' })).toBe(compileRender(compileTemplate('{agent}'), (v) => String(v))({ agent: 'a' }));
  });
});
