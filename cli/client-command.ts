/**
 * `allium client`: fetch the consensus from the authorities, build circuits,
 * and offer a SOCKS5 / SOCKS4 / SOCKS4a proxy (hostnames resolved at the
 * exit), and on request an HTTP CONNECT tunnel port and a control port.
 * With `storage.data_dir`, its guards, learned build times and the consensus
 * (cached-consensus) survive restarts. It says in the log when it has no
 * usable consensus, and why. Bootstrap progress goes to the log in Tor's
 * words and to stdout as `bootstrap` event lines (./testnet-events.ts).
 * Options come from `--config FILE` and the flags (cli/config/).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { BootstrapTracker, describeBootstrap, describeBootstrapProblem } from '../client/bootstrap.js';
import { formatEventLine } from './testnet-events.js';
import { printUp, runRole, say } from './lifecycle.js';
import { tuneV8ForCells } from './v8-tuning.js';
import { parseAuthorityRef } from './options.js';
import { linkShapeOf } from './link-options.js';
import { ConfigError } from './config/load.js';
import { configCommand } from './config/flags.js';
import { reloadOnSighup } from './config/reload.js';
import { observe, packageVersion, withMetrics } from './metrics/observe.js';
import type { ClientMemoryCapStats } from '../client/mem-cap.js';
import { startNodeLog } from './log/node-log.js';

/** A repeated bootstrap problem is printed at most this often, ms. */
const PROBLEM_LOG_INTERVAL_MS = 5_000;

export function registerClientCommand(program: Command, version = 'dev'): void {
  const command = program.command('client').description('run a client with a SOCKS5/SOCKS4a proxy, and optionally an HTTP CONNECT tunnel and a control port');
  const config = configCommand(command, 'client');
  command.action(async () => {
    const c = config.resolve();
    if (c === null) return;
    const socksAddress = c.must<string>('socks.address');
    const socksPort = c.must<number>('socks.port');
    const httpTunnelPort = c.get<number>('http_tunnel.port');
    const controlPort = c.get<number>('control.port');
    const cookieAuthFile = c.get<string>('control.cookie_auth_file');
    const hashedPasswords = c.get<string[]>('control.hashed_passwords');
    if (controlPort !== undefined && cookieAuthFile === undefined && hashedPasswords === undefined) {
      throw new ConfigError([{ file: c.file ?? 'allium client', key: 'control.port', value: controlPort, message: '--control-port needs --cookie-auth-file or --hashed-control-password (in a file: control.cookie_auth_file or control.hashed_passwords)' }]);
    }
    const dataDir = c.get<string>('storage.data_dir');
    const circuitBuildTimeout = c.get<number>('client.circuit_build_timeout');
    const maxCircuitDirtiness = c.get<number>('client.max_circuit_dirtiness');
    const maxMem = c.get<number>('client.max_mem_in_queues');
    const shape = linkShapeOf({ linkDelay: c.get<number>('link.delay'), linkJitter: c.get<number>('link.jitter'), linkRate: c.get<number>('link.rate') });
    let memoryStats: () => ClientMemoryCapStats | null = () => null;
    const observed = await observe(c, async (registry) => (await import('./metrics/client-metrics.js')).clientMemoryMetrics(registry, () => memoryStats()));
    const log = startNodeLog(c);
    tuneV8ForCells();
    await runRole(
      'client',
      async () => {
        // Loaded here so `--help` and option errors never load the role code.
        const { startClient } = await import('../client/client.js');
        say('client', `starting; SOCKS on ${socksAddress}:${socksPort}`);
        const bootstrap = new BootstrapTracker();
        reportBootstrap(bootstrap);
        const client = await startClient({
          bootstrap,
          authorities: c.must<string[]>('network.authorities').map(parseAuthorityRef),
          socksHost: socksAddress,
          socksPort,
          version,
          ...(circuitBuildTimeout !== undefined ? { circuitBuildTimeoutMs: circuitBuildTimeout } : {}),
          ...(dataDir !== undefined ? { dataDir: resolve(dataDir) } : {}),
          isolateDestAddr: c.must<boolean>('client.isolate_dest_addr'),
          isolateDestPort: c.must<boolean>('client.isolate_dest_port'),
          preferIPv6: c.must<boolean>('client.prefer_ipv6'),
          ...(maxCircuitDirtiness !== undefined ? { maxCircuitDirtinessMs: maxCircuitDirtiness } : {}),
          ...(maxMem !== undefined ? { memoryCap: { capBytes: maxMem } } : {}),
          log: (message) => say('client', message),
          ...(httpTunnelPort !== undefined ? { httpTunnelPort } : {}),
          ...(controlPort !== undefined ? { controlPort } : {}),
          ...(cookieAuthFile !== undefined ? { cookieAuthFile } : {}),
          ...(hashedPasswords !== undefined ? { hashedControlPasswords: hashedPasswords } : {}),
          ...(shape !== undefined ? { linkShape: shape } : {}),
          onDirectoryProblem: (problem) => say('client', problem === null ? 'a valid consensus is in use again' : `no usable consensus: ${problem}`),
        });
        observed.attach({ linkStats: () => client.linkStats(), circuitStats: () => client.circuitStats() });
        memoryStats = () => client.memoryCapStats();
        return withMetrics(observed, client, async () =>
          (await import('./dashboard/node-dashboard.js')).nodeDashboard(
            {
              role: 'client',
              version: packageVersion(),
              linkStats: () => client.linkStats(),
              circuitStats: () => client.circuitStats(),
              notices: () => log.logger.recent(),
              circuitPaths: () => client.circuitStatus().filter((c) => c.purpose !== 'retired').map((c) => c.path.map((h) => h.nickname)),
            },
            [],
          ),
        );
      },
      async ({ node: client, metrics }) => {
        const { host, port } = client.socksAddress;
        const extra = [
          client.httpTunnelAddress !== null ? `HTTP tunnel on ${client.httpTunnelAddress.host}:${client.httpTunnelAddress.port}` : null,
          client.controlAddress !== null ? `control port on ${client.controlAddress.host}:${client.controlAddress.port}` : null,
        ].filter((x) => x !== null);
        say('client', `SOCKS listening on ${host}:${port}${extra.length > 0 ? `; ${extra.join('; ')}` : ''}; building a 3-hop circuit`);
        if (metrics !== undefined) say('client', `metrics on http://${metrics}/metrics`);
        reloadOnSighup(config, c, { ...observed.appliers, ...log.appliers }, (line, level) => say('client', line, level));
        await client.whenReady(c.must<number>('client.ready_timeout'));
        say('client', 'Bootstrapped 100%: a 3-hop circuit is built; ready');
        printUp({
          role: 'client',
          address: host,
          port,
          socks: `${host}:${port}`,
          ...(client.httpTunnelAddress !== null ? { httpTunnel: `${client.httpTunnelAddress.host}:${client.httpTunnelAddress.port}` } : {}),
          ...(client.controlAddress !== null ? { control: `${client.controlAddress.host}:${client.controlAddress.port}` } : {}),
          ...(metrics !== undefined ? { metrics } : {}),
        });
      },
    );
  });
}

/**
 * Print each bootstrap phase (the log in Tor's words, stdout as a `bootstrap`
 * line) and each problem, a repeated one at most every PROBLEM_LOG_INTERVAL_MS.
 */
function reportBootstrap(bootstrap: BootstrapTracker): void {
  let lastProblemAt = 0;
  let lastWarning: string | null = null;
  say('client', describeBootstrap(bootstrap.status));
  bootstrap.onChange((change) => {
    const s = change.status;
    if (change.kind === 'problem') {
      const now = Date.now();
      if (s.warning === lastWarning && now - lastProblemAt < PROBLEM_LOG_INTERVAL_MS) return;
      lastProblemAt = now;
      lastWarning = s.warning;
      say('client', describeBootstrapProblem(s));
    } else {
      lastWarning = null;
      say('client', describeBootstrap(s));
    }
    process.stdout.write(
      `${formatEventLine({ event: 'bootstrap', progress: s.progress, tag: s.tag, summary: s.summary, ...(s.warning !== null ? { warning: s.warning.slice(0, 2000) } : {}) })}\n`,
    );
  });
}
