/**
 * `allium authority`: run a directory authority. It accepts relay
 * descriptors, probes each relay with a real link handshake, and publishes a
 * signed consensus every voting interval. Options come from `--config FILE`
 * and the flags (cli/config/).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { hex } from '../src/bytes.js';
import { printUp, runRole, say } from './lifecycle.js';
import { paramsMap } from './options.js';
import { configCommand } from './config/flags.js';
import { reloadOnSighup } from './config/reload.js';
import { observe, packageVersion, withMetrics } from './metrics/observe.js';
import { nodeDashboard } from './dashboard/node-dashboard.js';
import { startNodeLog } from './log/node-log.js';

/** How long the authority waits for one relay's link handshake. */
const PROBE_TIMEOUT_MS = 5_000;

export function registerAuthorityCommand(program: Command): void {
  const command = program.command('authority').description('run a directory authority');
  const config = configCommand(command, 'authority');
  command.action(async () => {
    const c = config.resolve();
    if (c === null) return;
    const nickname = c.must<string>('authority.nickname');
    const address = c.must<string>('authority.address');
    const port = c.must<number>('authority.dir_port');
    const votingInterval = c.must<number>('authority.voting_interval');
    const params = c.get<string[]>('authority.params');
    const observed = observe(c);
    const log = startNodeLog(c);
    await runRole(
      'authority',
      async () => {
        // Loaded here so `--help` and option errors never load the role code.
        const { startAuthority, linkProbe } = await import('../directory/authority.js');
        say('authority', `starting ${nickname} on ${address}:${port}`);
        const authority = await startAuthority({
          nickname,
          dataDir: resolve(c.must<string>('storage.data_dir')),
          host: address,
          port,
          votingIntervalMs: votingInterval,
          consensusLifetimeMs: c.get<number>('authority.consensus_lifetime') ?? Math.max(3 * votingInterval, 60_000),
          probe: linkProbe(PROBE_TIMEOUT_MS),
          exitsAllowLoopback: c.must<boolean>('authority.exits_allow_loopback'),
          ...(params !== undefined ? { params: paramsMap(params) } : {}),
        });
        return withMetrics(observed, authority, () =>
          nodeDashboard(
            { role: 'authority', nickname, identity: authority.identity, version: packageVersion(), notices: () => log.logger.recent() },
            [{ url: authority.url, identity: authority.identity }],
          ),
        );
      },
      ({ node: authority, metrics }) => {
        const url = new URL(authority.url);
        say('authority', `${authority.nickname} serving ${authority.url}`);
        if (metrics !== undefined) say('authority', `metrics on http://${metrics}/metrics`);
        reloadOnSighup(config, c, { ...observed.appliers, ...log.appliers }, (line) => say('authority', line));
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
}
