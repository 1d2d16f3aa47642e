/**
 * `allium client`: fetch the consensus from the authorities (cached in
 * `--data-dir`), build circuits, and offer a SOCKS5 proxy (hostnames
 * resolved at the exit). It says on stderr when it has no usable consensus, and why.
 */
import type { Command } from 'commander';
import type { AuthorityRef } from '../relay/relay.js';
import { printUp, runRole, say } from './lifecycle.js';
import { resolve } from 'node:path';
import { collect, parseAuthorityRef, parseIPv4, parseMs, parsePath, parsePort } from './options.js';

interface ClientOptions {
  authority: AuthorityRef[];
  socksAddress: string;
  socksPort: number;
  readyTimeout: number;
  circuitBuildTimeout?: number;
  dataDir?: string;
}

export function registerClientCommand(program: Command): void {
  program
    .command('client')
    .description('run a client with a SOCKS5 proxy')
    .requiredOption('--authority <url#identityhex>', 'directory authority to fetch the consensus from (repeatable)', collect(parseAuthorityRef))
    .option('--socks-address <ipv4>', 'IPv4 address for the SOCKS5 listener', parseIPv4, '127.0.0.1')
    .option('--socks-port <port>', 'SOCKS5 port (0 = any free port)', parsePort, 9050)
    .option('--ready-timeout <ms>', 'give up if no 3-hop circuit is built within this time', parseMs(1000), 120_000)
    .option('--circuit-build-timeout <ms>', 'time limit for building one circuit', parseMs(100))
    .option('--data-dir <dir>', 'cache the consensus here (cached-consensus, mode 0600) and start from it when it is still valid', parsePath)
    .action(async (opts: ClientOptions) => {
      await runRole(
        'client',
        async () => {
          // Loaded here so `--help` and option errors never load the role code.
          const { startClient } = await import('../client/client.js');
          say('client', `starting; SOCKS5 on ${opts.socksAddress}:${opts.socksPort}`);
          return startClient({
            authorities: opts.authority,
            socksHost: opts.socksAddress,
            socksPort: opts.socksPort,
            ...(opts.circuitBuildTimeout !== undefined ? { circuitBuildTimeoutMs: opts.circuitBuildTimeout } : {}),
            ...(opts.dataDir !== undefined ? { dataDir: resolve(opts.dataDir) } : {}),
            onDirectoryProblem: (problem) => say('client', problem === null ? 'a valid consensus is in use again' : `no usable consensus: ${problem}`),
          });
        },
        async (client) => {
          const { host, port } = client.socksAddress;
          say('client', `SOCKS5 listening on ${host}:${port}; building a 3-hop circuit`);
          await client.whenReady(opts.readyTimeout);
          say('client', 'circuit built; ready');
          printUp({ role: 'client', address: host, port, socks: `${host}:${port}` });
        },
      );
    });
}
