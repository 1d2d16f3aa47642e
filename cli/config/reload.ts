/**
 * SIGHUP: re-read the configuration file (with the same flags), apply the
 * options that can change on a running node (`reload: true` in
 * ./options-table.ts, through the role's appliers), and say which changed
 * options need a restart. A file that no longer validates is reported and
 * changes nothing.
 */
import { describeError } from '../lifecycle.js';
import type { LogLevel } from '../log/logger.js';
import type { EffectiveConfig } from './effective.js';
import type { ConfigCommand } from './flags.js';
import { optionOf } from './options-table.js';

/** How a role applies a new value of one reloadable option. */
export type Appliers = Readonly<Record<string, (value: unknown) => void | Promise<void>>>;

/** What one reload did. */
export interface ReloadOutcome {
  applied: string[];
  needRestart: string[];
  /** The error that stopped the reload (the file did not validate, or an applier threw). */
  error?: string;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Compare `next` with `running` and apply each changed reloadable option;
 * `running` is updated in place with what was applied (so an option that
 * needs a restart keeps being reported until the node restarts).
 */
export async function applyReload(running: Map<string, unknown>, next: EffectiveConfig, appliers: Appliers): Promise<ReloadOutcome> {
  const outcome: ReloadOutcome = { applied: [], needRestart: [] };
  const keys = new Set([...running.keys(), ...next.values.keys()]);
  for (const key of keys) {
    const value = next.values.get(key);
    if (same(running.get(key), value)) continue;
    const apply = appliers[key];
    if (optionOf(next.role, key)?.reload !== true || apply === undefined) {
      outcome.needRestart.push(key);
      continue;
    }
    try {
      await apply(value);
    } catch (error) {
      outcome.error = `${key}: ${describeError(error)}`;
      return outcome;
    }
    running.set(key, value);
    outcome.applied.push(key);
  }
  return outcome;
}

/** One line for the log saying what a reload did. */
export function describeReload(file: string, outcome: ReloadOutcome): string {
  const parts: string[] = [];
  if (outcome.applied.length > 0) parts.push(`applied ${outcome.applied.join(', ')}`);
  if (outcome.needRestart.length > 0) parts.push(`needs a restart to change ${outcome.needRestart.join(', ')}`);
  if (outcome.error !== undefined) parts.push(`stopped: ${outcome.error}`);
  return `reloaded ${file}: ${parts.length > 0 ? parts.join('; ') : 'no changes'}`;
}

/**
 * One log line (at `warn`) for a reload that was refused: the file's issues
 * (one per line in ConfigError's message) joined with "; ".
 */
export function describeRefusedReload(error: unknown): string {
  const issues = describeError(error).split('\n').filter((line) => line.length > 0);
  return `SIGHUP: configuration not reloaded, the running one stays: ${issues.join('; ')}`;
}

/**
 * Reload on every SIGHUP until the returned function is called. Without a
 * file, SIGHUP only says so (and, unlike Node's default, does not end the
 * process). `say` gets one line each, with `warn` for a refused or stopped reload.
 */
export function reloadOnSighup(command: ConfigCommand, started: EffectiveConfig, appliers: Appliers, say: (line: string, level?: LogLevel) => void): () => void {
  const running = new Map(started.values);
  let busy: Promise<void> = Promise.resolve();
  const onHup = () => {
    busy = busy.then(async () => {
      if (started.file === undefined) {
        say('SIGHUP: no configuration file to reload (started without --config)');
        return;
      }
      let next: EffectiveConfig;
      try {
        next = command.reread();
      } catch (error) {
        say(describeRefusedReload(error), 'warn');
        return;
      }
      const outcome = await applyReload(running, next, appliers);
      say(`SIGHUP: ${describeReload(started.file, outcome)}`, outcome.error !== undefined ? 'warn' : 'notice');
    });
  };
  process.on('SIGHUP', onHup);
  return () => process.off('SIGHUP', onHup);
}
