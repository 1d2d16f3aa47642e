/**
 * `allium destination`: the testnet's destination HTTP server
 * (./destination-server.ts), as a role with an `up` line.
 */
import type { Command } from 'commander';
import { printUp, runRole, say } from './lifecycle.js';
import { parseIPv4, parseNickname, parsePort } from './options.js';

interface DestinationOptions {
  nickname: string;
  address: string;
  port: number;
}

export function registerDestinationCommand(program: Command): void {
  program
    .command('destination')
    .description('run a small HTTP server for exits to reach (/ip, /hello, /bytes/N); the netns testnet starts one')
    .option('--nickname <name>', 'name in its up line', parseNickname, 'dest')
    .option('--address <ipv4>', 'IPv4 address to listen on', parseIPv4, '127.0.0.1')
    .option('--port <port>', 'TCP port (0 = any free port)', parsePort, 80)
    .action(async (opts: DestinationOptions) => {
      await runRole(
        'destination',
        async () => {
          const { startDestination } = await import('./destination-server.js');
          return startDestination(opts.address, opts.port);
        },
        (server) => {
          const url = `http://${server.address}:${server.port}`;
          say('destination', `serving ${url}`);
          printUp({ role: 'destination', nickname: opts.nickname, address: server.address, port: server.port, url });
        },
      );
    });
}
