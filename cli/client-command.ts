/**
 * `allium client`: fetch the consensus from the authorities, build circuits,
 * and offer a SOCKS5 / SOCKS4 / SOCKS4a proxy (hostnames resolved at the
 * exit), and on request an HTTP CONNECT tunnel port and a control port.
 * With `--data-dir`, its guards, learned build times and the consensus
 * (cached-consensus) survive restarts. It says on stderr when it has no
 * usable consensus, and why.
 * Bootstrap progress goes to stderr in Tor's words and to stdout as
 * `bootstrap` event lines (./testnet-events.ts).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { AuthorityRef } from '../relay/relay.js';
import { BootstrapTracker, describeBootstrap, describeBootstrapProblem } from '../client/bootstrap.js';
import { formatEventLine } from './testnet-events.js';
import { printUp, runRole, say } from './lifecycle.js';
import { collect, collectString, parseAuthorityRef, parseIPv4, parseMs, parsePath, parsePort } from './options.js';
import { linkShapeOf, linkShapeOptions, type LinkShapeOptions } from './link-options.js';

interface ClientOptions extends LinkShapeOptions {
  authority: AuthorityRef[];
  socksAddress: string;
  socksPort: number;
  httpTunnelPort?: number;
  controlPort?: number;
  cookieAuthFile?: string;
  hashedControlPassword?: string[];
  readyTimeout: number;
  circuitBuildTimeout?: number;
  dataDir?: string;
  isolateDestAddr: boolean;
  isolateDestPort: boolean;
  maxCircuitDirtiness?: number;
}

/** A repeated bootstrap problem is printed at most this often, ms. */
const PROBLEM_LOG_INTERVAL_MS = 5_000;

export function registerClientCommand(program: Command, version = 'dev'): void {
  const [linkDelay, linkJitter, linkRate] = linkShapeOptions('every link to a guard');
  program
    .command('client')
    .description('run a client with a SOCKS5/SOCKS4a proxy, and optionally an HTTP CONNECT tunnel and a control port')
    .requiredOption('--authority <url#identityhex>', 'directory authority to fetch the consensus from (repeatable)', collect(parseAuthorityRef))
    .option('--socks-address <ipv4>', 'IPv4 address for the SOCKS listener', parseIPv4, '127.0.0.1')
    .option('--socks-port <port>', 'SOCKS5/SOCKS4a port (0 = any free port)', parsePort, 9050)
    .option('--http-tunnel-port <port>', 'HTTP CONNECT tunnel port on 127.0.0.1 (0 = any free port; off unless given)', parsePort)
    .option('--control-port <port>', 'control port on 127.0.0.1, Tor\'s control protocol (0 = any free port; off unless given)', parsePort)
    .option('--cookie-auth-file <path>', 'control port cookie authentication: write a fresh 32-byte cookie here (mode 0600)', parsePath)
    .option('--hashed-control-password <16:hex>', 'control port password authentication, as `tor --hash-password` prints (repeatable)', collectString)
    .option('--ready-timeout <ms>', 'give up if no 3-hop circuit is built within this time', parseMs(1000), 120_000)
    .option('--circuit-build-timeout <ms>', 'a fixed time limit for building one circuit (default: learned from build times, at most 10 s until then)', parseMs(100))
    .option('--data-dir <dir>', 'directory for the state file (guards, build times) and the cached consensus (created 0700, files 0600); default: keep them in memory', parsePath)
    .option('--isolate-dest-addr', 'streams to different hosts never share a circuit', false)
    .option('--isolate-dest-port', 'streams to different ports never share a circuit', false)
    .option('--max-circuit-dirtiness <ms>', 'a circuit takes no new streams this long after its first', parseMs(1000))
    .addOption(linkDelay)
    .addOption(linkJitter)
    .addOption(linkRate)
    .action(async (opts: ClientOptions, command: Command) => {
      if (opts.controlPort !== undefined && opts.cookieAuthFile === undefined && opts.hashedControlPassword === undefined) {
        command.error('error: --control-port needs --cookie-auth-file or --hashed-control-password');
      }
      await runRole(
        'client',
        async () => {
          // Loaded here so `--help` and option errors never load the role code.
          const { startClient } = await import('../client/client.js');
          const shape = linkShapeOf(opts);
          say('client', `starting; SOCKS on ${opts.socksAddress}:${opts.socksPort}`);
          const bootstrap = new BootstrapTracker();
          reportBootstrap(bootstrap);
          return startClient({
            bootstrap,
            authorities: opts.authority,
            socksHost: opts.socksAddress,
            socksPort: opts.socksPort,
            version,
            ...(opts.circuitBuildTimeout !== undefined ? { circuitBuildTimeoutMs: opts.circuitBuildTimeout } : {}),
            ...(opts.dataDir !== undefined ? { dataDir: resolve(opts.dataDir) } : {}),
            isolateDestAddr: opts.isolateDestAddr,
            isolateDestPort: opts.isolateDestPort,
            ...(opts.maxCircuitDirtiness !== undefined ? { maxCircuitDirtinessMs: opts.maxCircuitDirtiness } : {}),
            log: (message) => say('client', message),
            ...(opts.httpTunnelPort !== undefined ? { httpTunnelPort: opts.httpTunnelPort } : {}),
            ...(opts.controlPort !== undefined ? { controlPort: opts.controlPort } : {}),
            ...(opts.cookieAuthFile !== undefined ? { cookieAuthFile: opts.cookieAuthFile } : {}),
            ...(opts.hashedControlPassword !== undefined ? { hashedControlPasswords: opts.hashedControlPassword } : {}),
            ...(shape !== undefined ? { linkShape: shape } : {}),
            onDirectoryProblem: (problem) => say('client', problem === null ? 'a valid consensus is in use again' : `no usable consensus: ${problem}`),
          });
        },
        async (client) => {
          const { host, port } = client.socksAddress;
          const extra = [
            client.httpTunnelAddress !== null ? `HTTP tunnel on ${client.httpTunnelAddress.host}:${client.httpTunnelAddress.port}` : null,
            client.controlAddress !== null ? `control port on ${client.controlAddress.host}:${client.controlAddress.port}` : null,
          ].filter((x) => x !== null);
          say('client', `SOCKS listening on ${host}:${port}${extra.length > 0 ? `; ${extra.join('; ')}` : ''}; building a 3-hop circuit`);
          await client.whenReady(opts.readyTimeout);
          say('client', 'circuit built; ready');
          printUp({
            role: 'client',
            address: host,
            port,
            socks: `${host}:${port}`,
            ...(client.httpTunnelAddress !== null ? { httpTunnel: `${client.httpTunnelAddress.host}:${client.httpTunnelAddress.port}` } : {}),
            ...(client.controlAddress !== null ? { control: `${client.controlAddress.host}:${client.controlAddress.port}` } : {}),
          });
        },
      );
    });
}

/**
 * Print each bootstrap phase (stderr in Tor's words, stdout as a `bootstrap`
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
