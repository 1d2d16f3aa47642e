/**
 * The effective configuration of a role: for each option, the command-line
 * flag if given, else the file's value, else the table's default
 * (./options-table.ts). Also the TOML that `--print-config` shows.
 */
import { stringify } from 'smol-toml';
import { ConfigError, type ConfigIssue, type FileValues } from './load.js';
import { optionOf, optionsOf, splitKey, type Role } from './options-table.js';

/** Where an effective value came from. */
export type ValueSource = 'flag' | 'file' | 'default';

export class EffectiveConfig {
  constructor(
    readonly role: Role,
    /** The configuration file, if one was given. */
    readonly file: string | undefined,
    readonly values: ReadonlyMap<string, unknown>,
    readonly sources: ReadonlyMap<string, ValueSource>,
  ) {}

  /** The value of `key`, or undefined when unset. Throws if `key` is not an option of this role (a programming error). */
  get<T>(key: string): T | undefined {
    if (optionOf(this.role, key) === undefined) throw new Error(`${key} is not an option of ${this.role}`);
    return this.values.get(key) as T | undefined;
  }

  /** The value of a key that has a default or is required (checked by mergeConfig). */
  must<T>(key: string): T {
    const value = this.get<T>(key);
    if (value === undefined) throw new Error(`${key} is unset`);
    return value;
  }
}

/**
 * Checks between options of the merged configuration: a relay's
 * `relay.exit_policy` needs `relay.exit = true` (a non-exit publishes
 * "reject *:*" whatever the policy says).
 */
function crossIssues(role: Role, file: string | undefined, fileValues: FileValues, values: ReadonlyMap<string, unknown>, sources: ReadonlyMap<string, ValueSource>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (role === 'relay' && values.has('relay.exit_policy') && values.get('relay.exit') !== true) {
    const fromFile = sources.get('relay.exit_policy') === 'file' && file !== undefined;
    const line = fromFile ? fileValues.lines?.get('relay.exit_policy') : undefined;
    issues.push({
      file: fromFile ? file : `allium ${role}`,
      ...(line !== undefined ? { line } : {}),
      key: 'relay.exit_policy',
      value: values.get('relay.exit_policy'),
      message: 'needs relay.exit = true (--exit); a relay that is not an exit publishes "reject *:*"',
    });
  }
  return issues;
}

/**
 * Merge flags over file over defaults. Throws ConfigError naming every
 * required option that is still unset and every option another one
 * contradicts (unless `allowMissing`, for --print-config).
 */
export function mergeConfig(
  role: Role,
  file: string | undefined,
  fileValues: FileValues,
  flagValues: ReadonlyMap<string, unknown>,
  allowMissing = false,
): EffectiveConfig {
  const values = new Map<string, unknown>();
  const sources = new Map<string, ValueSource>();
  const missing: ConfigIssue[] = [];
  for (const option of optionsOf(role)) {
    if (flagValues.has(option.key)) {
      values.set(option.key, flagValues.get(option.key));
      sources.set(option.key, 'flag');
    } else if (fileValues.has(option.key)) {
      values.set(option.key, fileValues.get(option.key));
      sources.set(option.key, 'file');
    } else if (option.default !== undefined) {
      values.set(option.key, option.default);
      sources.set(option.key, 'default');
    } else if (option.required === true) {
      const [section, name] = splitKey(option.key);
      const how = option.flag === undefined ? '' : ` or with ${option.flag.split(' ')[0]}`;
      missing.push({ file: file ?? `allium ${role}`, key: option.key, message: `required: set ${name} in [${section}]${file === undefined ? ' of a --config file' : ''}${how}` });
    }
  }
  const issues = [...missing, ...crossIssues(role, file, fileValues, values, sources)];
  if (issues.length > 0 && !allowMissing) throw new ConfigError(issues);
  return new EffectiveConfig(role, file, values, sources);
}

/** The effective configuration as a TOML document (what `--print-config` prints); unset required options appear as comments. */
export function formatConfig(config: EffectiveConfig): string {
  const tables: Record<string, Record<string, unknown>> = {};
  const notes: string[] = [];
  for (const option of optionsOf(config.role)) {
    const [section, name] = splitKey(option.key);
    const value = config.values.get(option.key);
    if (value === undefined) {
      notes.push(`# ${option.key}: ${option.required === true ? 'required, not set' : `not set (default: ${option.defaultDoc ?? 'none'})`}`);
      continue;
    }
    (tables[section] ??= {})[name] = option.kind.toToml !== undefined ? option.kind.toToml(value) : value;
  }
  const header = [`# allium ${config.role}: effective configuration${config.file !== undefined ? ` (file ${config.file}, flags override it)` : ''}`, ...notes];
  return `${header.join('\n')}\n\n${stringify(tables)}\n`;
}
