/**
 * What contrib/ ships stays usable: the example relay configuration
 * validates, and the systemd unit runs the command with a configuration file,
 * reloads with SIGHUP and keeps its sandboxing.
 */
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../cli/config/load.js';
import { mergeConfig } from '../../cli/config/effective.js';

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
