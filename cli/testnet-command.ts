/**
 * `allium testnet`: run a whole loopback network (3 voting authorities, N
 * relays, a client with a SOCKS5 port) in the foreground; see cli/testnet.ts.
 */
import type { Command } from 'commander';
import { registerCtlCommand } from './testnet-ctl-command.js';
import { collect, parseCount, parseMs, parseParamPair, parsePath, parsePort, parseSecondsMs } from './options.js';
import { linkShapeOf, linkShapeOptions, type LinkShapeOptions } from './link-options.js';

interface TestnetCommandOptions extends LinkShapeOptions {
  authorities: number;
  relays: number;
  exits: number;
  socksPort: number;
  dataDir?: string;
  votingInterval: number;
  startTimeout: number;
  httpTunnelPort?: number;
  controlPort?: number;
  netns: boolean;
  param?: string[];
  metrics: boolean;
  json: boolean;
  dashboardPort?: number;
  relayBandwidthRate?: string;
  relayAccountingMax?: string;
  ipv6: boolean;
}

export function registerTestnetCommand(program: Command): void {
  const [linkDelay, linkJitter, linkRate] = linkShapeOptions('every link between nodes');
  const testnet = program.command('testnet');
  registerCtlCommand(testnet);
  testnet
    .description('run a test network in the foreground: A voting authorities, N relays, 1 client (on loopback, or with --netns in network namespaces)')
    .addHelpText(
      'after',
      '\nEnvironment:\n  ALLIUM_NODE_FLAGS  extra Node flags for every node (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof\n                     --cpu-prof-name={nickname}.cpuprofile); docs/testnet.md, "Profiling the nodes"',
    )
    .option('--authorities <n>', 'number of directory authorities, each on its own 127.100.0.N, or with --netns in its own namespace (1-9)', parseCount(1, 9), 3)
    .option('--relays <n>', 'number of relays, each on its own 127.N.0.1 (3-50)', parseCount(3, 50), 5)
    .option('--exits <n>', 'how many of the relays are exits (1..relays)', parseCount(1, 50), 2)
    .option('--socks-port <port>', 'client SOCKS5 port on 127.0.0.1 (0 = any free port)', parsePort, 9050)
    .option('--http-tunnel-port <port>', 'also give the client an HTTP CONNECT tunnel port on 127.0.0.1 (0 = any free port)', parsePort)
    .option('--control-port <port>', 'also give the client a control port on 127.0.0.1 with cookie authentication (0 = any free port)', parsePort)
    .option('--data-dir <dir>', 'directory for every node\'s keys and logs (default: a fresh dir under the OS temp dir)', parsePath)
    .option('--voting-interval <ms>', 'authority voting interval in milliseconds, a whole number of seconds', parseSecondsMs(1000, 60_000), 1000)
    .option('--start-timeout <ms>', 'give up if the network has not formed within this time', parseMs(5_000, 600_000), 75_000)
    .option('--netns', 'each node in its own network namespace on 10.64.0.0/10, plus a destination HTTP server (needs root)', false)
    .addOption(linkDelay)
    .addOption(linkJitter)
    .addOption(linkRate)
    .option('--param <key=value>', 'network parameter for the consensus, e.g. cc_alg=0 for fixed windows (repeatable)', collect(parseParamPair))
    .option('--json', 'machine-readable event lines on stdout (they always go to <data dir>/events.jsonl)', false)
    .option('--dashboard-port <port>', 'serve one page for the whole network on 127.0.0.1 (0 = any free port; implies --metrics)', parsePort)
    .option('--relay-bandwidth-rate <size>', 'every relay\'s bandwidth.rate, e.g. "1 MB" (default: unlimited)')
    .option('--relay-accounting-max <size>', 'every relay\'s accounting.max, e.g. "20 MB" (default: no accounting)')
    .option('--ipv6', 'every relay also gets an IPv6 OR port on [::1], and the client prefers IPv6 (--prefer-ipv6); not with --netns', false)
    .option('--metrics', 'give every node a metrics port (Prometheus text at /metrics, the dashboard at /); the "up" progress lines on stderr and the node lines in <data-dir>/events.jsonl name them', false)
    .action(async (opts: TestnetCommandOptions, command: Command) => {
      if (opts.exits > opts.relays) command.error(`error: --exits (${opts.exits}) cannot exceed --relays (${opts.relays})`);
      if (opts.ipv6 && opts.netns) command.error('error: --ipv6 is for a loopback testnet, not with --netns');
      // Loaded here, not at the top: every node runs this same program, and none needs the testnet's code.
      const { runTestnet } = await import('./testnet.js');
      await runTestnet({
        authorities: opts.authorities,
        relays: opts.relays,
        exits: opts.exits,
        socksPort: opts.socksPort,
        ...(opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}),
        votingIntervalMs: opts.votingInterval,
        startTimeoutMs: opts.startTimeout,
        ...(opts.httpTunnelPort !== undefined ? { httpTunnelPort: opts.httpTunnelPort } : {}),
        ...(opts.controlPort !== undefined ? { controlPort: opts.controlPort } : {}),
        netns: opts.netns,
        ...(linkShapeOf(opts) !== undefined ? { linkShape: linkShapeOf(opts)! } : {}),
        ...(opts.param !== undefined ? { params: opts.param } : {}),
        metrics: opts.metrics,
        json: opts.json,
        ...(opts.dashboardPort !== undefined ? { dashboardPort: opts.dashboardPort } : {}),
        ...(opts.relayBandwidthRate !== undefined ? { relayBandwidthRate: opts.relayBandwidthRate } : {}),
        ...(opts.relayAccountingMax !== undefined ? { relayAccountingMax: opts.relayAccountingMax } : {}),
        ...(opts.ipv6 ? { ipv6: true } : {}),
      });
    });
}
