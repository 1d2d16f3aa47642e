/**
 * Turning the registry into a consensus body (docs/protocol.md §9.4, §9.5):
 * which relays are listed and with which flags, under which consensus method
 * and network parameters. Pure: the caller passes the clock.
 */
import {
  exitPolicyAllows,
  summarizeExitPolicy,
  summaryRejectsAll,
  type ExitPolicy,
} from '../src/netdoc/exit-policy.js';
import { MAX_CONSENSUS_LINE, type ConsensusAuthority, type ConsensusBody, type ConsensusRelay } from '../src/netdoc/consensus.js';
import { AlliumError } from '../src/errors.js';
import { formatParams, type RawParams } from '../src/netdoc/params.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import { formatIp } from '../src/net/address.js';

/** With fewer Running relays than this, every Running relay is a Guard. */
export const SMALL_NETWORK_GUARD_THRESHOLD = 8;
/** Bytes per second at or above which a relay is Fast. */
export const FAST_MIN_BANDWIDTH = 50_000;

export interface BuildInput {
  now: number;
  freshMs: number;
  lifetimeMs: number;
  authorities: ConsensusAuthority[];
  /** Only relays that are Running are passed. */
  running: { descriptor: RelayDescriptor; digest: Uint8Array }[];
  exitsAllowLoopback: boolean;
  /** The `params` line to publish (§8.5), written as given; default none (every reader uses the defaults). */
  params?: RawParams;
}

/**
 * Checks configured network parameters against the `params` grammar (§8.5)
 * and the consensus line limit, so that publication cannot fail on them.
 * Throws AlliumError ERR_CONFIG.
 */
export function checkParamsConfig(params: RawParams | undefined): void {
  if (params === undefined) return;
  let line: string;
  try {
    line = ['params', ...formatParams(params, 'authority params')].join(' ');
  } catch (cause) {
    throw new AlliumError('ERR_CONFIG', (cause as Error).message, { cause });
  }
  if (line.length > MAX_CONSENSUS_LINE) throw new AlliumError('ERR_CONFIG', `authority params: the params line would be longer than ${MAX_CONSENSUS_LINE}`);
}

function ceilSeconds(ms: number): number {
  return Math.max(1000, Math.ceil(ms / 1000) * 1000);
}

/** Whether the policy could let a stream reach a loopback address (127/8 or ::1). */
export function policyAllowsLoopback(policy: ExitPolicy): boolean {
  const ports = new Set<number>([1]);
  const addresses = new Set<string>(['127.0.0.1', '::1']);
  for (const rule of policy) {
    ports.add(rule.portMin);
    if (rule.portMax < 65535) ports.add(rule.portMax + 1);
    if (rule.action === 'accept' && rule.address.kind === 'prefix' && rule.address.prefix.family === 4 && rule.address.prefix.bytes[0] === 127) {
      addresses.add(formatIp(rule.address.prefix));
    }
  }
  for (const address of addresses) for (const port of ports) if (exitPolicyAllows(policy, address, port)) return true;
  return false;
}

function lowerMedian(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

export function buildConsensusBody(input: BuildInput): ConsensusBody {
  const validAfter = Math.floor(input.now / 1000) * 1000;
  const freshUntil = validAfter + ceilSeconds(input.freshMs);
  const validUntil = Math.max(freshUntil, validAfter + ceilSeconds(input.lifetimeMs));
  const median = lowerMedian(input.running.map((r) => r.descriptor.bandwidth));
  const everyoneGuards = input.running.length < SMALL_NETWORK_GUARD_THRESHOLD;

  const relays: ConsensusRelay[] = input.running.map(({ descriptor: d, digest }) => {
    const exitSummary = summarizeExitPolicy(d.exitPolicy, { loopbackCounts: input.exitsAllowLoopback });
    const flags = new Set<string>(['Running', 'Valid']);
    const loopbackOk = input.exitsAllowLoopback || !policyAllowsLoopback(d.exitPolicy);
    if (!summaryRejectsAll(exitSummary) && loopbackOk) flags.add('Exit');
    if (everyoneGuards || d.bandwidth >= median) flags.add('Guard');
    if (d.bandwidth >= FAST_MIN_BANDWIDTH) flags.add('Fast');
    return {
      nickname: d.nickname,
      identity: d.identity,
      address: d.address,
      orPort: d.orPort,
      linkKey: d.linkKey,
      ntorOnionKey: d.ntorOnionKey,
      descriptorDigest: digest,
      flags: [...flags].sort(),
      bandwidth: d.bandwidth,
      exitSummary,
    };
  });
  return {
    consensusMethod: 1,
    rawParams: new Map(input.params ?? []),
    validAfter,
    freshUntil,
    validUntil,
    authorities: input.authorities,
    relays,
  };
}
