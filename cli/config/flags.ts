/**
 * The command-line side of the configuration: `--config FILE`,
 * `--print-config`, and one flag per option of the role that has one (from
 * ./options-table.ts), each checked by the option's own schema so a flag and
 * a file line are judged alike. `configCommand(...).resolve()` gives the
 * effective configuration (flags over file over defaults).
 */
import { resolve as resolvePath } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { formatBytes, formatDuration } from './units.js';
import { loadConfigFile, type FileValues } from './load.js';
import { formatConfig, mergeConfig, type EffectiveConfig } from './effective.js';
import { optionsOf, type OptionSpec, type Role } from './options-table.js';

/** A flag's string as the schema reads it: digits become integers (ports, counts, milliseconds). */
function flagInput(spec: OptionSpec, text: string): unknown {
  if (spec.kind.flag === 'integer' && /^\d+$/.test(text.trim())) return Number(text.trim());
  return text;
}

function check(spec: OptionSpec, input: unknown): unknown {
  const result = spec.kind.schema.safeParse(input);
  if (!result.success) throw new InvalidArgumentError(`${result.error.issues[0]?.message ?? 'invalid'}.`);
  return result.data;
}

function defaultText(spec: OptionSpec): string {
  if (spec.default === undefined) return spec.defaultDoc !== undefined ? ` (default: ${spec.defaultDoc})` : '';
  const v = spec.default;
  const shown = spec.kind.toToml === formatDuration ? formatDuration(v as number) : spec.kind.toToml === formatBytes ? formatBytes(v as number) : JSON.stringify(v);
  return ` (default: ${shown})`;
}

export interface ConfigCommand {
  /**
   * The effective configuration from --config, the flags and the defaults;
   * null after printing it for --print-config (the caller then returns).
   * Throws ConfigError for a bad file or a missing required option.
   */
  resolve(): EffectiveConfig | null;
  /** Re-read the same file with the same flags (SIGHUP). Throws ConfigError. */
  reread(): EffectiveConfig;
}

/** Add --config, --print-config and the role's option flags to `command`. */
export function configCommand(command: Command, role: Role): ConfigCommand {
  command
    .option('--config <file>', `TOML configuration file (docs/config.md); flags override it`)
    .option('--print-config', 'print the effective configuration as TOML and exit', false);
  const attributes = new Map<string, OptionSpec>();
  for (const spec of optionsOf(role)) {
    if (spec.flag === undefined) continue;
    const option = new Option(spec.flag, `${spec.doc}${defaultText(spec)}`);
    if (spec.kind.flag === 'list') {
      option.argParser((text: string, previous: unknown[] | undefined) => [...(previous ?? []), ...(check(spec, [text]) as unknown[])]);
    } else if (spec.kind.flag !== 'boolean') {
      option.argParser((text: string) => check(spec, flagInput(spec, text)));
    }
    command.addOption(option);
    attributes.set(option.attributeName(), spec);
  }
  const flagValues = (): Map<string, unknown> => {
    const opts = command.opts<Record<string, unknown>>();
    const values = new Map<string, unknown>();
    for (const [attribute, spec] of attributes) {
      // Commander gives a `--no-x` flag a default of true; only a flag actually given overrides the file.
      if (opts[attribute] !== undefined && command.getOptionValueSource(attribute) !== 'default') values.set(spec.key, opts[attribute]);
    }
    return values;
  };
  const fileOf = (): string | undefined => {
    const file = command.opts<{ config?: string }>().config;
    return file === undefined ? undefined : resolvePath(file);
  };
  const read = (file: string | undefined): FileValues => (file === undefined ? new Map() : loadConfigFile(file, role));
  return {
    resolve() {
      const file = fileOf();
      const printing = command.opts<{ printConfig?: boolean }>().printConfig === true;
      const config = mergeConfig(role, file, read(file), flagValues(), printing);
      if (!printing) return config;
      process.stdout.write(formatConfig(config));
      return null;
    },
    reread() {
      const file = fileOf();
      return mergeConfig(role, file, read(file), flagValues());
    },
  };
}
