/**
 * `allium relay`: run an onion router (optionally an exit) that publishes its
 * descriptor to the given authorities.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { AuthorityRef } from '../relay/relay.js';
import { hex } from '../src/bytes.js';
import { printUp, runRole, say } from './lifecycle.js';
import { collect, collectString, parseAuthorityRef, parseIPv4, parseMs, parseNickname, parsePath, parsePort } from './options.js';

/** The rules `--allow-loopback-exit` adds, ahead of `reject private:*`: IPv4 and IPv6 loopback. */
export const LOOPBACK_EXIT_RULES = ['accept 127.0.0.0/8:*', 'accept [::1]:*'];

interface RelayOptions {
  nickname: string;
  dataDir: string;
  address: string;
  port: number;
  authority: AuthorityRef[];
  exit: boolean;
  exitPolicy?: string[];
  allowLoopbackExit: boolean;
  publishInterval?: number;
}

/**
 * The exit policy lines a relay runs with, from its options. `--allow-loopback-exit`
 * puts the loopback rule just before the first `reject private` rule, so the
 * port rejections above it (Tor's default list) still apply to loopback.
 */
export function exitPolicyFor(
  opts: { exit: boolean; exitPolicy?: string[]; allowLoopbackExit: boolean },
  defaultExitPolicy: readonly string[],
): string[] | undefined {
  if (!opts.exit) return undefined;
  const base = [...(opts.exitPolicy ?? defaultExitPolicy)];
  if (!opts.allowLoopbackExit) return opts.exitPolicy;
  const at = base.findIndex((rule) => /^reject\s+private:/.test(rule));
  base.splice(at < 0 ? 0 : at, 0, ...LOOPBACK_EXIT_RULES);
  return base;
}

export function registerRelayCommand(program: Command): void {
  program
    .command('relay')
    .description('run a relay (onion router), optionally an exit')
    .requiredOption('--nickname <name>', 'relay nickname (1-19 letters or digits)', parseNickname)
    .requiredOption('--data-dir <dir>', 'directory for keys and state (created 0700; keys 0600)', parsePath)
    .option('--address <ipv4>', 'IPv4 address to listen on and to connect out from', parseIPv4, '127.0.0.1')
    .option('--port <port>', 'OR port (0 = any free port)', parsePort, 0)
    .requiredOption('--authority <url#identityhex>', 'directory authority to publish to (repeatable)', collect(parseAuthorityRef))
    .option('--exit', 'act as an exit relay', false)
    .option('--exit-policy <rule>', 'exit policy rule, e.g. "accept *:80" (repeatable, first match wins)', collectString)
    .option('--allow-loopback-exit', `with --exit, add "${LOOPBACK_EXIT_RULES.join('", "')}" ahead of "reject private:*" (testnets only)`, false)
    .option('--publish-interval <ms>', 'milliseconds between descriptor uploads', parseMs(1000))
    .action(async (opts: RelayOptions) => {
      if (!opts.exit && (opts.allowLoopbackExit || opts.exitPolicy !== undefined)) {
        say('relay', 'note: --exit-policy/--allow-loopback-exit have no effect without --exit');
      }
      await runRole(
        'relay',
        async () => {
          // Loaded here so `--help` and option errors never load the role code.
          const { startRelay, DEFAULT_EXIT_POLICY } = await import('../relay/relay.js');
          say('relay', `starting ${opts.nickname} on ${opts.address}:${opts.port}${opts.exit ? ' (exit)' : ''}`);
          const exitPolicy = exitPolicyFor(opts, DEFAULT_EXIT_POLICY);
          return startRelay({
            nickname: opts.nickname,
            dataDir: resolve(opts.dataDir),
            address: opts.address,
            port: opts.port,
            authorities: opts.authority,
            exit: opts.exit,
            ...(exitPolicy !== undefined ? { exitPolicy } : {}),
            ...(opts.publishInterval !== undefined ? { publishIntervalMs: opts.publishInterval } : {}),
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
