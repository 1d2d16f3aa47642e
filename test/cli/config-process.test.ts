/**
 * A relay started from a configuration file only (no flags) joins a running
 * testnet; SIGHUP applies a new exit policy without a restart (the
 * authority then serves the new descriptor), names the options that need a
 * restart, and survives a file that no longer validates. --print-config and
 * a bad file through the real command.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { equalBytes, fromHex } from '../../src/bytes.js';
import { parseConsensus } from '../../src/netdoc/consensus.js';
import { startRoleProcess } from '../support/role-process.js';
import { CLI_MAIN, startTestnetProcess } from '../support/testnet-process.js';

const tmp = mkdtempSync(join(tmpdir(), 'allium-config-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function relayToml(authorities: readonly string[], dataDir: string, policy: string[], port = 0, rate = '2 MB'): string {
  return `[storage]
data_dir = ${JSON.stringify(dataDir)}

[network]
authorities = [${authorities.map((a) => JSON.stringify(a)).join(', ')}]

[relay]
nickname = "fromFile"
address = "127.61.0.1"
or_port = ${port}
exit = true
exit_policy = [
${policy.map((p) => `  ${JSON.stringify(p)},`).join('\n')}
]
publish_interval = "1 minute"

[bandwidth]
rate = ${JSON.stringify(rate)}
`;
}

it('a relay configured by file only joins the testnet, and SIGHUP changes its exit policy in place', async (t) => {
  const net = await startTestnetProcess(t, { relays: 3, exits: 1 });
  // Every voting authority: a relay is in the consensus once more than half of them list it.
  const authorities = net.authorities.map((a) => `${a.url}#${a.identity}`);
  const file = join(tmp, 'relay.toml');
  writeFileSync(file, relayToml(authorities, join(tmp, 'relay-data'), ['accept 127.0.0.0/8:80', 'reject *:*']));

  const relay = startRoleProcess(t, ['relay', '--config', file]);
  const up = await relay.up(20_000);
  assert.equal(up.role, 'relay');
  if (up.role !== 'relay') return;
  assert.equal(up.nickname, 'fromFile');
  assert.equal(up.address, '127.61.0.1');
  assert.equal(up.exit, true);
  const identity = fromHex(up.identity);

  await poll('the relay in the consensus', 30_000, async () => {
    const res = await fetch(`${net.authorityUrl}/allium/v1/consensus`);
    const consensus = parseConsensus(await res.text());
    return consensus.relays.some((r) => equalBytes(r.identity, identity)) ? true : undefined;
  });

  const descriptor = () => fetch(`${net.authorityUrl}/allium/v1/descriptor/${up.identity}`).then((r) => r.text());
  assert.match(await descriptor(), /^accept 127\.0\.0\.0\/8:80$/m);
  assert.match(await descriptor(), /^bandwidth 2000000$/m, 'the rate is advertised');

  // Reload: a new policy and a new rate (applied), and a new port (needs a restart).
  writeFileSync(file, relayToml(authorities, join(tmp, 'relay-data'), ['accept 127.0.0.0/8:443', 'reject *:*'], 9, '3 MB'));
  const mark = relay.stderr().length;
  relay.signal('SIGHUP');
  await relay.waitStderr(/SIGHUP: reloaded .*relay\.toml: applied relay\.exit_policy, bandwidth\.rate; needs a restart to change relay\.or_port/, 10_000, mark);
  await poll('the new policy and rate at the authority', 15_000, async () => {
    const text = await descriptor();
    return text.includes('accept 127.0.0.0/8:443\n') && text.includes('bandwidth 3000000\n') ? true : undefined;
  }).catch(async (e) => { throw new Error(`${e.message}\n${await descriptor()}\n${relay.stderr()}`); });
  assert.ok(relay.alive, 'the relay did not restart');

  // A file that no longer validates changes nothing.
  // It is said on one line at warn, its issues joined with "; ".
  writeFileSync(file, '[relay]\nnickname = 5\n[log]\nbogus = 1\n');
  const mark2 = relay.stderr().length;
  relay.signal('SIGHUP');
  const refused = /\[warn\] SIGHUP: configuration not reloaded, the running one stays: ([^\n]*)\n/;
  await relay.waitStderr(refused, 10_000, mark2);
  const issues = refused.exec(relay.stderr().slice(mark2))![1]!;
  assert.match(issues, /relay\.toml:2: relay\.nickname = 5: /);
  assert.match(issues, /; .*relay\.toml:4: log\.bogus: /);
  assert.ok(relay.alive);
  assert.match(await descriptor(), /^accept 127\.0\.0\.0\/8:443$/m);
});

it('--print-config shows file values with flags over them; a bad file fails naming its line', () => {
  const file = join(tmp, 'print.toml');
  writeFileSync(file, `[network]\nauthorities = ["http://127.0.0.1:7000#${'ab'.repeat(32)}"]\n\n[socks]\nport = 9150\n\n[client]\nready_timeout = "1 minute"\n`);
  const printed = spawnSync(process.execPath, [CLI_MAIN, 'client', '--config', file, '--socks-port', '9250', '--print-config'], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, /^\[socks\]\naddress = "127\.0\.0\.1"\nport = 9250$/m);
  assert.match(printed.stdout, /^ready_timeout = "1 minute"$/m);
  // Defaults are printed too; one with no fixed value (the build timeout is learned) is named in a comment.
  assert.match(printed.stdout, /^isolate_dest_addr = false$/m);
  assert.match(printed.stdout, /^# client\.circuit_build_timeout: not set \(default: learned from build times/m);
  assert.doesNotMatch(printed.stdout, /^circuit_build_timeout =/m);

  writeFileSync(file, '[socks]\nport = "many"\n');
  const bad = spawnSync(process.execPath, [CLI_MAIN, 'client', '--config', file], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /print\.toml:2: socks\.port = "many": Invalid input: expected number, received string/);
  const missing = spawnSync(process.execPath, [CLI_MAIN, 'relay', '--config', join(tmp, 'nope.toml')], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope\.toml: cannot read the configuration file: no such file/);
});
