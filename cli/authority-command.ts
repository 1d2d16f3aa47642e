/**
 * `allium authority`: run a directory authority. It accepts relay
 * descriptors, probes each relay with a real link handshake, and publishes a
 * signed consensus every voting interval.
 */
import { resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { hex } from '../src/bytes.js';
import { printUp, runRole, say } from './lifecycle.js';
import { collect, nodeOptions, parseMs } from './options.js';

/** How long the authority waits for one relay's link handshake. */
const PROBE_TIMEOUT_MS = 5_000;

interface AuthorityOptions {
  nickname: string;
  dataDir: string;
  address: string;
  port: number;
  votingInterval: number;
  consensusLifetime?: number;
  exitsAllowLoopback: boolean;
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

export function registerAuthorityCommand(program: Command): void {
  nodeOptions(program.command('authority').description('run a directory authority'), {
    role: 'authority',
    address: 'IPv4 address to listen on',
    port: 'TCP port for the directory HTTP server (0 = any free port)',
  })
    .option('--voting-interval <ms>', 'milliseconds between consensus publications', parseMs(100), 60_000)
    .option('--consensus-lifetime <ms>', 'how long each consensus stays valid (default: 3 voting intervals, at least 60000)', parseMs(100))
    .option('--exits-allow-loopback', 'accept exits whose policy allows 127.0.0.0/8 (testnets only)', false)
    .option('--param <key=value>', 'network parameter to publish in the consensus, e.g. cc_alg=0 (repeatable)', collect(parseParamPair))
    .action(async (opts: AuthorityOptions) => {
      await runRole(
        'authority',
        async () => {
          // Loaded here so `--help` and option errors never load the role code.
          const { startAuthority, linkProbe } = await import('../directory/authority.js');
          say('authority', `starting ${opts.nickname} on ${opts.address}:${opts.port}`);
          return startAuthority({
            nickname: opts.nickname,
            dataDir: resolve(opts.dataDir),
            host: opts.address,
            port: opts.port,
            votingIntervalMs: opts.votingInterval,
            consensusLifetimeMs: opts.consensusLifetime ?? Math.max(3 * opts.votingInterval, 60_000),
            probe: linkProbe(PROBE_TIMEOUT_MS),
            exitsAllowLoopback: opts.exitsAllowLoopback,
            ...(opts.param !== undefined ? { params: paramsMap(opts.param) } : {}),
          });
        },
        (authority) => {
          const url = new URL(authority.url);
          say('authority', `${authority.nickname} serving ${authority.url}`);
          printUp({
            role: 'authority',
            nickname: authority.nickname,
            address: url.hostname,
            port: Number(url.port),
            identity: hex(authority.identity),
            url: authority.url,
          });
        },
      );
    });
}
