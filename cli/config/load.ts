/**
 * Reading a role's configuration file: TOML parsed by smol-toml, then
 * validated by a zod schema built from the options table
 * (./options-table.ts). Every problem becomes one line that names the file,
 * the line, the key and the value:
 *
 *   relay.toml:7: relay.or_port = 70000: Too big: expected number to be <=65535
 *
 * Syntax errors come from smol-toml with their line; a duplicate key (which
 * TOML forbids) also names the key and the line it was first defined on.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { AlliumError } from '../../src/errors.js';
import { definedOn, keyLines, lineOf } from './locate.js';
import { OPTIONS, optionsOf, splitKey, type Role } from './options-table.js';

/** Files larger than this are refused before parsing. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** One problem in a configuration file. */
export interface ConfigIssue {
  file: string;
  /** 1-based line, when known. */
  line?: number;
  /** `section.name` (or `section`), when the problem is about a key. */
  key?: string;
  /** The offending value, when there is one. */
  value?: unknown;
  message: string;
}

/** A configuration that cannot be used; `message` has one line per issue. Code ERR_CONFIG. */
export class ConfigError extends AlliumError {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super('ERR_CONFIG', issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

/** `FILE:LINE: KEY = VALUE: MESSAGE`, leaving out what is unknown. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line !== undefined ? `${issue.file}:${issue.line}` : issue.file;
  const what = issue.key === undefined ? '' : issue.value === undefined ? `${issue.key}: ` : `${issue.key} = ${showValue(issue.value)}: `;
  return `${where}: ${what}${issue.message}`;
}

function showValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The validated values a file sets, by key (`relay.nickname` → value),
 * normalized by each option's kind; `lines` has the 1-based line of each
 * key path (absent for values not read from a file).
 */
export interface FileValues extends Map<string, unknown> {
  lines?: ReadonlyMap<string, number>;
}

const schemas = new Map<Role, z.ZodType<Record<string, Record<string, unknown>>>>();

/** The zod schema of `role`'s file: one strict table per section, every key optional. */
export function fileSchema(role: Role): z.ZodType<Record<string, Record<string, unknown>>> {
  let schema = schemas.get(role);
  if (schema === undefined) {
    const sections = new Map<string, Record<string, z.ZodType>>();
    for (const option of optionsOf(role)) {
      const [section, name] = splitKey(option.key);
      const shape = sections.get(section) ?? {};
      shape[name] = option.kind.schema.optional();
      sections.set(section, shape);
    }
    const shape: Record<string, z.ZodType> = {};
    for (const [section, keys] of sections) shape[section] = z.strictObject(keys).optional();
    schema = z.strictObject(shape) as unknown as z.ZodType<Record<string, Record<string, unknown>>>;
    schemas.set(role, schema);
  }
  return schema;
}

/** `relay.exit_policy[1]` for the path ['relay', 'exit_policy', 1]. */
function keyName(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`)).join('');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const part of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[part];
  }
  return v;
}

/** Sections some other role reads but `role` does not. */
function foreignSection(role: Role, section: string): Role[] {
  const readers = new Set<Role>();
  for (const o of OPTIONS) if (splitKey(o.key)[0] === section) for (const r of o.roles) readers.add(r);
  return readers.has(role) ? [] : [...readers];
}

/**
 * Validate TOML `text` (named `file` in messages) as `role`'s configuration.
 * Returns the values it sets. Throws ConfigError listing every problem.
 */
export function parseConfigText(text: string, file: string, role: Role): FileValues {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      const first = error.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '');
      const defined = /redefine/.test(first) ? definedOn(text, error.line) : undefined;
      const again = defined?.before !== undefined ? ` (already defined on line ${defined.before})` : '';
      throw new ConfigError([{ file, line: error.line, ...(defined !== undefined ? { key: defined.key } : {}), message: `not valid TOML: ${first}${again}` }]);
    }
    throw error;
  }
  const lines = keyLines(text);
  const result = fileSchema(role).safeParse(doc);
  if (!result.success) {
    const issues: ConfigIssue[] = [];
    for (const issue of result.error.issues) {
      const path = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') {
        for (const extra of issue.keys) {
          const full = [...path, extra];
          const key = full.join('.');
          let message: string;
          if (path.length === 0) {
            const readers = foreignSection(role, extra);
            message = readers.length > 0 ? `section [${extra}] is read by \`allium ${readers.join('`, `allium ')}\`, not by \`allium ${role}\`` : `unknown section [${extra}]`;
          } else {
            const known = optionsOf(role).filter((o) => splitKey(o.key)[0] === path[0]).map((o) => splitKey(o.key)[1]);
            message = `unknown key (known in [${path[0]}]: ${known.join(', ')})`;
          }
          const line = lineOf(lines, full);
          issues.push({ file, ...(line !== undefined ? { line } : {}), key, message });
        }
        continue;
      }
      const line = lineOf(lines, path);
      const value = valueAt(doc, issue.path);
      issues.push({
        file,
        ...(line !== undefined ? { line } : {}),
        ...(path.length > 0 ? { key: keyName(issue.path) } : {}),
        ...(value !== undefined ? { value } : {}),
        message: issue.message,
      });
    }
    issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(issues);
  }
  const values: FileValues = Object.assign(new Map<string, unknown>(), { lines });
  for (const [section, keys] of Object.entries(result.data)) {
    for (const [name, value] of Object.entries(keys ?? {})) if (value !== undefined) values.set(`${section}.${name}`, value);
  }
  return values;
}

/** Read and validate `path` as `role`'s configuration file. Throws ConfigError (also for an unreadable or oversized file). */
export function loadConfigFile(path: string, role: Role): FileValues {
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new ConfigError([{ file: path, message: `cannot read the configuration file: ${reason}` }]);
  }
  return parseConfigText(text, path, role);
}
