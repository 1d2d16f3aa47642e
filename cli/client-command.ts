/**
 * `allium client`: fetch the consensus from the authorities, build circuits,
 * and offer a SOCKS5 proxy (hostnames resolved at the exit).
 */
import type { Command } from 'commander';
import type { AuthorityRef } from '../relay/relay.js';
import { printUp, runRole, say } from './lifecycle.js';
import { collect, parseAuthorityRef, parseIPv4, parseMs, parsePort } from './options.js';
import { linkShapeOf, linkShapeOptions, type LinkShapeOptions } from './link-options.js';

interface ClientOptions extends LinkShapeOptions {
  authority: AuthorityRef[];
  socksAddress: string;
  socksPort: number;
  readyTimeout: number;
  circuitBuildTimeout?: number;
}

export function registerClientCommand(program: Command): void {
  const [linkDelay, linkJitter, linkRate] = linkShapeOptions('every link to a guard');
  program
    .command('client')
    .description('run a client with a SOCKS5 proxy')
    .requiredOption('--authority <url#identityhex>', 'directory authority to fetch the consensus from (repeatable)', collect(parseAuthorityRef))
    .option('--socks-address <ipv4>', 'IPv4 address for the SOCKS5 listener', parseIPv4, '127.0.0.1')
    .option('--socks-port <port>', 'SOCKS5 port (0 = any free port)', parsePort, 9050)
    .option('--ready-timeout <ms>', 'give up if no 3-hop circuit is built within this time', parseMs(1000), 120_000)
    .option('--circuit-build-timeout <ms>', 'time limit for building one circuit', parseMs(100))
    .addOption(linkDelay)
    .addOption(linkJitter)
    .addOption(linkRate)
    .action(async (opts: ClientOptions) => {
      await runRole(
        'client',
        async () => {
          // Loaded here so `--help` and option errors never load the role code.
          const { startClient } = await import('../client/client.js');
          const shape = linkShapeOf(opts);
          say('client', `starting; SOCKS5 on ${opts.socksAddress}:${opts.socksPort}`);
          return startClient({
            authorities: opts.authority,
            socksHost: opts.socksAddress,
            socksPort: opts.socksPort,
            ...(opts.circuitBuildTimeout !== undefined ? { circuitBuildTimeoutMs: opts.circuitBuildTimeout } : {}),
            ...(shape !== undefined ? { linkShape: shape } : {}),
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
