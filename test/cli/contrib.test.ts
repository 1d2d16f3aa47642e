/**
 * What contrib/ ships stays usable: the example relay configuration
 * validates, the systemd unit runs the command with a configuration file,
 * reloads with SIGHUP and keeps its sandboxing, and its per-role drop-ins set
 * the memory settings the testnet gives that role.
 */
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../cli/config/load.js';
import { mergeConfig } from '../../cli/config/effective.js';
import { NODE_ENV_VARS, NODE_FLAGS } from '../../cli/node-process.js';

const root = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

it('contrib/relay.toml is a valid relay configuration', () => {
  const file = root('contrib/relay.toml');
  const config = mergeConfig('relay', file, loadConfigFile(file, 'relay'), new Map());
  assert.equal(config.get('relay.nickname'), 'myRelay');
  assert.equal(config.get('metrics.port'), 9035);
});

it('the systemd unit starts allium with --config, reloads with SIGHUP, and is sandboxed', () => {
  const unit = readFileSync(root('contrib/systemd/allium@.service'), 'utf8');
  assert.match(unit, /^ExecStart=.*allium %i --config \/etc\/allium\/%i\.toml$/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  for (const line of ['DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'PrivateDevices=yes', 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', 'SystemCallFilter=@system-service', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'UMask=0077']) {
    assert.ok(unit.split('\n').includes(line), `missing ${line}`);
  }
});

/** `Environment=` assignments of a unit file, quotes taken off: name -> value. */
function environment(unit: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of unit.split('\n')) {
    const m = /^Environment=(?:"([^"]*)"|(\S+))$/.exec(line);
    if (m === null) continue;
    const assignment = m[1] ?? m[2]!;
    const eq = assignment.indexOf('=');
    env.set(assignment.slice(0, eq), assignment.slice(eq + 1));
  }
  return env;
}

it('the systemd drop-ins give relays and clients the memory settings the testnet gives them, and the unit gives every role none', () => {
  assert.equal(environment(readFileSync(root('contrib/systemd/allium@.service'), 'utf8')).size, 0);
  for (const role of ['relay', 'client'] as const) {
    const env = environment(readFileSync(root(`contrib/systemd/allium@${role}.service.d/memory.conf`), 'utf8'));
    const expected = new Map<string, string>([['NODE_OPTIONS', NODE_FLAGS[role]!.join(' ')], ...Object.entries(NODE_ENV_VARS[role]!)]);
    assert.deepEqual(env, expected, role);
  }
});
