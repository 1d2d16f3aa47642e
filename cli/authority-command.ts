/**
 * `allium authority`: run a directory authority. It accepts relay
 * descriptors, probes each relay with a real link handshake, and votes with
 * the other authorities (`--authority`, `--authorities-file`) every voting
 * interval, publishing the consensus a majority of them signed.
 *
 * `allium authority keygen` makes an authority's keys (identity and a first
 * signing key) and prints the `URL#IDENTITY` line relays and clients are
 * configured with; `allium authority new-signing-key` certifies a new
 * signing key with the identity key (which may live elsewhere, offline), for
 * the running authority to pick up (docs/protocol.md §9.1).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { hex } from '../src/bytes.js';
import { printUp, runRole, say } from './lifecycle.js';
import type { AuthorityRef } from '../directory/authority-list.js';
import { collect, nodeOptions, parseAuthorityRef, parseIdentityHex, parseIPv4, parseMs, parsePath, parsePort, parseSecondsMs, requireOptions } from './options.js';

/** How long the authority waits for one relay's link handshake and one-hop circuit. */
const PROBE_TIMEOUT_MS = 5_000;
/** How long one bandwidth measurement may take. */
const MEASURE_TIMEOUT_MS = 10_000;
/** The default lifetime of a signing key certificate, as an option value. */
const DEFAULT_SIGNING_KEY_LIFETIME_MS = 30 * 24 * 3600_000;
/** The longest lifetime a certificate may state (§8.6): 400 days. */
const MAX_SIGNING_KEY_LIFETIME_MS = 400 * 24 * 3600_000;

interface AuthorityOptions {
  nickname?: string;
  dataDir?: string;
  address: string;
  port: number;
  votingInterval: number;
  consensusLifetime?: number;
  exitsAllowLoopback: boolean;
  signingKeyLifetime: number;
  authority?: AuthorityRef[];
  authoritiesFile?: string;
  badExit?: Uint8Array[];
  testnetFlagThresholds: boolean;
  measureInterval: number;
  param?: string[];
}

/**
 * One `--param key=value` (docs/protocol.md §8.5): the key and value as the
 * `params` line carries them; the authority checks the whole set at start.
 * Returns the text unchanged.
 */
export function parseParamPair(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}=-?\d{1,10}$/.test(value)) throw new InvalidArgumentError('Expected KEY=INTEGER, e.g. cc_alg=0.');
  return value;
}

/** `key=value` texts → the map the authority publishes (a repeated key: the last wins). */
export function paramsMap(pairs: readonly string[]): Map<string, number> {
  return new Map(pairs.map((p) => [p.slice(0, p.indexOf('=')), Number(p.slice(p.indexOf('=') + 1))] as const));
}

interface KeygenOptions {
  dataDir: string;
  address: string;
  port: number;
  signingKeyLifetime: number;
}

interface NewSigningKeyOptions {
  dataDir: string;
  identityKey?: string;
  signingKeyLifetime: number;
}

const lifetimeOption = (command: Command): Command =>
  command.option(
    '--signing-key-lifetime <ms>',
    'lifetime of a signing key certificate (default 30 days)',
    parseMs(1000, MAX_SIGNING_KEY_LIFETIME_MS),
    DEFAULT_SIGNING_KEY_LIFETIME_MS,
  );

export function registerAuthorityCommand(program: Command): void {
  const authority = nodeOptions(program.command('authority').description('run a directory authority (or: keygen, new-signing-key)'), {
    role: 'authority',
    address: 'IPv4 address to listen on',
    port: 'TCP port for the directory HTTP server (0 = any free port)',
    required: false,
  })
    .enablePositionalOptions()
    .option('--authority <url#identityhex>', 'an authority that votes with this one (repeatable; this one may be listed too)', collect(parseAuthorityRef))
    .option('--authorities-file <file>', 'a file of URL#IDENTITYHEX lines, one per voting authority, re-read when it changes (instead of --authority)', parsePath)
    .option('--voting-interval <ms>', 'milliseconds between consensuses, a whole number of seconds', parseSecondsMs(1000), 60_000)
    .option('--consensus-lifetime <ms>', 'how long each consensus stays valid, whole seconds (default: 3 voting intervals, at least 60000)', parseSecondsMs(1000))
    .option('--exits-allow-loopback', 'accept exits whose policy allows 127.0.0.0/8 (testnets only)', false)
    .option('--bad-exit <identityhex>', 'vote BadExit for this relay (repeatable); with any, the authority votes on BadExit', collect(parseIdentityHex))
    .option('--measure-interval <ms>', 'measure each relay\'s bandwidth again after this long', parseMs(1000), 3600_000)
    .option('--param <key=value>', 'network parameter this authority votes for in the consensus, e.g. cc_alg=0 (repeatable)', collect(parseParamPair))
    .option('--testnet-flag-thresholds', 'flag thresholds for a network minutes old: Stable and HSDir after 30 s (testnets only)', false);
  lifetimeOption(authority).action(async (opts: AuthorityOptions, command: Command) => {
    requireOptions(command, { ...opts }, { nickname: '--nickname <name>', dataDir: '--data-dir <dir>' });
    if (opts.authority !== undefined && opts.authoritiesFile !== undefined) command.error('error: give --authority or --authorities-file, not both');
    const nickname = opts.nickname!;
    const dataDir = resolve(opts.dataDir!);
    await runRole(
      'authority',
      async () => {
        // Loaded here so `--help` and option errors never load the role code.
        const { startAuthority, RelayTester } = await import('../directory/authority.js');
        const { TESTNET_FLAG_THRESHOLDS } = await import('../directory/flags.js');
        say('authority', `starting ${nickname} on ${opts.address}:${opts.port}`);
        const tester = new RelayTester({ probeTimeoutMs: PROBE_TIMEOUT_MS, measureTimeoutMs: MEASURE_TIMEOUT_MS });
        return startAuthority({
          nickname,
          dataDir,
          host: opts.address,
          port: opts.port,
          votingIntervalMs: opts.votingInterval,
          consensusLifetimeMs: opts.consensusLifetime ?? Math.max(3 * opts.votingInterval, 60_000),
          probe: tester.probe,
          measure: tester.measure,
          closeWith: tester,
          measureIntervalMs: opts.measureInterval,
          exitsAllowLoopback: opts.exitsAllowLoopback,
          signingKeyLifetimeMs: opts.signingKeyLifetime,
          ...(opts.authority !== undefined ? { authorities: opts.authority } : {}),
          ...(opts.badExit !== undefined ? { badExits: opts.badExit } : {}),
          ...(opts.testnetFlagThresholds ? { flagThresholds: TESTNET_FLAG_THRESHOLDS } : {}),
          ...(opts.param !== undefined ? { params: paramsMap(opts.param) } : {}),
          ...(opts.authoritiesFile !== undefined ? { authoritiesFile: resolve(opts.authoritiesFile) } : {}),
        });
      },
      (handle) => {
        const url = new URL(handle.url);
        say('authority', `${handle.nickname} serving ${handle.url}`);
        printUp({
          role: 'authority',
          nickname: handle.nickname,
          address: url.hostname,
          port: Number(url.port),
          identity: hex(handle.identity),
          url: handle.url,
        });
      },
    );
  });

  lifetimeOption(
    authority
      .command('keygen')
      .description("make an authority's identity key and a first signing key; print the URL#IDENTITY line for relays and clients")
      .requiredOption('--data-dir <dir>', 'the authority data directory (keys go to <dir>/keys, 0600)', parsePath)
      .option('--address <ipv4>', 'the address the authority will serve on', parseIPv4, '127.0.0.1')
      .option('--port <port>', 'the port the authority will serve on', parsePort, 7000),
  ).action(async (opts: KeygenOptions) => {
    const keys = await import('../directory/authority-keys.js');
    const dataDir = resolve(opts.dataDir);
    const existed = existsSync(keys.identityKeyPath(dataDir));
    const identitySeed = keys.loadOrCreateIdentitySeed(dataDir);
    const signer = keys.newSigner(identitySeed, Date.now(), opts.signingKeyLifetime);
    keys.saveSigner(dataDir, signer);
    const identityHex = hex(signer.cert.identity);
    say('authority', `${existed ? 'kept the existing' : 'made a new'} identity key ${keys.identityKeyPath(dataDir)}`);
    say('authority', `new signing key certified until ${new Date(signer.cert.expires).toISOString()}: ${keys.signingKeyPath(dataDir)}`);
    say('authority', 'configure relays and clients with  --authority <the line below>  (and list it in authorities files)');
    say('authority', 'the identity key can now be moved offline; `allium authority new-signing-key --identity-key FILE` needs it');
    process.stdout.write(`http://${opts.address}:${opts.port}#${identityHex}\n`);
  });

  lifetimeOption(
    authority
      .command('new-signing-key')
      .description('certify a new signing key for an authority; the running authority uses it from its next signature')
      .requiredOption('--data-dir <dir>', 'the authority data directory (the key goes to <dir>/keys/authority_signing_key)', parsePath)
      .option('--identity-key <file>', 'the identity key file (default <dir>/keys/authority_identity_key)', parsePath),
  ).action(async (opts: NewSigningKeyOptions) => {
    const keys = await import('../directory/authority-keys.js');
    const dataDir = resolve(opts.dataDir);
    const identitySeed = keys.readIdentitySeed(resolve(opts.identityKey ?? keys.identityKeyPath(dataDir)));
    const signer = keys.newSigner(identitySeed, Date.now(), opts.signingKeyLifetime);
    keys.saveSigner(dataDir, signer);
    say('authority', `new signing key for ${hex(signer.cert.identity)} certified until ${new Date(signer.cert.expires).toISOString()}`);
    process.stdout.write(`signing-key ${hex(signer.cert.signingKey)} expires ${new Date(signer.cert.expires).toISOString()}\n`);
  });
}
