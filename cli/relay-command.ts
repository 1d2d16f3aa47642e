/**
 * `allium relay`: run an onion router (optionally an exit) that publishes its
 * descriptor to the given authorities. Options come from `--config FILE`
 * and the flags (cli/config/); SIGHUP reloads what can change.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { fromHex, hex } from '../src/bytes.js';
import { parseAuthorityRef } from './options.js';
import { printUp, runRole, say } from './lifecycle.js';
import { tuneV8ForCells } from './v8-tuning.js';
import { configCommand } from './config/flags.js';
import { reloadOnSighup } from './config/reload.js';
import { ConfigError } from './config/load.js';
import type { AccountingState, BandwidthStats } from '../relay/relay.js';
import type { DosStats } from '../relay/dos.js';
import type { MemoryCapStats } from '../relay/mem-cap.js';
import { awaitReachable } from './reachability.js';
import { observe, packageVersion, withMetrics } from './metrics/observe.js';
import { startNodeLog } from './log/node-log.js';
import { DEFAULT_EXIT_POLICY_LINES, withLoopbackExit } from '../src/netdoc/default-policies.js';
import { DEFAULT_NETWORK_PARAMS } from '../src/netdoc/params.js';
import { linkShapeOf } from './link-options.js';

/**
 * The exit policy lines a relay runs with, from its options (undefined: the
 * relay's own default, src/netdoc/default-policies.ts). `allow_loopback_exit`
 * puts the loopback rules just before the first `reject private` rule
 * (withLoopbackExit), so the port rejections above it still apply to loopback.
 */
export function exitPolicyFor(opts: { exit: boolean; exitPolicy?: readonly string[]; allowLoopbackExit: boolean }): string[] | undefined {
  if (!opts.exit) return undefined;
  if (!opts.allowLoopbackExit) return opts.exitPolicy === undefined ? undefined : [...opts.exitPolicy];
  return withLoopbackExit(opts.exitPolicy ?? DEFAULT_EXIT_POLICY_LINES);
}

export function registerRelayCommand(program: Command): void {
  const command = program.command('relay').description('run a relay (onion router), optionally an exit');
  const config = configCommand(command, 'relay');
  command.action(async () => {
    const c = config.resolve();
    if (c === null) return;
    const nickname = c.must<string>('relay.nickname');
    const address = c.must<string>('relay.address');
    const port = c.must<number>('relay.or_port');
    const exit = c.must<boolean>('relay.exit');
    const allowLoopbackExit = c.must<boolean>('relay.allow_loopback_exit');
    const policyLines = c.get<string[]>('relay.exit_policy');
    if (!exit && allowLoopbackExit) say('relay', 'note: relay.allow_loopback_exit has no effect without relay.exit');
    const authorities = c.must<string[]>('network.authorities').map(parseAuthorityRef);
    const rate = c.get<number>('bandwidth.rate');
    const burst = c.get<number>('bandwidth.burst');
    if (burst !== undefined && (rate === undefined || burst < rate)) {
      throw new ConfigError([{ file: c.file ?? 'allium relay', key: 'bandwidth.burst', value: burst, message: `needs bandwidth.rate, and at least the rate${rate !== undefined ? ` (${rate})` : ''}` }]);
    }
    let bandwidthStats: () => BandwidthStats | null = () => null;
    let accountingStats: () => AccountingState | null = () => null;
    let dosStats: () => DosStats | null = () => null;
    let memoryStats: () => MemoryCapStats | null = () => null;
    const observed = await observe(c, async (registry) => {
      const { relayAccountingMetrics, relayDosMetrics, relayRateMetrics } = await import('./metrics/relay-metrics.js');
      relayRateMetrics(registry, () => bandwidthStats());
      relayAccountingMetrics(registry, () => accountingStats());
      relayDosMetrics(registry, () => dosStats(), () => memoryStats());
    });
    const beginRate = c.must<number>('dos.begin_rate');
    const beginBurst = c.must<number>('dos.begin_burst');
    if (beginBurst < beginRate) {
      throw new ConfigError([{ file: c.file ?? 'allium relay', key: 'dos.begin_burst', value: beginBurst, message: `must be at least dos.begin_rate (${beginRate})` }]);
    }
    const maxMem = c.get<number>('relay.max_mem_in_queues');
    const shape = linkShapeOf({ linkDelay: c.get<number>('link.delay'), linkJitter: c.get<number>('link.jitter'), linkRate: c.get<number>('link.rate') });
    const log = startNodeLog(c);
    tuneV8ForCells();
    await runRole(
      'relay',
      async () => {
        // Loaded here so `--help` and option errors never load the role code.
        const { startRelay } = await import('../relay/relay.js');
        say('relay', `starting ${nickname} on ${address}:${port}${exit ? ' (exit)' : ''}`);
        const exitPolicy = exitPolicyFor({ exit, allowLoopbackExit, ...(policyLines !== undefined ? { exitPolicy: policyLines } : {}) });
        const relay = await startRelay({
          nickname,
          dataDir: resolve(c.must<string>('storage.data_dir')),
          address,
          port,
          ...(c.get<string>('relay.listen_address') !== undefined ? { listenAddress: c.get<string>('relay.listen_address')! } : {}),
          ...(c.get<number>('relay.listen_port') !== undefined ? { listenPort: c.get<number>('relay.listen_port')! } : {}),
          ...(c.get<string>('relay.ipv6_address') !== undefined ? { ipv6Address: c.get<string>('relay.ipv6_address')! } : {}),
          ...(c.get<number>('relay.ipv6_port') !== undefined ? { ipv6Port: c.get<number>('relay.ipv6_port')! } : {}),
          authorities,
          exit,
          ...(rate !== undefined ? { bandwidthRate: rate, bandwidthBurst: c.get<number>('bandwidth.burst') ?? rate } : {}),
          ...(c.get<number>('accounting.max') !== undefined
            ? { accounting: { maxBytes: c.get<number>('accounting.max')!, periodMs: c.must<number>('accounting.period'), rule: c.must<'max' | 'sum'>('accounting.rule') } }
            : {}),
          ...(c.get<string>('relay.contact') !== undefined ? { contact: c.get<string>('relay.contact')! } : {}),
          family: (c.get<string[]>('relay.family') ?? []).map(fromHex),
          onionKeyLifetimeMs: c.must<number>('relay.onion_key_lifetime'),
          onionKeyGraceMs: c.must<number>('relay.onion_key_grace'),
          signingKeyLifetimeMs: c.must<number>('relay.signing_key_lifetime'),
          ...(exitPolicy !== undefined ? { exitPolicy } : {}),
          publishIntervalMs: c.must<number>('relay.publish_interval'),
          workers: c.get<number>('relay.workers') ?? Math.max(1, availableParallelism()),
          dos: {
            maxLinksPerAddress: c.must<number>('dos.max_links_per_address'),
            circuitRate: c.must<number>('dos.circuit_rate'),
            circuitBurst: c.must<number>('dos.circuit_burst'),
            beginRate,
            beginBurst,
            maxStreamsPerCircuit: c.must<number>('dos.max_streams_per_circuit'),
            handshakeTimeoutMs: c.must<number>('dos.handshake_timeout'),
          },
          ...(maxMem !== undefined ? { memoryCap: { capBytes: maxMem } } : {}),
          ...(shape !== undefined ? { linkShape: shape } : {}),
          ...(c.must<boolean>('relay.congestion_control') ? {} : { params: { ...DEFAULT_NETWORK_PARAMS, cc_alg: 0 } }),
        });
        observed.attach({ linkStats: () => relay.linkStats(), circuitStats: () => relay.circuitStats() });
        bandwidthStats = () => relay.bandwidthStats();
        accountingStats = () => relay.accountingStats();
        dosStats = () => relay.dosStats();
        memoryStats = () => relay.memoryStats();
        return withMetrics(observed, relay, async () =>
          (await import('./dashboard/node-dashboard.js')).nodeDashboard(
            { role: 'relay', nickname, identity: relay.identity, version: packageVersion(), linkStats: () => relay.linkStats(), circuitStats: () => relay.circuitStats(), notices: () => log.logger.recent() },
            authorities,
          ),
        );
      },
      async ({ node: relay, metrics }) => {
        const { listening } = relay;
        const advertised = `${relay.address}:${relay.port}`;
        say('relay', `${relay.nickname} listening on ${listening.address}:${listening.port}${`${listening.address}:${listening.port}` !== advertised ? `, advertising ${advertised}` : ''}`);
        if (metrics !== undefined) say('relay', `metrics on http://${metrics}/metrics`);
        // The bucket's current settings, for appliers that change one of the two.
        const bandwidth = { get rate() { return relay.bandwidthStats()?.rate ?? 0; }, get burst() { return relay.bandwidthStats()?.burst ?? 0; } };
        reloadOnSighup(config, c, {
          ...observed.appliers,
          ...log.appliers,
          'bandwidth.rate': (value) => relay.reconfigure({ bandwidth: { rate: value as number, burst: Math.max(value as number, bandwidth.burst) } }),
          'bandwidth.burst': (value) => relay.reconfigure({ bandwidth: { rate: bandwidth.rate, burst: (value as number | undefined) ?? bandwidth.rate } }),
          'relay.contact': (value) => relay.reconfigure({ contact: (value as string | undefined) ?? null }),
          'relay.family': (value) => relay.reconfigure({ family: ((value as string[] | undefined) ?? []).map(fromHex) }),
          'relay.exit_policy': (lines) => {
            const policy = exitPolicyFor({ exit, allowLoopbackExit, ...(lines !== undefined ? { exitPolicy: lines as string[] } : {}) });
            relay.reconfigure({ exitPolicy: policy ?? DEFAULT_EXIT_POLICY_LINES });
          },
        }, (line, level) => say('relay', line, level));
        printUp({
          role: 'relay',
          nickname: relay.nickname,
          address: relay.address,
          port: relay.port,
          identity: hex(relay.identity),
          exit,
          ...(metrics !== undefined ? { metrics } : {}),
        });
        const timeoutMs = c.must<number>('relay.reachability_timeout');
        if (timeoutMs > 0 && authorities.length > 0) {
          await Promise.race([relay.failed, awaitReachable({ authorities, identity: relay.identity, advertised, timeoutMs, cancelled: () => false })]);
          say('relay', `Self-test: the authorities reach ${advertised}; this relay is in the consensus`);
        }
        // A relay that lost a worker no longer carries what it advertises: stop (exit status 1) so its supervisor restarts it.
        await relay.failed;
      },
    );
  });
}
