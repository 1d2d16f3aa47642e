/**
 * `allium keys`: a relay's keys in its data directory, without running it
 * (docs/protocol.md §8.2.2, §8.2.3; docs/operators.md).
 *
 *   create        make the keys that are missing (identity, signing key and
 *                 certificate, link, onion); renews a due signing key when
 *                 the identity key is present
 *   show          print the public halves, the signing key's certificate
 *                 window and the onion keys' ages (never a secret; changes nothing)
 *   sign          certify a new signing key with an identity key kept
 *                 elsewhere (--identity FILE) for --lifetime-days; renewing
 *                 is signing again
 *   rotate-onion  rotate the ntor onion key now
 *
 * Each takes the data directory as --data-dir DIR or from a relay
 * configuration file's storage.data_dir (--config FILE, read by the same
 * loader as `allium relay`); --data-dir wins when both are given.
 * Key files are 0600 in a 0700 directory.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { equalBytes, hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import { loadConfigFile } from './config/load.js';
import { parsePath } from './options.js';

interface KeysOptions {
  dataDir?: string;
  config?: string;
}

/** The data directory, absolute: --data-dir, else storage.data_dir of --config. Throws ERR_CONFIG (ConfigError for a bad file). */
function dataDirOf(opts: KeysOptions): string {
  if (opts.dataDir !== undefined) return resolve(opts.dataDir);
  if (opts.config === undefined) throw new AlliumError('ERR_CONFIG', 'give the relay\'s data directory: --data-dir DIR or --config FILE (its storage.data_dir)');
  const file = resolve(opts.config);
  const dir = loadConfigFile(file, 'relay').get('storage.data_dir') as string | undefined;
  if (dir === undefined) throw new AlliumError('ERR_CONFIG', `${file}: storage.data_dir: not set; give --data-dir DIR`);
  return resolve(dir);
}

interface SignOptions extends KeysOptions {
  identity: string;
  lifetimeDays: number;
}

const DAY_MS = 86_400_000;

function parseLifetimeDays(value: string): number {
  const days = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(days > 0) || days > 400) throw new InvalidArgumentError('a number of days, more than 0 and at most 400');
  return days;
}

const when = (ms: number) => `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;

/** The public keys in `dataDir` and the state of the signing key at `now`. Creates nothing but missing link/onion keys (as before). */
async function show(dataDir: string, now = Date.now()): Promise<string> {
  const keysModule = await import('../relay/keys.js');
  const { OnionKeyRing } = await import('../relay/onion-keys.js');
  const { crypto } = await import('../src/crypto/crypto.js');
  const idPath = keysModule.identityKeyPath(dataDir);
  const online = existsSync(idPath);
  const signer = keysModule.loadRelaySigner(dataDir);
  const identity = online ? crypto.ed25519PublicKey(keysModule.readIdentitySeed(idPath)) : signer?.cert.identity;
  if (identity === undefined) throw new AlliumError('ERR_CONFIG', `no relay keys in ${join(dataDir, 'keys')}: run \`allium keys create\` or \`allium keys sign\``);
  const { loadOrCreateSecret } = await import('../src/key-file.js');
  const linkSecret = loadOrCreateSecret(join(dataDir, 'keys', 'link_x25519'), () => crypto.randomBytes(32));
  loadOrCreateSecret(join(dataDir, 'keys', 'ntor_x25519'), () => crypto.randomBytes(32));
  const ring = new OnionKeyRing(join(dataDir, 'keys'), identity);
  const previous = ring.previous;
  let signing: string[];
  if (signer === undefined) signing = ['signing key      none'];
  else {
    const state = keysModule.signingKeyState(signer, now);
    const note = !equalBytes(signer.cert.identity, identity)
      ? 'CERTIFIED FOR ANOTHER IDENTITY'
      : state === 'expired'
        ? 'EXPIRED'
        : state === 'expiring'
          ? `expires in ${((signer.cert.expires - now) / DAY_MS).toFixed(1)} days: renew it`
          : `${((signer.cert.expires - now) / DAY_MS).toFixed(1)} days left`;
    signing = [
      `signing key      ${hex(signer.cert.signingKey)}   (Ed25519; signs descriptors and link certificates)`,
      `signing cert     valid ${when(signer.cert.published)} to ${when(signer.cert.expires)}   (${note})`,
    ];
  }
  return [
    `identity         ${hex(identity)}   (Ed25519; the relay's fingerprint)`,
    `identity key     ${online ? `${idPath} (online: the relay renews its signing key itself)` : 'offline (not in the data directory; renew with `allium keys sign`)'}`,
    ...signing,
    `link key         ${hex(crypto.x25519PublicKey(linkSecret))}   (X25519 Noise static key)`,
    `onion key        ${hex(ring.current.onionKey)}   (X25519 ntor; current since ${when(ring.currentSince)})`,
    previous === null ? 'previous onion   none' : `previous onion   ${hex(previous.secret.onionKey)}   (replaced ${when(previous.replacedAt)}; accepted during the grace period)`,
    `key directory    ${join(dataDir, 'keys')}`,
  ].join('\n');
}

/** `allium keys sign`: certify a new signing key for the data directory with the identity key at `identityPath`. */
async function sign(dataDir: string, identityPath: string, lifetimeMs: number): Promise<void> {
  const keysModule = await import('../relay/keys.js');
  const { crypto } = await import('../src/crypto/crypto.js');
  const seed = keysModule.readIdentitySeed(identityPath);
  const identity = crypto.ed25519PublicKey(seed);
  const idPath = keysModule.identityKeyPath(dataDir);
  if (!existsSync(idPath) && !existsSync(keysModule.signingKeyPath(dataDir))) {
    throw new AlliumError('ERR_CONFIG', `no relay keys in ${join(dataDir, 'keys')} (neither identity_ed25519 nor signing_ed25519): run \`allium keys create\` there first, or give the data directory that has them`);
  }
  if (existsSync(idPath) && !equalBytes(crypto.ed25519PublicKey(keysModule.readIdentitySeed(idPath)), identity)) {
    throw new AlliumError('ERR_CONFIG', `${identityPath} is not the identity key of this data directory (${idPath} holds another)`);
  }
  const current = keysModule.loadRelaySigner(dataDir);
  if (current !== undefined && !equalBytes(current.cert.identity, identity)) {
    throw new AlliumError('ERR_CONFIG', `${keysModule.signingKeyPath(dataDir)} is certified for identity ${hex(current.cert.identity)}, not for ${identityPath} (${hex(identity)}); refusing to replace it`);
  }
  keysModule.saveRelaySigner(dataDir, keysModule.newRelaySigner(seed, Date.now(), lifetimeMs));
}

export function registerKeysCommand(program: Command): void {
  const keys = program.command('keys').description("a relay's keys in its data directory: create, show, sign, rotate-onion");
  const dataDir = (c: Command) =>
    c
      .option('--data-dir <dir>', 'the relay\'s data directory (storage.data_dir)', parsePath)
      .option('--config <file>', 'read the data directory from this relay configuration file (storage.data_dir)', parsePath);
  const lifetime = (c: Command) => c.option('--lifetime-days <days>', 'lifetime of a new signing key certificate, days (at most 400)', parseLifetimeDays, 30);
  lifetime(dataDir(keys.command('create').description('create the keys that are missing (identity, signing key, link, onion), then show them'))).action(
    async (opts: KeysOptions & { lifetimeDays: number }) => {
      const dir = dataDirOf(opts);
      const { loadRelayKeys } = await import('../relay/keys.js');
      loadRelayKeys(dir, { signingKeyLifetimeMs: opts.lifetimeDays * DAY_MS });
      process.stdout.write(`${await show(dir)}\n`);
    },
  );
  dataDir(keys.command('show').description('show the public keys, the signing key certificate\'s expiry and the onion keys\' ages (never a secret)')).action(async (opts: KeysOptions) => {
    process.stdout.write(`${await show(dataDirOf(opts))}\n`);
  });
  lifetime(
    dataDir(
      keys
        .command('sign')
        .description('certify a new signing key with an identity key kept elsewhere (also how to renew); the running relay picks it up')
        .requiredOption('--identity <file>', 'the relay\'s identity key file (identity_ed25519), e.g. on removable media', parsePath),
    ),
  ).action(async (opts: SignOptions) => {
    const dir = dataDirOf(opts);
    await sign(dir, resolve(opts.identity), opts.lifetimeDays * DAY_MS);
    process.stdout.write(`${await show(dir)}\n`);
  });
  dataDir(keys.command('rotate-onion').description('rotate the onion key now (stop the relay first; it republishes at start)')).action(async (opts: KeysOptions) => {
    const dir = dataDirOf(opts);
    const keysModule = await import('../relay/keys.js');
    const { OnionKeyRing } = await import('../relay/onion-keys.js');
    const { crypto } = await import('../src/crypto/crypto.js');
    const { loadOrCreateSecret } = await import('../src/key-file.js');
    const idPath = keysModule.identityKeyPath(dir);
    const identity = existsSync(idPath) ? crypto.ed25519PublicKey(keysModule.readIdentitySeed(idPath)) : keysModule.loadRelaySigner(dir)?.cert.identity;
    if (identity === undefined) throw new AlliumError('ERR_CONFIG', `no relay keys in ${join(dir, 'keys')}: run \`allium keys create\``);
    loadOrCreateSecret(join(dir, 'keys', 'ntor_x25519'), () => crypto.randomBytes(32));
    new OnionKeyRing(join(dir, 'keys'), identity).rotate();
    process.stdout.write(`${await show(dir)}\n`);
  });
}
