/**
 * `allium keys`: a relay's keys in its data directory, without running it.
 * `create` makes any that are missing; `show` prints the public halves (never
 * a secret); `rotate-onion` rotates the ntor onion key now (the previous one
 * stays accepted for the relay's grace period after its next start;
 * docs/protocol.md §8.2.2). Key files are 0600 in a 0700 directory.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { hex } from '../src/bytes.js';
import { parsePath } from './options.js';

interface KeysOptions {
  dataDir: string;
}

async function show(dataDir: string): Promise<string> {
  const { loadRelayKeys } = await import('../relay/keys.js');
  const { OnionKeyRing } = await import('../relay/onion-keys.js');
  const keys = loadRelayKeys(dataDir);
  const ring = new OnionKeyRing(join(dataDir, 'keys'), keys.identity.identity);
  const when = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
  const previous = ring.previous;
  return [
    `identity         ${hex(keys.identity.identity)}   (Ed25519; the relay's fingerprint)`,
    `link key         ${hex(keys.linkKey.public)}   (X25519 Noise static key)`,
    `onion key        ${hex(ring.current.onionKey)}   (X25519 ntor; current since ${when(ring.currentSince)} UTC)`,
    previous === null ? 'previous onion   none' : `previous onion   ${hex(previous.secret.onionKey)}   (replaced ${when(previous.replacedAt)} UTC; accepted during the grace period)`,
    `key directory    ${join(dataDir, 'keys')}`,
  ].join('\n');
}

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description("a relay's keys in its data directory: create, show, rotate-onion");
  const dataDir = (c: Command) => c.requiredOption('--data-dir <dir>', 'the relay\'s data directory (storage.data_dir)', parsePath);
  dataDir(keys.command('create').description('create the keys that are missing (identity, link, onion), then show them')).action(async (opts: KeysOptions) => {
    process.stdout.write(`${await show(resolve(opts.dataDir))}\n`);
  });
  dataDir(keys.command('show').description('show the public keys and the onion key\'s age (never a secret)')).action(async (opts: KeysOptions) => {
    process.stdout.write(`${await show(resolve(opts.dataDir))}\n`);
  });
  dataDir(keys.command('rotate-onion').description('rotate the onion key now (stop the relay first; it republishes at start)')).action(async (opts: KeysOptions) => {
    const dir = resolve(opts.dataDir);
    const { loadRelayKeys } = await import('../relay/keys.js');
    const { OnionKeyRing } = await import('../relay/onion-keys.js');
    const k = loadRelayKeys(dir);
    new OnionKeyRing(join(dir, 'keys'), k.identity.identity).rotate();
    process.stdout.write(`${await show(dir)}\n`);
  });
}
