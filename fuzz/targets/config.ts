/**
 * Fuzz target for the configuration file parser (cli/config/load.ts): TOML
 * text, read for every role. Not network-facing, but an operator's typo must
 * get a ConfigError naming line, key and value, never a crash or a hang.
 * Every input either yields, for some role, values that are all options of
 * that role, or is refused by every role with a ConfigError each of whose
 * issues names the file and a line or a key. Seeds: contrib/relay.toml and
 * the committed corpus (fuzz/corpus/config-file/: one file per role).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ConfigError, parseConfigText } from '../../cli/config/load.js';
import { OPTIONS, ROLES, optionOf, splitKey } from '../../cli/config/options-table.js';
import { AlliumError } from '../../src/errors.js';
import { check, type FuzzTarget } from '../engine.js';
import { loadCorpus } from '../corpus.js';
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
  corpus: () => [
    ...SEEDS.flatMap((url) => {
      try {
        return [readFileSync(url, 'utf8')];
      } catch {
        return [];
      }
    }),
    ...loadCorpus<string>('config-file', 'text'),
  ],
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
        check(error instanceof ConfigError, () => `${role}: refused with ${error.name} ${error.code}, not a ConfigError`);
        for (const issue of (error as ConfigError).issues) {
          check(issue.file === 'fuzz.toml' && (issue.line !== undefined || issue.key !== undefined), () => `${role}: an issue naming neither line nor key: ${JSON.stringify(issue).slice(0, 300)}`);
        }
        refused = error;
      }
    }
    if (accepted === 0) throw refused;
  },
};

/** Valid files, one per role, for the committed corpus. */
export function makeConfigCorpus(): Record<string, string[]> {
  return {
    'config-file': [
      '[storage]\ndata_dir = "/var/lib/allium/client"\n\n[socks]\naddress = "127.0.0.1"\nport = 9050\n\n[http_tunnel]\nport = 8118\n\n[control]\nport = 9051\n\n[client]\ncircuit_build_timeout = "30 s"\nisolate_dest_port = true\nmax_circuit_dirtiness = "10 minutes"\n',
      '[storage]\ndata_dir = "/var/lib/allium/auth"\n\n[authority]\nnickname = "auth1"\naddress = "127.100.0.1"\ndir_port = 7000\nvoting_interval = "5 minutes"\n',
      '[relay]\nnickname = "exit1"\naddress = "203.0.113.9"\nor_port = 9001\nexit = true\nexit_policy = ["accept *:80", "accept *:443", "reject *:*"]\nmax_mem_in_queues = "64 MB"\nworkers = 2\n\n[dos]\nmax_links_per_address = 50\ncircuit_rate = 3\ncircuit_burst = 90\n\n[bandwidth]\nrate = "8 Mbit"\n\n[accounting]\nmax = "20 GB"\n',
    ],
  };
}
