/**
 * `allium client`: fetch the consensus from the authorities, build circuits,
 * and offer a SOCKS5 proxy (hostnames resolved at the exit). Options come
 * from `--config FILE` and the flags (cli/config/).
 */
import type { Command } from 'commander';
import { printUp, runRole, say } from './lifecycle.js';
import { parseAuthorityRef } from './options.js';
import { configCommand } from './config/flags.js';
import { reloadOnSighup } from './config/reload.js';
import { observe, packageVersion, withMetrics } from './metrics/observe.js';
import { nodeDashboard } from './dashboard/node-dashboard.js';
import { startNodeLog } from './log/node-log.js';

export function registerClientCommand(program: Command): void {
  const command = program.command('client').description('run a client with a SOCKS5 proxy');
  const config = configCommand(command, 'client');
  command.action(async () => {
    const c = config.resolve();
    if (c === null) return;
    const socksAddress = c.must<string>('socks.address');
    const socksPort = c.must<number>('socks.port');
    const observed = observe(c);
    const log = startNodeLog(c);
    await runRole(
      'client',
      async () => {
        // Loaded here so `--help` and option errors never load the role code.
        const { startClient } = await import('../client/client.js');
        say('client', `starting; SOCKS5 on ${socksAddress}:${socksPort}`);
        const client = await startClient({
          authorities: c.must<string[]>('network.authorities').map(parseAuthorityRef),
          socksHost: socksAddress,
          socksPort,
          circuitBuildTimeoutMs: c.must<number>('client.circuit_build_timeout'),
        });
        observed.attach({ linkStats: () => client.linkStats(), circuitStats: () => client.circuitStats() });
        return withMetrics(observed, client, () =>
          nodeDashboard({ role: 'client', version: packageVersion(), linkStats: () => client.linkStats(), circuitStats: () => client.circuitStats(), notices: () => log.logger.recent() }, []),
        );
      },
      async ({ node: client, metrics }) => {
        const { host, port } = client.socksAddress;
        say('client', `SOCKS5 listening on ${host}:${port}; building a 3-hop circuit`);
        if (metrics !== undefined) say('client', `metrics on http://${metrics}/metrics`);
        reloadOnSighup(config, c, { ...observed.appliers, ...log.appliers }, (line) => say('client', line));
        await client.whenReady(c.must<number>('client.ready_timeout'));
        say('client', 'Bootstrapped 100%: a 3-hop circuit is built; ready');
        printUp({ role: 'client', address: host, port, socks: `${host}:${port}`, ...(metrics !== undefined ? { metrics } : {}) });
      },
    );
  });
}
