/**
 * Picking the three relays of a circuit (docs/protocol.md §11): an exit whose
 * policy summary allows the port, a guard, and a middle; all distinct and no
 * two in the same network (IPv4 /16, IPv6 /32), each chosen with probability
 * proportional to its bandwidth. Pure: the random source is a parameter.
 */
import type { ConsensusRelay } from '../src/netdoc/consensus.js';
import { summaryAllowsPort } from '../src/netdoc/exit-policy.js';
import { AlliumError } from '../src/errors.js';
import { parseIp } from '../src/net/address.js';
import { networkKey } from '../src/net/prefix.js';

/** Returns a uniform float in [0, 1). */
export type RandomSource = () => number;

const networks = new WeakMap<ConsensusRelay, string>();

/**
 * The network a relay counts as (IPv4 /16, IPv6 /32: src/net/prefix.ts). A
 * consensus only lists valid addresses; anything else stands for itself.
 */
function network(relay: ConsensusRelay): string {
  let key = networks.get(relay);
  if (key === undefined) {
    const address = parseIp(relay.address);
    key = address === null ? `?${relay.address}` : networkKey(address);
    networks.set(relay, key);
  }
  return key;
}

function weightedPick(candidates: ConsensusRelay[], random: RandomSource): ConsensusRelay | undefined {
  const total = candidates.reduce((sum, r) => sum + Math.max(1, r.bandwidth), 0);
  let point = random() * total;
  for (const relay of candidates) {
    point -= Math.max(1, relay.bandwidth);
    if (point < 0) return relay;
  }
  return candidates[candidates.length - 1];
}

export function exitsForPort(relays: readonly ConsensusRelay[], port: number): ConsensusRelay[] {
  return relays.filter((r) => r.flags.includes('Exit') && r.flags.includes('Running') && summaryAllowsPort(r.exitSummary, port));
}

/** Choose [guard, middle, exit] for a stream to `port`. Throws ERR_NO_PATH when the consensus cannot supply one. */
export function choosePath(relays: readonly ConsensusRelay[], port: number, random: RandomSource = Math.random): ConsensusRelay[] {
  const running = relays.filter((r) => r.flags.includes('Running') && r.flags.includes('Valid'));
  const allowed = exitsForPort(running, port);
  if (allowed.length === 0) throw new AlliumError('ERR_NO_PATH', `no exit allows port ${port}`);
  // Leave out exits that no guard can go with (every guard in the exit's network),
  // so a heavy unusable exit cannot use up every attempt below.
  const guardNetworks = new Set(running.filter((r) => r.flags.includes('Guard')).map(network));
  const exits = allowed.filter((r) => guardNetworks.size > 1 || (guardNetworks.size === 1 && !guardNetworks.has(network(r))));
  if (exits.length === 0) throw new AlliumError('ERR_NO_PATH', 'no guard outside the network (/16) of an exit that allows the port');
  for (let attempt = 0; attempt < 16; attempt++) {
    const exit = weightedPick(exits, random)!;
    const used = new Set([network(exit)]);
    const guards = running.filter((r) => r.flags.includes('Guard') && !used.has(network(r)));
    const guard = weightedPick(guards, random);
    if (guard === undefined) continue;
    used.add(network(guard));
    const middle = weightedPick(running.filter((r) => !used.has(network(r))), random);
    if (middle === undefined) continue;
    return [guard, middle, exit];
  }
  throw new AlliumError('ERR_NO_PATH', 'not enough distinct relays for a three-hop circuit');
}
