/**
 * `allium authority`: run a directory authority. It accepts relay
 * descriptors, probes each relay with a real link handshake, and votes with
 * the other authorities (network.authorities or network.authorities_file)
 * every voting interval, publishing the consensus a majority of them signed.
 * Options come from `--config FILE` and the flags (cli/config/).
 *
 * `allium authority keygen` makes an authority's keys (identity and a first
 * signing key) and prints the `URL#IDENTITY` line relays and clients are
 * configured with; `allium authority new-signing-key` certifies a new
 * signing key with the identity key (which may live elsewhere, offline), for
 * the running authority to pick up (docs/protocol.md §9.1).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { fromHex, hex } from '../src/bytes.js';
import { printUp, runRole, say } from './lifecycle.js';
import { parseAuthorityRef, parseIPv4, parseMs, parsePath, parsePort, paramsMap } from './options.js';
import { networkParams } from '../src/netdoc/params.js';
import { configCommand } from './config/flags.js';
import { DEFAULT_SIGNING_KEY_LIFETIME_MS, MAX_SIGNING_KEY_LIFETIME_MS } from './config/options-table.js';
import { ConfigError } from './config/load.js';
import { reloadOnSighup } from './config/reload.js';
import { observe, packageVersion, withMetrics } from './metrics/observe.js';
import { startNodeLog } from './log/node-log.js';

/** How long the authority waits for one relay's link handshake and one-hop circuit. */
const PROBE_TIMEOUT_MS = 5_000;
/** How long one bandwidth measurement may take. */
const MEASURE_TIMEOUT_MS = 10_000;

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
  const command = program.command('authority').description('run a directory authority (or: keygen, new-signing-key)').enablePositionalOptions();
  const config = configCommand(command, 'authority');
  command.action(async () => {
    const c = config.resolve();
    if (c === null) return;
    const nickname = c.must<string>('authority.nickname');
    const address = c.must<string>('authority.address');
    const port = c.must<number>('authority.dir_port');
    const votingInterval = c.must<number>('authority.voting_interval');
    const params = c.get<string[]>('authority.params');
    const authorities = c.get<string[]>('network.authorities')?.map(parseAuthorityRef);
    const authoritiesFile = c.get<string>('network.authorities_file');
    if (authorities !== undefined && authoritiesFile !== undefined) {
      throw new ConfigError([{ file: c.file ?? 'allium authority', key: 'network.authorities_file', value: authoritiesFile, message: 'give network.authorities (--authority) or network.authorities_file (--authorities-file), not both' }]);
    }
    const badExits = c.get<string[]>('authority.bad_exits')?.map((id) => fromHex(id));
    const observed = await observe(c);
    const log = startNodeLog(c);
    await runRole(
      'authority',
      async () => {
        // Loaded here so `--help` and option errors never load the role code.
        const { startAuthority, RelayTester } = await import('../directory/authority.js');
        const { TESTNET_FLAG_THRESHOLDS } = await import('../directory/flags.js');
        say('authority', `starting ${nickname} on ${address}:${port}`);
        // The test circuits follow the parameters this authority votes for (cc_alg: congestion control or not).
        const tester = new RelayTester({
          probeTimeoutMs: PROBE_TIMEOUT_MS,
          measureTimeoutMs: MEASURE_TIMEOUT_MS,
          params: networkParams(params !== undefined ? paramsMap(params) : new Map()),
        });
        const authority = await startAuthority({
          nickname,
          dataDir: resolve(c.must<string>('storage.data_dir')),
          host: address,
          port,
          votingIntervalMs: votingInterval,
          consensusLifetimeMs: c.get<number>('authority.consensus_lifetime') ?? Math.max(3 * votingInterval, 60_000),
          probe: tester.probe,
          measure: tester.measure,
          closeWith: tester,
          measureIntervalMs: c.must<number>('authority.measure_interval'),
          exitsAllowLoopback: c.must<boolean>('authority.exits_allow_loopback'),
          signingKeyLifetimeMs: c.must<number>('authority.signing_key_lifetime'),
          ...(authorities !== undefined ? { authorities } : {}),
          ...(badExits !== undefined ? { badExits } : {}),
          ...(c.must<boolean>('authority.testnet_flag_thresholds') ? { flagThresholds: TESTNET_FLAG_THRESHOLDS } : {}),
          ...(params !== undefined ? { params: paramsMap(params) } : {}),
          ...(authoritiesFile !== undefined ? { authoritiesFile: resolve(authoritiesFile) } : {}),
        });
        return withMetrics(observed, authority, async () =>
          (await import('./dashboard/node-dashboard.js')).nodeDashboard(
            { role: 'authority', nickname, identity: authority.identity, version: packageVersion(), notices: () => log.logger.recent() },
            [{ url: authority.url, identity: authority.identity }],
          ),
        );
      },
      ({ node: authority, metrics }) => {
        const url = new URL(authority.url);
        say('authority', `${authority.nickname} serving ${authority.url}`);
        if (metrics !== undefined) say('authority', `metrics on http://${metrics}/metrics`);
        reloadOnSighup(config, c, { ...observed.appliers, ...log.appliers }, (line, level) => say('authority', line, level));
        printUp({
          role: 'authority',
          nickname: authority.nickname,
          address: url.hostname,
          port: Number(url.port),
          identity: hex(authority.identity),
          url: authority.url,
          ...(metrics !== undefined ? { metrics } : {}),
        });
      },
    );
  });

  lifetimeOption(
    command
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
    command
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
