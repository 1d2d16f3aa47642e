/**
 * Fuzz target for the configuration file parser (cli/config/load.ts): TOML
 * text, read for every role. Not network-facing, but an operator's typo must
 * get a ConfigError naming line, key and value, never a crash or a hang.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parseConfigText } from '../../cli/config/load.js';
import { OPTIONS, ROLES, optionOf, splitKey } from '../../cli/config/options-table.js';
import { AlliumError } from '../../src/errors.js';
import { check, type FuzzTarget } from '../engine.js';
import { ipv4, printable } from './arbitraries.js';

const SECTIONS = [...new Set(OPTIONS.map((o) => splitKey(o.key)[0])), 'nosuch'];
const NAMES = [...new Set(OPTIONS.map((o) => splitKey(o.key)[1])), 'nosuch'];
const VALUES = fc.oneof(
  fc.integer({ min: -5, max: 70_000 }).map(String),
  fc.constantFrom('true', 'false', '"1 MB"', '"10 minutes"', '"30 s"', '"8 Mbit"', '"-1 MB"', '"1e99 GB"', '"accept *:80"', '"reject private:*"', '[]', '{}', '"x"', '"16:' + '0'.repeat(60) + '"'),
  ipv4.map((a) => `"${a}"`),
  fc.array(fc.oneof(ipv4.map((a) => `"${a}:80"`), fc.constantFrom('"accept *:*"', '"http://127.0.0.1:1#' + 'ab'.repeat(32) + '"', '1', '"a" "b"')), { maxLength: 4 }).map((a) => `[${a.join(', ')}]`),
  printable(40).map((s) => JSON.stringify(s)),
);
const LINE = fc.oneof(
  fc.constantFrom(...SECTIONS).map((s) => `[${s}]`),
  fc.tuple(fc.constantFrom(...NAMES), VALUES).map(([k, v]) => `${k} = ${v}`),
  fc.tuple(fc.constantFrom(...SECTIONS), fc.constantFrom(...NAMES), VALUES).map(([s, k, v]) => `${s}.${k} = ${v}`),
  printable(60),
);
const SEEDS = [new URL('../../../contrib/relay.toml', import.meta.url)];

export const configFileTarget: FuzzTarget<string> = {
  name: 'config-file',
  description: 'a TOML configuration file (parseConfigText) for every role: accepted values are options of that role, everything else a ConfigError',
  kind: 'text',
  modules: ['cli/config/load.ts', 'cli/config/kinds.ts', 'cli/config/units.ts'],
  maxRandomLength: 2000,
  arbitrary: () => fc.array(LINE, { maxLength: 24 }).map((lines) => lines.join('\n')),
  corpus: () => SEEDS.flatMap((url) => {
    try {
      return [readFileSync(url, 'utf8')];
    } catch {
      return [];
    }
  }),
  run(input) {
    let accepted = 0;
    let refused: unknown;
    for (const role of ROLES) {
      try {
        const values = parseConfigText(input, 'fuzz.toml', role);
        for (const key of values.keys()) check(optionOf(role, key) !== undefined, () => `${role}: accepted ${key}, not an option of the role`);
        accepted++;
      } catch (error) {
        if (!(error instanceof AlliumError)) throw error;
        refused = error;
      }
    }
    if (accepted === 0) throw refused;
  },
};
