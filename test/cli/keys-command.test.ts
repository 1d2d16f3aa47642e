/**
 * `allium keys create | show | rotate-onion` (and `sign`, with the relay
 * processes, in test/relay/offline-identity.test.ts): keys made once with mode 0600,
 * only public halves printed, and an offline onion-key rotation that keeps
 * the previous key for the grace period; the data directory from a relay's
 * --config file; `sign` refuses a data directory without relay keys.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { hex } from '../../src/bytes.js';
import { CLI_MAIN } from '../support/testnet-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'allium-keys-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const run = (...args: string[]) => spawnSync(process.execPath, [CLI_MAIN, 'keys', ...args], { encoding: 'utf8', timeout: 15_000 });

it('creates, shows and rotates a relay\'s keys without printing a secret', () => {
  const dir = join(tmp, 'relay');
  const created = run('create', '--data-dir', dir);
  assert.equal(created.status, 0, created.stderr);
  const onion = /^onion key\s+([0-9a-f]{64})/m.exec(created.stdout)![1]!;
  assert.match(created.stdout, /^previous onion\s+none$/m);
  for (const name of ['identity_ed25519', 'signing_ed25519', 'link_x25519', 'ntor_x25519']) {
    const path = join(dir, 'keys', name);
    assert.equal(statSync(path).mode & 0o777, 0o600, name);
    assert.ok(!created.stdout.includes(hex(readFileSync(path).subarray(0, 32))), `${name} secret printed`);
  }
  assert.match(created.stdout, /^identity key\s+\S+identity_ed25519 \(online: the relay renews its signing key itself\)$/m);
  assert.match(created.stdout, /^signing key\s+[0-9a-f]{64}\s/m);
  assert.match(created.stdout, /^signing cert\s+valid \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to .* \(30\.0 days left\)$/m);
  assert.notEqual(run('create', '--data-dir', dir, '--lifetime-days', '401').status, 0, 'at most 400 days');
  const shown = run('show', '--data-dir', dir);
  assert.equal(shown.stdout, created.stdout, 'show changes nothing');
  const rotated = run('rotate-onion', '--data-dir', dir);
  assert.equal(rotated.status, 0, rotated.stderr);
  assert.match(rotated.stdout, new RegExp(`^previous onion\\s+${onion}\\s`, 'm'));
  assert.doesNotMatch(rotated.stdout, new RegExp(`^onion key\\s+${onion}`, 'm'));
  assert.equal(statSync(join(dir, 'keys', 'ntor_x25519.previous')).mode & 0o777, 0o600);
  assert.equal(run('show').status === 0, false, '--data-dir is required');
});

it('takes the data directory from a relay configuration file; --data-dir wins over it', () => {
  const dir = join(tmp, 'from-config');
  const config = join(tmp, 'relay.toml');
  writeFileSync(config, `[storage]\ndata_dir = ${JSON.stringify(dir)}\n\n[relay]\nnickname = "keysConfig"\n`);
  const created = run('create', '--config', config);
  assert.equal(created.status, 0, created.stderr);
  assert.ok(existsSync(join(dir, 'keys', 'identity_ed25519')));
  assert.match(created.stdout, new RegExp(`^key directory\\s+${join(dir, 'keys').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  const shown = run('show', '--config', config);
  assert.equal(shown.stdout, created.stdout);
  const elsewhere = run('show', '--config', config, '--data-dir', join(tmp, 'nothing-here'));
  assert.notEqual(elsewhere.status, 0);
  assert.match(elsewhere.stderr, /no relay keys in .*nothing-here/);
  writeFileSync(config, '[relay]\nnickname = "keysConfig"\nbogus = 1\n');
  const bad = run('show', '--config', config);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /relay\.toml:3: relay\.bogus: unknown key/);
  writeFileSync(config, '[relay]\nnickname = "keysConfig"\n');
  assert.match(run('show', '--config', config).stderr, /storage\.data_dir: not set/);
});

it('sign refuses a data directory with no relay keys yet, creating nothing; create still creates', () => {
  const source = join(tmp, 'has-identity');
  assert.equal(run('create', '--data-dir', source).status, 0);
  const missing = join(tmp, 'does-not-exist');
  const signed = run('sign', '--identity', join(source, 'keys', 'identity_ed25519'), '--data-dir', missing);
  assert.notEqual(signed.status, 0);
  assert.match(signed.stderr, new RegExp(`no relay keys in ${join(missing, 'keys')}.*run \`allium keys create\` there first`));
  assert.equal(existsSync(missing), false, 'nothing created');
  assert.equal(run('create', '--data-dir', missing).status, 0);
  assert.ok(existsSync(join(missing, 'keys', 'identity_ed25519')));
});
