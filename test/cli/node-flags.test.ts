/**
 * ALLIUM_NODE_FLAGS (cli/node-process.ts, docs/testnet.md "Profiling the
 * nodes"): extra Node flags for every node of a testnet, with `{nickname}`
 * replaced per node; a word that is not a flag stops the testnet before any
 * node starts. End to end: a testnet started with --cpu-prof leaves one
 * profile per node, named after it, once stopped.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extraNodeFlags } from '../../cli/node-process.js';
import { AlliumError } from '../../src/errors.js';
import { CLI_MAIN, startTestnetProcess } from '../support/testnet-process.js';

test('extraNodeFlags: words after white space, {nickname} replaced, none when unset', () => {
  assert.deepEqual(extraNodeFlags('relay2', {}), []);
  assert.deepEqual(extraNodeFlags('relay2', { ALLIUM_NODE_FLAGS: '  ' }), []);
  assert.deepEqual(
    extraNodeFlags('relay2', { ALLIUM_NODE_FLAGS: ' --cpu-prof\t--cpu-prof-name={nickname}.cpuprofile\n--x={nickname}/{nickname} ' }),
    ['--cpu-prof', '--cpu-prof-name=relay2.cpuprofile', '--x=relay2/relay2'],
  );
});

test('extraNodeFlags: a word that is not a flag is refused (node would run it as its script)', () => {
  for (const bad of ['evil.js', '--cpu-prof evil.js', 'x']) {
    assert.throws(
      () => extraNodeFlags('client', { ALLIUM_NODE_FLAGS: bad }),
      (e: unknown) => e instanceof AlliumError && e.code === 'ERR_CONFIG' && /is not a Node flag/.test(e.message),
      bad,
    );
  }
});

test('allium testnet refuses a bad ALLIUM_NODE_FLAGS before starting any node', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'allium-node-flags-bad-'));
  try {
    const child = spawn(process.execPath, [CLI_MAIN, 'testnet', '--socks-port', '0', '--data-dir', dataDir], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ALLIUM_NODE_FLAGS: '--cpu-prof oops.js' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('the testnet did not exit within 15 s'));
      }, 15_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.notEqual(code, 0);
    assert.match(stderr, /ALLIUM_NODE_FLAGS: "oops\.js" is not a Node flag/);
    // No node was started: no node directory in the data directory.
    assert.deepEqual(readdirSync(dataDir).filter((f) => /^(auth|relay|client)/.test(f)), []);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a testnet with ALLIUM_NODE_FLAGS=--cpu-prof leaves one profile per node, named after it', async (t) => {
  const profDir = mkdtempSync(join(tmpdir(), 'allium-node-flags-prof-'));
  t.after(() => rmSync(profDir, { recursive: true, force: true }));
  const net = await startTestnetProcess(t, {
    env: { ALLIUM_NODE_FLAGS: `--cpu-prof --cpu-prof-interval=10000 --cpu-prof-dir=${profDir} --cpu-prof-name={nickname}.cpuprofile` },
  });
  const nicknames = [...net.authorities.map((_, i) => `auth${i + 1}`), ...net.relays.map((r) => r.nickname), 'client'];
  await net.stop();
  const files = readdirSync(profDir).sort();
  assert.deepEqual(files, nicknames.map((n) => `${n}.cpuprofile`).sort());
  for (const f of files) {
    const profile = JSON.parse(readFileSync(join(profDir, f), 'utf8')) as { nodes: unknown[]; samples: unknown[] };
    assert.ok(profile.nodes.length > 0 && Array.isArray(profile.samples), `${f} is a V8 CPU profile`);
  }
});
