/**
 * This authority's vote for a round (docs/protocol.md §8.7, §9.4): every
 * relay it holds a descriptor for, with the flags it assigns from its own
 * reachability tests and measurements, the parameters it is configured with,
 * and the consensus methods it supports. Pure: the caller passes the clock
 * readings and the relays' state.
 */
import {
  exitPolicyAllows,
  summarizeExitPolicy,
  summaryRejectsAll,
  type ExitPolicy,
} from '../src/netdoc/exit-policy.js';
import { MAX_CONSENSUS_LINE, type ConsensusAuthority } from '../src/netdoc/consensus.js';
import { AlliumError } from '../src/errors.js';
import { formatParams, type RawParams } from '../src/netdoc/params.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import type { Vote, VoteRelay } from '../src/netdoc/vote.js';
import { formatIp } from '../src/net/address.js';
import { hex } from '../src/bytes.js';
import { compareBytes } from '../src/netdoc/text.js';
import { assignFlags, TOR_FLAG_THRESHOLDS, votedFlags, type FlagThresholds } from './flags.js';
import type { UptimeStats } from './relay-history.js';

/** What the authority knows about one relay when it votes. */
export interface RelayStatus {
  descriptor: RelayDescriptor;
  digest: Uint8Array;
  /** Its reachability tests say it is Running (§9.4). */
  running: boolean;
  /** Bytes per second this authority measured (§9.4), if it has a measurement. */
  measured?: number;
  /** Its uptime statistics (§9.4), if this authority has tested it. */
  stats?: UptimeStats;
}

export interface VoteInput {
  /** This authority as it lists itself. */
  authority: ConsensusAuthority;
  published: number;
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  relays: readonly RelayStatus[];
  /** Testnet: exits whose policy allows loopback destinations still get Exit (§9.4). */
  exitsAllowLoopback: boolean;
  /** The `params` this authority votes for (§8.5); default none. */
  params?: RawParams;
  /** The consensus methods this authority supports (§9.6). */
  methods: readonly number[];
  /** Flag thresholds (§9.4); default Tor's. */
  thresholds?: FlagThresholds;
  /** Identities (hex) the operator marks BadExit; undefined: this authority does not vote on BadExit. */
  badExits?: ReadonlySet<string>;
}

/**
 * Checks configured network parameters against the `params` grammar (§8.5)
 * and the line limit, so that votes and consensuses cannot fail on them.
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

/** Builds this authority's vote (unsigned): every relay it holds, with the flags §9.4 gives. */
export function buildVote(input: VoteInput): Vote {
  const votesBadExit = input.badExits !== undefined;
  const summaries = input.relays.map((r) => summarizeExitPolicy(r.descriptor.exitPolicy, { loopbackCounts: input.exitsAllowLoopback }));
  const flags = assignFlags(
    input.relays.map((r, i) => ({
      running: r.running,
      bandwidth: r.measured ?? r.descriptor.bandwidth,
      exitEligible: !summaryRejectsAll(summaries[i]!) && (input.exitsAllowLoopback || !policyAllowsLoopback(r.descriptor.exitPolicy)),
      badExit: input.badExits?.has(hex(r.descriptor.identity)) === true,
      stats: r.stats,
    })),
    input.thresholds ?? TOR_FLAG_THRESHOLDS,
    votesBadExit,
  );
  const relays: VoteRelay[] = input.relays.map((status, i) => {
    const d = status.descriptor;
    const relay: VoteRelay = {
      nickname: d.nickname,
      identity: d.identity,
      address: d.address,
      orPort: d.orPort,
      linkKey: d.linkKey,
      ntorOnionKey: d.ntorOnionKey,
      descriptorDigest: status.digest,
      flags: flags[i]!,
      bandwidth: d.bandwidth,
      exitSummary: summaries[i]!,
    };
    if (status.measured !== undefined) relay.measured = status.measured;
    // The family as the relay declares it (§8.7); the consensus keeps only the mutual part (§9.6).
    if (d.family !== undefined && d.family.length > 0) relay.family = [...d.family].sort(compareBytes);
    if (d.orAddress6 !== undefined) relay.orAddress6 = d.orAddress6;
    return relay;
  });
  relays.sort((a, b) => (hex(a.identity) < hex(b.identity) ? -1 : 1));
  return {
    consensusMethods: [...input.methods],
    published: input.published,
    validAfter: input.validAfter,
    freshUntil: input.freshUntil,
    validUntil: input.validUntil,
    knownFlags: votedFlags(votesBadExit),
    rawParams: new Map(input.params ?? []),
    authority: input.authority,
    relays,
  };
}
