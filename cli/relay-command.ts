/**
 * `allium relay`: run an onion router (optionally an exit) that publishes its
 * descriptor to the given authorities.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { AuthorityRef } from '../relay/relay.js';
import { hex } from '../src/bytes.js';
import { printUp, runRole, say } from './lifecycle.js';
import { collect, collectString, nodeOptions, parseAuthorityRef, parseCount, parseMs } from './options.js';
import { DOS_DEFAULTS } from '../relay/dos.js';
import { DEFAULT_EXIT_POLICY_LINES, LOOPBACK_EXIT_RULES, withLoopbackExit } from '../src/netdoc/default-policies.js';
import { DEFAULT_NETWORK_PARAMS } from '../src/netdoc/params.js';
import { linkShapeOf, linkShapeOptions, type LinkShapeOptions } from './link-options.js';

interface RelayOptions extends LinkShapeOptions {
  nickname: string;
  dataDir: string;
  address: string;
  port: number;
  authority: AuthorityRef[];
  exit: boolean;
  exitPolicy?: string[];
  allowLoopbackExit: boolean;
  publishInterval?: number;
  workers: number;
  maxLinksPerAddress?: number;
  circuitRate?: number;
  circuitBurst?: number;
  maxMemInQueues?: number;
  congestionControl: boolean;
}

/**
 * The exit policy lines a relay runs with, from its options (undefined: the
 * relay's own default, src/netdoc/default-policies.ts). `--allow-loopback-exit`
 * puts the loopback rules just before the first `reject private` rule
 * (withLoopbackExit), so the port rejections above it still apply to loopback.
 */
export function exitPolicyFor(opts: { exit: boolean; exitPolicy?: string[]; allowLoopbackExit: boolean }): string[] | undefined {
  if (!opts.exit) return undefined;
  if (!opts.allowLoopbackExit) return opts.exitPolicy;
  return withLoopbackExit(opts.exitPolicy ?? DEFAULT_EXIT_POLICY_LINES);
}

export function registerRelayCommand(program: Command): void {
  const [linkDelay, linkJitter, linkRate] = linkShapeOptions('every link this relay dials');
  nodeOptions(program.command('relay').description('run a relay (onion router), optionally an exit'), {
    role: 'relay',
    address: 'IPv4 address to listen on and to connect out from',
    port: 'OR port (0 = any free port)',
  })
    .requiredOption('--authority <url#identityhex>', 'directory authority to publish to (repeatable)', collect(parseAuthorityRef))
    .option('--exit', 'act as an exit relay', false)
    .option('--exit-policy <rule>', 'exit policy rule, e.g. "accept *:80" (repeatable, first match wins)', collectString)
    .option('--allow-loopback-exit', `with --exit, add "${LOOPBACK_EXIT_RULES.join('", "')}" ahead of "reject private:*" (testnets only)`, false)
    .option('--publish-interval <ms>', 'milliseconds between descriptor uploads', parseMs(1000))
    .option('--workers <n>', 'worker processes carrying the links (1: everything in one process)', parseCount(1, 256), Math.max(1, availableParallelism()))
    .option('--max-links-per-address <n>', `connections one address may hold open (0: no limit; default ${DOS_DEFAULTS.maxLinksPerAddress})`, parseCount(0, 1_000_000))
    .option('--circuit-rate <n>', `CREATE2 per second per address holding ${DOS_DEFAULTS.circuitMinLinks}+ links (default ${DOS_DEFAULTS.circuitRate})`, parseCount(1, 1_000_000))
    .option('--circuit-burst <n>', `CREATE2 such an address may save up (default ${DOS_DEFAULTS.circuitBurst})`, parseCount(1, 1_000_000))
    .option('--max-mem-in-queues <MiB>', 'memory cap for queued cells and stream buffers (default 1/8 of RAM, 64 MiB..4 GiB)', parseCount(1, 1 << 20))
    .option('--no-congestion-control', 'answer no client with congestion control: every circuit hop here keeps fixed SENDME windows (cc_alg=0)')
    .addOption(linkDelay)
    .addOption(linkJitter)
    .addOption(linkRate)
    .action(async (opts: RelayOptions) => {
      if (!opts.exit && (opts.allowLoopbackExit || opts.exitPolicy !== undefined)) {
        say('relay', 'note: --exit-policy/--allow-loopback-exit have no effect without --exit');
      }
      await runRole(
        'relay',
        async () => {
          // Loaded here so `--help` and option errors never load the role code.
          const { startRelay } = await import('../relay/relay.js');
          say('relay', `starting ${opts.nickname} on ${opts.address}:${opts.port}${opts.exit ? ' (exit)' : ''}`);
          const exitPolicy = exitPolicyFor(opts);
          const shape = linkShapeOf(opts);
          return startRelay({
            nickname: opts.nickname,
            dataDir: resolve(opts.dataDir),
            address: opts.address,
            port: opts.port,
            authorities: opts.authority,
            exit: opts.exit,
            ...(exitPolicy !== undefined ? { exitPolicy } : {}),
            ...(opts.publishInterval !== undefined ? { publishIntervalMs: opts.publishInterval } : {}),
            workers: opts.workers,
            dos: {
              ...(opts.maxLinksPerAddress !== undefined ? { maxLinksPerAddress: opts.maxLinksPerAddress } : {}),
              ...(opts.circuitRate !== undefined ? { circuitRate: opts.circuitRate } : {}),
              ...(opts.circuitBurst !== undefined ? { circuitBurst: opts.circuitBurst } : {}),
            },
            ...(opts.maxMemInQueues !== undefined ? { memoryCap: { capBytes: opts.maxMemInQueues * 1024 * 1024 } } : {}),
            ...(shape !== undefined ? { linkShape: shape } : {}),
            ...(opts.congestionControl ? {} : { params: { ...DEFAULT_NETWORK_PARAMS, cc_alg: 0 } }),
          });
        },
        (relay) => {
          say('relay', `${relay.nickname} listening on ${relay.address}:${relay.port}`);
          printUp({
            role: 'relay',
            nickname: relay.nickname,
            address: relay.address,
            port: relay.port,
            identity: hex(relay.identity),
            exit: opts.exit,
          });
        },
      );
    });
}
