/**
 * The configuration layer (cli/config/): TOML files validated against the
 * options table, errors that name the file line, the key and the value;
 * flags over file over defaults; --print-config output that reads back;
 * SIGHUP's diff of reloadable and restart-only options.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfigText } from '../../cli/config/load.js';
import { formatConfig, mergeConfig } from '../../cli/config/effective.js';
import { applyReload, describeReload } from '../../cli/config/reload.js';
import { keyLines } from '../../cli/config/locate.js';
import { formatBytes, formatDuration, parseBytes, parseDuration } from '../../cli/config/units.js';
import { OPTIONS, ROLES, optionsOf } from '../../cli/config/options-table.js';

const ID = 'ab'.repeat(32);
const AUTH = `http://127.100.0.1:7000#${ID}`;

const GOOD = `
# a relay
[storage]
data_dir = "/var/lib/allium"

[network]
authorities = ["${AUTH}"]

[relay]
nickname = "relayOne"
or_port = 9001
exit = true
exit_policy = [
  "accept *:80",
  "reject *:*",
]
publish_interval = "5 minutes"
`;

function issuesOf(text: string, role: 'relay' | 'authority' | 'client' = 'relay'): string[] {
  try {
    parseConfigText(text, 'relay.toml', role);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.code, 'ERR_CONFIG');
    return error.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

describe('configuration file', () => {
  it('a valid file gives normalized values', () => {
    const values = parseConfigText(GOOD, 'relay.toml', 'relay');
    assert.equal(values.get('relay.nickname'), 'relayOne');
    assert.equal(values.get('relay.or_port'), 9001);
    assert.equal(values.get('relay.publish_interval'), 300_000);
    assert.deepEqual(values.get('relay.exit_policy'), ['accept *:80', 'reject *:*']);
    assert.deepEqual(values.get('network.authorities'), [AUTH]);
    assert.equal(values.has('relay.address'), false, 'unset keys stay unset (defaults come later)');
  });

  it('a wrong type names the line, the key and the value', () => {
    const lines = issuesOf(GOOD.replace('exit = true', 'exit = "yes"'));
    assert.deepEqual(lines, ['relay.toml:12: relay.exit = "yes": Invalid input: expected boolean, received string']);
  });

  it('an out-of-range value names the line, the key and the value', () => {
    const [line] = issuesOf(GOOD.replace('or_port = 9001', 'or_port = 70000'));
    assert.match(line!, /^relay\.toml:11: relay\.or_port = 70000: .*65535/);
  });

  it('an unknown key names its line and the known keys of the section', () => {
    const [line] = issuesOf(GOOD.replace('or_port = 9001', 'or_port = 9001\norport = 9002'));
    assert.match(line!, /^relay\.toml:12: relay\.orport: unknown key \(known in \[relay\]: nickname, address, or_port/);
  });

  it('a bad exit policy line names the element\'s own line', () => {
    const [line] = issuesOf(GOOD.replace('"reject *:*"', '"rejct *:*"'));
    assert.match(line!, /^relay\.toml:15: relay\.exit_policy\[1\] = "rejct \*:\*": exit policy: bad rule/);
  });

  it('a duplicate key is a TOML error naming its line, the key and where it was first defined', () => {
    const [line] = issuesOf(GOOD.replace('or_port = 9001', 'or_port = 9001\nor_port = 9002'));
    assert.match(line!, /^relay\.toml:12: relay\.or_port: not valid TOML: .*redefine.* \(already defined on line 11\)$/);
    const [dotted] = issuesOf(GOOD.replace('or_port = 9001', 'or_port = 9001\n"nickname" = "again"'));
    assert.match(dotted!, /^relay\.toml:12: relay\.nickname: not valid TOML: .*\(already defined on line 10\)$/);
    const [table] = issuesOf(`${GOOD}\n[relay]\naddress = "127.0.0.2"\n`);
    assert.match(table!, /^relay\.toml:19: relay: not valid TOML: .*redefine.*\(already defined on line 9\)$/);
  });

  it('a section of another role, or an unknown section, is refused', () => {
    const lines = issuesOf(`${GOOD}\n[authority]\nnickname = "a"\n\n[colour]\nx = 1\n`);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^relay\.toml:19: authority: section \[authority\] is read by `allium authority`, not by `allium relay`/);
    assert.match(lines[1]!, /^relay\.toml:22: colour: unknown section \[colour\]/);
  });

  it('every problem is reported, in line order', () => {
    const text = GOOD.replace('nickname = "relayOne"', 'nickname = "no spaces allowed"').replace('"5 minutes"', '"5 fortnights"').replace('#' + ID, '#abc');
    const lines = issuesOf(text);
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0]!, /^relay\.toml:7: network\.authorities\[0\] = ".*#abc": Identity must be 64 hex digits/);
    assert.match(lines[1]!, /^relay\.toml:10: relay\.nickname = "no spaces allowed": Nickname must be 1-19 letters or digits/);
    assert.match(lines[2]!, /^relay\.toml:17: relay\.publish_interval = "5 fortnights": not a duration/);
  });

  it('a table where a value belongs, and a value where a table belongs, are refused', () => {
    assert.match(issuesOf('relay = 5\n')[0]!, /^relay\.toml:1: relay = 5: Invalid input: expected object/);
    assert.match(issuesOf('[relay.nickname]\n')[0]!, /^relay\.toml:1: relay\.nickname = \{\}: /);
  });

  it('an over-long or multi-line string is refused', () => {
    assert.match(issuesOf(`[relay]\nnickname = "${'a'.repeat(5000)}"\n`)[0]!, /relay\.nickname = "a+\.\.\.: Nickname/);
  });
});

describe('effective configuration', () => {
  const file = parseConfigText(GOOD, 'relay.toml', 'relay');

  it('flags override the file, the file overrides defaults', () => {
    const c = mergeConfig('relay', 'relay.toml', file, new Map<string, unknown>([['relay.or_port', 443]]));
    assert.equal(c.get('relay.or_port'), 443);
    assert.equal(c.sources.get('relay.or_port'), 'flag');
    assert.equal(c.get('relay.nickname'), 'relayOne');
    assert.equal(c.sources.get('relay.nickname'), 'file');
    assert.equal(c.get('relay.address'), '127.0.0.1');
    assert.equal(c.sources.get('relay.address'), 'default');
  });

  it('relay.exit_policy without relay.exit = true is refused, naming the file, line and key', () => {
    const noExit = parseConfigText(GOOD.replace('exit = true\n', ''), 'relay.toml', 'relay');
    assert.throws(
      () => mergeConfig('relay', 'relay.toml', noExit, new Map()),
      (error: ConfigError) => error.message === 'relay.toml:12: relay.exit_policy = ["accept *:80","reject *:*"]: needs relay.exit = true (--exit); a relay that is not an exit publishes "reject *:*"',
    );
    assert.throws(
      () => mergeConfig('relay', 'relay.toml', file, new Map<string, unknown>([['relay.exit', false]])),
      (error: ConfigError) => /^relay\.toml:13: relay\.exit_policy = .*: needs relay\.exit = true/.test(error.message),
    );
    assert.throws(
      () => mergeConfig('relay', undefined, new Map(), new Map<string, unknown>([['storage.data_dir', '/d'], ['network.authorities', [AUTH]], ['relay.nickname', 'r1'], ['relay.exit_policy', ['reject *:*']]])),
      (error: ConfigError) => /^allium relay: relay\.exit_policy = \["reject \*:\*"\]: needs relay\.exit = true/.test(error.message),
    );
    // The --exit flag makes the file's policy fine.
    assert.equal(mergeConfig('relay', 'relay.toml', noExit, new Map<string, unknown>([['relay.exit', true]])).get('relay.exit'), true);
  });

  it('a missing required option is named with the file section and the flag', () => {
    assert.throws(
      () => mergeConfig('relay', undefined, new Map(), new Map()),
      (error: ConfigError) =>
        error.issues.length === 3 &&
        /storage\.data_dir: required: set data_dir in \[storage\] of a --config file or with --data-dir/.test(error.message) &&
        /relay\.nickname: required: set nickname in \[relay\]/.test(error.message),
    );
  });

  it('--print-config output reads back to the same configuration', () => {
    for (const role of ROLES) {
      const flags = new Map<string, unknown>([
        ['storage.data_dir', '/d'],
        ['network.authorities', [AUTH]],
        ['relay.nickname', 'r1'],
        ['authority.nickname', 'a1'],
        ['relay.exit', true],
        ['relay.exit_policy', ['accept *:443', 'reject *:*']],
        ['authority.consensus_lifetime', 90_000],
      ].filter(([key]) => optionsOf(role).some((o) => o.key === key)) as [string, unknown][]);
      const c = mergeConfig(role, undefined, new Map(), flags);
      const printed = formatConfig(c);
      const back = mergeConfig(role, 'printed.toml', parseConfigText(printed, 'printed.toml', role), new Map());
      assert.deepEqual([...back.values], [...c.values], `${role}:\n${printed}`);
    }
  });

  it('every option of the table validates its own default', () => {
    for (const option of OPTIONS) {
      if (option.default === undefined) continue;
      const toml = option.kind.toToml !== undefined ? option.kind.toToml(option.default) : option.default;
      assert.deepEqual(option.kind.schema.parse(toml), option.default, option.key);
    }
  });
});

describe('SIGHUP reload', () => {
  const base = parseConfigText(GOOD, 'relay.toml', 'relay');
  const started = mergeConfig('relay', 'relay.toml', base, new Map());

  it('applies reloadable options and names those that need a restart', async () => {
    const running = new Map(started.values);
    const next = mergeConfig('relay', 'relay.toml', parseConfigText(GOOD.replace('accept *:80', 'accept *:443').replace('9001', '9002'), 'relay.toml', 'relay'), new Map());
    const applied: unknown[] = [];
    const outcome = await applyReload(running, next, { 'relay.exit_policy': (v) => void applied.push(v) });
    assert.deepEqual(outcome, { applied: ['relay.exit_policy'], needRestart: ['relay.or_port'] });
    assert.deepEqual(applied, [['accept *:443', 'reject *:*']]);
    assert.deepEqual(running.get('relay.exit_policy'), ['accept *:443', 'reject *:*']);
    assert.equal(running.get('relay.or_port'), 9001, 'a restart-only option keeps its running value');
    assert.equal(describeReload('relay.toml', outcome), 'reloaded relay.toml: applied relay.exit_policy; needs a restart to change relay.or_port');
    const again = await applyReload(running, next, { 'relay.exit_policy': () => assert.fail('unchanged') });
    assert.deepEqual(again, { applied: [], needRestart: ['relay.or_port'] });
  });

  it('an applier that throws stops the reload and is reported', async () => {
    const running = new Map(started.values);
    const next = mergeConfig('relay', 'relay.toml', parseConfigText(GOOD.replace('accept *:80', 'accept *:443'), 'relay.toml', 'relay'), new Map());
    const outcome = await applyReload(running, next, { 'relay.exit_policy': () => { throw new Error('no'); } });
    assert.equal(outcome.error, 'relay.exit_policy: no');
    assert.deepEqual(running.get('relay.exit_policy'), ['accept *:80', 'reject *:*']);
  });
});

describe('units and key lines', () => {
  it('sizes and durations read as torrc writes them and print back exactly', () => {
    assert.equal(parseBytes('1 MB'), 1_000_000);
    assert.equal(parseBytes('512 KiB'), 524_288);
    assert.equal(parseBytes('8 Mbit'), 1_000_000);
    assert.equal(parseBytes(1536), 1536);
    assert.equal(parseDuration('1.5 s'), 1500);
    assert.equal(parseDuration('10 minutes'), 600_000);
    assert.equal(parseDuration(250), 250);
    for (const bad of ['1 parsec', '', '-1 MB', '1e3 MB', 'MB', -5, 1.5, true, null]) {
      assert.throws(() => parseBytes(bad), Error, String(bad));
      assert.throws(() => parseDuration(bad), Error, String(bad));
    }
    for (const n of [0, 1, 999, 1000, 1536, 1_000_000, 1_048_576, 20e9, 123_456_789]) assert.equal(parseBytes(formatBytes(n)), n);
    for (const ms of [1, 999, 1000, 1500, 60_000, 600_000, 3_600_000, 86_400_000, 90_061_001]) assert.equal(parseDuration(formatDuration(ms)), ms);
  });

  it('key lines follow tables, dotted and quoted keys, and skip multi-line values', () => {
    const lines = keyLines(['[a]', 'x = 1', 's = """', 'y = 2', '"""', 'b.c = [', '  "v", # c', '  "w",', ']', '[d . "e"]', "'f' = 3"].join('\n'));
    assert.deepEqual(Object.fromEntries(lines), { a: 1, 'a.x': 2, 'a.s': 3, 'a.b': 6, 'a.b.c': 6, 'a.b.c.0': 7, 'a.b.c.1': 8, d: 10, 'd.e': 10, 'd.e.f': 11 });
  });
});
