/**
 * gateway.yaml described from its one source, the zod schema: the JSON Schema
 * editors validate against (`warden schema`, gateway.schema.json) and the
 * configuration reference (docs/configuration.md). Both are generated; a new
 * key with a `.describe()` text appears in both without touching this file.
 */

import { z } from 'zod';
import { configSchema } from './schema.js';

/** A JSON Schema node, as z.toJSONSchema writes it. */
type Node = {
  $ref?: string;
  type?: string | string[];
  description?: string;
  default?: unknown;
  examples?: unknown[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: Node[];
  items?: Node;
  properties?: Record<string, Node>;
  required?: string[];
  additionalProperties?: boolean | Node;
  propertyNames?: Node;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  minLength?: number;
  pattern?: string;
  format?: string;
  'x-warden-type'?: string;
  $defs?: Record<string, Node>;
  [key: string]: unknown;
};

/** Formats editors know; zod also writes its own (e.g. starts_with), which strict validators reject. */
const STANDARD_FORMATS = new Set(['uri', 'email', 'date-time', 'date', 'time', 'duration', 'ipv4', 'ipv6', 'uuid', 'hostname', 'regex']);

/** The JSON Schema (draft 2020-12) of gateway.yaml as written by people: durations as "30s", defaults shown. */
export function gatewayJsonSchema(): Node {
  const schema = z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const node = ctx.jsonSchema as Node;
      if (typeof node.format === 'string' && !STANDARD_FORMATS.has(node.format)) delete node.format;
      // zod leaves out input defaults of schemas that contain a transform; an empty list or map is
      // the same value on both sides, so show it.
      // Likewise examples, which in schema.ts are always written as the user writes them.
      const examples = z.globalRegistry.get(ctx.zodSchema)?.examples;
      if (node.examples === undefined && Array.isArray(examples)) node.examples = examples;
      const def = ctx.zodSchema._zod.def as { type: string; defaultValue?: unknown };
      if (def.type === 'default' && node.default === undefined) {
        const value = def.defaultValue;
        if ((Array.isArray(value) && value.length === 0) || (value && typeof value === 'object' && Object.keys(value).length === 0)) node.default = value;
      }
    },
  }) as Node;
  return {
    $schema: schema.$schema,
    $id: 'https://warden.dev/schemas/gateway.schema.json',
    title: 'Warden gateway.yaml',
    description:
      'Configuration of Warden, the identity-aware policy gateway for AI agents. `${VAR}` is replaced from the environment inside string values. Reference: docs/configuration.md.',
    ...schema,
  };
}

/** The JSON Schema as the committed gateway.schema.json file holds it. */
export function gatewayJsonSchemaText(): string {
  return JSON.stringify(gatewayJsonSchema(), null, 2) + '\n';
}

// ---------------------------------------------------------------- reference

interface Row {
  key: string;
  node: Node;
  required: boolean;
}

/** One documented key that has no description (the reference test lists them). */
export interface UndescribedKey {
  key: string;
}

function resolve(root: Node, node: Node): { node: Node; ref?: string } {
  if (node.$ref) {
    const name = node.$ref.replace('#/$defs/', '');
    const target = root.$defs?.[name];
    if (!target) throw new Error(`unresolved ${node.$ref}`);
    // A description on the reference wins over the type's own.
    return { node: { ...target, ...(node.description ? { description: node.description } : {}) }, ref: name };
  }
  return { node };
}

/** Keys below `node` (not the node itself), with their full path. Shared types ($ref) are not entered. */
function rowsOf(root: Node, node: Node, prefix: string): Row[] {
  const rows: Row[] = [];
  const visit = (n: Node, path: string) => {
    if (n.$ref) return; // documented once under "Types"
    if (n.properties) {
      const required = new Set(n.required ?? []);
      for (const [name, child] of Object.entries(n.properties)) {
        const key = path ? `${path}.${name}` : name;
        rows.push({ key, node: child, required: required.has(name) });
        visit(child, key);
      }
    }
    if (n.items) visit(n.items, `${path}[]`);
    if (n.additionalProperties && typeof n.additionalProperties === 'object' && Object.keys(n.additionalProperties).length) {
      visit(n.additionalProperties, `${path}.<name>`);
    }
    for (const variant of n.anyOf ?? []) {
      const start = rows.length;
      visit(variant, path);
      // A key that only one alternative requires is not required as such.
      if (n.anyOf && n.anyOf.length > 1)
        for (let i = start; i < rows.length; i++) if (rows[i].key.split('.').length === (path ? path.split('.').length + 1 : 1)) rows[i].required = false;
    }
  };
  visit(node, prefix);
  void root;
  return rows;
}

const code = (v: string) => '`' + v.replace(/`/g, 'ˋ') + '`';
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');

/** Plain YAML scalars stay unquoted; anything YAML would read as another type or as structure is quoted. */
function yamlValue(v: unknown): string {
  if (typeof v === 'string') {
    const plain =
      /^[\w./:@+*-][\w./:@+*${}-]*$/.test(v) && !/^(true|false|null|~|[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?)$/i.test(v) && !/^[*{]|: |#/.test(v);
    return plain ? v : JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(yamlValue).join(', ')}]`;
  if (v && typeof v === 'object')
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${k}: ${yamlValue(x)}`)
      .join(', ')} }`;
  return String(v);
}

function typeOf(root: Node, n: Node): string {
  if (n.$ref) {
    const name = n.$ref.replace('#/$defs/', '');
    return `[${name}](#type-${name.replace(/_/g, '-')})`;
  }
  const special = n['x-warden-type'];
  if (special === 'duration') return '[duration](#durations-and-sizes)';
  if (special === 'size') return '[size](#durations-and-sizes)';
  if (special) return special;
  if (n.enum) return n.enum.map((e) => code(String(e))).join(' | ');
  if (n.const !== undefined) return code(yamlValue(n.const));
  if (n.anyOf) {
    const parts = n.anyOf.map((v) => typeOf(root, v));
    return [...new Set(parts)].join(' or ');
  }
  const t = Array.isArray(n.type) ? n.type.join(' or ') : n.type;
  if (t === 'array') return `list of ${n.items ? typeOf(root, n.items) : 'any'}`;
  if (t === 'object') {
    if (n.properties) return 'object';
    if (n.additionalProperties && typeof n.additionalProperties === 'object') {
      const value = Object.keys(n.additionalProperties).length ? typeOf(root, n.additionalProperties) : 'any';
      return `map of ${value}`;
    }
    return 'object';
  }
  if (t === 'integer' || t === 'number') {
    const min = n.minimum !== undefined && Math.abs(n.minimum) < Number.MAX_SAFE_INTEGER ? n.minimum : undefined;
    const max = n.maximum !== undefined && Math.abs(n.maximum) < Number.MAX_SAFE_INTEGER ? n.maximum : undefined;
    return `${t}${min !== undefined && max !== undefined ? ` ${min}–${max}` : min !== undefined ? ` ≥ ${min}` : max !== undefined ? ` ≤ ${max}` : ''}`;
  }
  if (t === 'null') return code('null');
  return t ?? 'any';
}

/** A value that shows how the key is written. */
function exampleOf(root: Node, n: Node): string | undefined {
  if (n.examples?.length) return yamlValue(n.examples[0]);
  if (n.default !== undefined && !(typeof n.default === 'object' && n.default && Object.keys(n.default).length === 0 && !Array.isArray(n.default))) {
    if (!(Array.isArray(n.default) && n.default.length === 0)) return yamlValue(n.default);
  }
  const { node } = resolve(root, n);
  const special = node['x-warden-type'];
  if (special === 'duration') return '30s';
  if (special === 'size') return '64KiB';
  if (special === 'host:port') return '0.0.0.0:8080';
  if (special === 'URL') return 'https://example.com';
  if (node.enum) return yamlValue(node.enum[0]);
  if (node.const !== undefined) return yamlValue(node.const);
  if (node.anyOf) return exampleOf(root, node.anyOf.find((v) => v.type !== 'null') ?? node.anyOf[0]);
  const t = Array.isArray(node.type) ? node.type[0] : node.type;
  if (t === 'boolean') return 'true';
  if (t === 'integer' || t === 'number') return String(node.minimum !== undefined && node.minimum > 0 ? node.minimum : 1);
  return undefined;
}

function defaultOf(n: Node, required: boolean): string {
  if (n.default === undefined) return required ? '**required**' : '—';
  if (n.default && typeof n.default === 'object' && !Array.isArray(n.default) && Object.keys(n.default).length === 0) return '—';
  return code(yamlValue(n.default));
}

function table(root: Node, rows: Row[], strip: string, missing: UndescribedKey[]): string {
  const out = ['| key | type | default | example | description |', '|---|---|---|---|---|'];
  for (const row of rows) {
    const { node } = resolve(root, row.node);
    const description = row.node.description ?? node.description;
    if (!description) missing.push({ key: row.key });
    const shown = strip && row.key.startsWith(strip) ? row.key.slice(strip.length) : row.key;
    const example = exampleOf(root, row.node);
    out.push(
      `| ${code(shown)} | ${cell(typeOf(root, row.node))} | ${cell(defaultOf(row.node, row.required))} | ${example === undefined ? '' : cell(code(example))} | ${cell(description ?? '')} |`,
    );
  }
  return out.join('\n');
}

const INTRO = `<!-- Generated from src/config/schema.ts by \`npm run docs:config\`. Do not edit: change the schema's .describe() texts and regenerate. -->

# Configuration reference

Every key of \`gateway.yaml\`, generated from the schema Warden validates
against. Unknown keys are errors, and \`warden validate -c gateway.yaml\` reports
every problem at once with its YAML path and line.

- **Environment variables.** \`\${VAR}\` inside a string value is replaced from
  the environment; \`\${VAR:-default}\` gives a default; \`$\${\` is a literal
  \`\${\`. A variable that is not set is a config error that names it.
  Substitution happens inside string values only, so a variable never injects
  YAML structure (a number or boolean key cannot come from a variable).
  Inside a flow collection (\`{ … }\`, \`[ … ]\`) quote it (\`{ secret: "\${X}" }\`):
  unquoted, YAML reads its braces as the collection's own, and \`warden
  validate\` says so.
- **Listen addresses.** \`WARDEN_LISTEN\` and \`WARDEN_ADMIN_LISTEN\` (\`off\` for
  none) override \`server.listen\` and \`server.admin_listen\` of any file.
- **Paths** (\`authz.model\`, \`authz.tuples\`) are relative to the directory of
  \`gateway.yaml\`.

### Durations and sizes

A duration is a number with a unit — \`500ms\`, \`30s\`, \`10m\`, \`1h\`, \`1d\` —
or a bare number of seconds. A size is a number of bytes or a number with a
unit: \`64KiB\`, \`10MB\`, \`1GiB\` (\`KB\`/\`MB\`/\`GB\` are powers of 1000, \`KiB\`/\`MiB\`/\`GiB\`
of 1024).

### Editor completion

The JSON Schema of this file is [\`gateway.schema.json\`](../gateway.schema.json)
(also printed by \`warden schema\`). With the YAML language server (VS Code's
YAML extension, Neovim, JetBrains, Helix) put this first line in
\`gateway.yaml\` to get completion, hover text and checks for every key:

\`\`\`yaml
# yaml-language-server: $schema=./gateway.schema.json
\`\`\`

(Adjust the path to where the schema file is, or use \`warden schema >
gateway.schema.json\` next to your config.)
`;

/** docs/configuration.md, and the keys that lack a description. */
export function configReference(schema: Node = gatewayJsonSchema()): { markdown: string; undescribed: UndescribedKey[] } {
  const missing: UndescribedKey[] = [];
  const sections: string[] = [INTRO];
  const top = Object.entries(schema.properties ?? {});
  const defs = Object.entries(schema.$defs ?? {}).sort(([a], [b]) => a.localeCompare(b));
  sections.push(
    '## Sections\n\n' +
      top.map(([name, n]) => `- [\`${name}\`](#${name}) — ${resolve(schema, n).node.description ?? ''}`).join('\n') +
      '\n- [Types](#types) — ' +
      defs.map(([name]) => `[${name}](#type-${name.replace(/_/g, '-')})`).join(', '),
  );
  for (const [name, n] of top) {
    const { node } = resolve(schema, n);
    if (!node.description) missing.push({ key: name });
    const rows = rowsOf(schema, node, name);
    const list = node.type === 'array' ? ` (a list; keys of each item below, \`${name}[].key\`)` : '';
    sections.push(`## \`${name}\`\n\n${node.description ?? ''}${list}.\n\n${table(schema, rows, '', missing)}`);
  }
  const types = ['## Types\n\nShapes used in more than one place; a type column links here.'];
  for (const [name, def] of defs) {
    if (!def.description) missing.push({ key: `$defs.${name}` });
    const rows = rowsOf(schema, { ...def, $ref: undefined }, '');
    const shape = typeOf(schema, { ...def, description: undefined });
    types.push(
      `<a id="type-${name.replace(/_/g, '-')}"></a>\n### ${name}\n\n${def.description ?? ''}. Shape: ${shape}.` +
        (rows.length ? `\n\n${table(schema, rows, '', missing)}` : ''),
    );
  }
  sections.push(types.join('\n\n'));
  return { markdown: sections.join('\n\n') + '\n', undescribed: missing };
}
