/**
 * Route patterns: `:name` one segment, `*` one segment, `**` the rest (zero or
 * more segments). Matching works on canonical decoded segments; routes are
 * tried in order and the first match wins. No match is 404, never a default.
 */

export interface CompiledPattern {
  readonly source: string;
  /** Literal prefix segments before the first parameter/wildcard. */
  readonly literalPrefix: string;
  match(segments: readonly string[]): Record<string, string> | null;
}

/** The parameters of a match without any (shared, frozen: parameters are read, never written). */
export const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

type Token = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'star' } | { kind: 'rest' };

/** Compile a pattern; throws an Error with a readable message when invalid. */
export function compilePattern(source: string): CompiledPattern {
  if (!source.startsWith('/')) throw new Error('path pattern must start with "/"');
  const parts = source.split('/').slice(1);
  if (parts.length && parts[parts.length - 1] === '') parts.pop();
  const tokens: Token[] = [];
  const names = new Set<string>();
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === '**') {
      if (i !== parts.length - 1) throw new Error('"**" may only be the last segment');
      tokens.push({ kind: 'rest' });
    } else if (p === '*') tokens.push({ kind: 'star' });
    else if (p.startsWith(':')) {
      const name = p.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid parameter name ":${name}"`);
      if (names.has(name)) throw new Error(`duplicate parameter ":${name}"`);
      names.add(name);
      tokens.push({ kind: 'param', name });
    } else if (p === '' || p === '.' || p === '..' || /[*:?#%;\\]/.test(p)) {
      throw new Error(`invalid literal segment ${JSON.stringify(p)}`);
    } else tokens.push({ kind: 'literal', value: p });
  }

  const literals: string[] = [];
  for (const t of tokens) {
    if (t.kind !== 'literal') break;
    literals.push(t.value);
  }
  const hasRest = tokens.length > 0 && tokens[tokens.length - 1].kind === 'rest';
  // A copy of exactly its length (push reserves room for more; the pattern lives as long as its config).
  return new Pattern(source, '/' + literals.join('/'), tokens.slice(), hasRest);
}

/**
 * A compiled pattern: an object whose `match` is shared by every route (not a
 * closure per route keeping the parsing's arrays and sets alive: a table of
 * 2,000 routes holds 2,000 of these for a whole config generation, #17).
 */
class Pattern implements CompiledPattern {
  /** Segments before a trailing `**` (all of them without one). */
  private readonly fixed: number;

  constructor(
    readonly source: string,
    readonly literalPrefix: string,
    private readonly tokens: readonly Token[],
    private readonly hasRest: boolean,
  ) {
    this.fixed = hasRest ? tokens.length - 1 : tokens.length;
  }

  match(segments: readonly string[]): Record<string, string> | null {
    const fixed = this.fixed;
    if (this.hasRest ? segments.length < fixed : segments.length !== fixed) return null;
    let params: Record<string, string> | null = null;
    for (let i = 0; i < fixed; i++) {
      const t = this.tokens[i];
      const s = segments[i];
      if (t.kind === 'literal') {
        if (s !== t.value) return null;
      } else if (t.kind === 'param') {
        (params ??= {})[t.name] = s;
      }
    }
    return params ?? NO_PARAMS;
  }
}
