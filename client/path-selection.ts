/**
 * Path rules (docs/protocol.md §11.2), as pure functions: the random source,
 * the position weights and the guard choice are parameters.
 *
 * A circuit for a stream is [guard, middle, exit], chosen exit first, then
 * the guard, then the middle, as Tor does:
 * - every hop is Running and Valid, and not one the caller avoids;
 * - the exit has the Exit flag, not BadExit, and its policy accepts the
 *   target (its full policy when known and the target is an address, else
 *   the port summary of the consensus);
 * - the guard has the Guard flag (the caller's guard set usually picks it);
 * - no two hops are the same relay, in the same network (IPv4 /16, IPv6 /32:
 *   src/net/prefix.ts) or in the same family: each lists the other in its
 *   consensus `f` line (a mutual family, §8.4), or they share a family id;
 * - each position is drawn with probability proportional to bandwidth × the
 *   position weight of the relay's class (./position-weights.ts).
 */
import type { ConsensusRelay } from '../src/netdoc/consensus.js';
import { exitPolicyAllows, summaryAllowsPort, type ExitPolicy } from '../src/netdoc/exit-policy.js';
import { AlliumError } from '../src/errors.js';
import { parseIp } from '../src/net/address.js';
import { networkKey } from '../src/net/prefix.js';
import { computePositionWeights, classTotals, positionWeight, relayClass, WEIGHT_SCALE, type Position, type PositionWeights } from './position-weights.js';

/** Returns a uniform float in [0, 1). */
export type RandomSource = () => number;

/**
 * What path selection knows about a relay: its consensus entry, and
 * optionally what a later document adds.
 */
export interface PathRelay extends ConsensusRelay {
  /**
   * Family identifiers (Tor's family-ids, opaque strings) from a source other
   * than the consensus: two relays that share one are in the same family and
   * never share a path. Absent: none.
   */
  familyIds?: readonly string[];
  /** The exit's full policy (from its descriptor), when the client has it; else the summary is used. */
  exitPolicy?: ExitPolicy;
}

/** Where a stream goes: `host` is an IP address literal or a name (the exit resolves names); `port` 1..65535. */
export interface StreamTarget {
  host?: string;
  port: number;
}

export interface PathOptions {
  /** Default Math.random. */
  random?: RandomSource;
  /** Default computed from `relays` (positionWeightsFor). */
  weights?: PositionWeights;
  /** Relays to leave out of every position (e.g. ones that failed a moment ago). */
  avoid?: (relay: PathRelay) => boolean;
  /** Further exits to refuse for this target (e.g. ones that refused it already). */
  refuseExit?: (relay: PathRelay) => boolean;
  /**
   * The guard for a path whose exit is chosen: return a relay for which
   * `compatible` holds, or null when there is none. Default: a weighted draw
   * (guard position) among the Guard-flagged relays.
   */
  chooseGuard?: (compatible: (relay: PathRelay) => boolean) => PathRelay | null;
}

/** How many exits choosePath tries before it gives up on finding a guard and a middle for one. */
const EXIT_TRIES = 8;

const networks = new WeakMap<ConsensusRelay, string>();

/**
 * The network a relay counts as (IPv4 /16, IPv6 /32: src/net/prefix.ts). A
 * consensus only lists valid addresses; anything else stands for itself.
 */
export function relayNetwork(relay: ConsensusRelay): string {
  let key = networks.get(relay);
  if (key === undefined) {
    const address = parseIp(relay.address);
    key = address === null ? `?${relay.address}` : networkKey(address);
    networks.set(relay, key);
  }
  return key;
}

function sameIdentity(a: ConsensusRelay, b: ConsensusRelay): boolean {
  if (a === b) return true;
  if (a.identity.length !== b.identity.length) return false;
  for (let i = 0; i < a.identity.length; i++) if (a.identity[i] !== b.identity[i]) return false;
  return true;
}

/** Whether `relay`'s consensus family (`f` line) lists `member`. */
function listsInFamily(relay: ConsensusRelay, member: ConsensusRelay): boolean {
  if (relay.family === undefined) return false;
  return relay.family.some((id) => id.length === member.identity.length && id.every((byte, i) => byte === member.identity[i]));
}

/**
 * Whether the two relays are one family: each lists the other in its
 * consensus family (checked both ways, so a one-sided listing never counts,
 * whatever the consensus method), or they share a family identifier.
 */
export function sameFamily(a: PathRelay, b: PathRelay): boolean {
  if (listsInFamily(a, b) && listsInFamily(b, a)) return true;
  if (a.familyIds === undefined || b.familyIds === undefined || a.familyIds.length === 0 || b.familyIds.length === 0) return false;
  return a.familyIds.some((f) => b.familyIds!.includes(f));
}

/** Whether two relays may not share a path: the same relay, network or family. */
export function related(a: PathRelay, b: PathRelay): boolean {
  return sameIdentity(a, b) || relayNetwork(a) === relayNetwork(b) || sameFamily(a, b);
}

/** Running and Valid. */
export function isUsable(relay: ConsensusRelay): boolean {
  return relay.flags.includes('Running') && relay.flags.includes('Valid');
}

/**
 * Whether `relay` may be the exit for `target`: Running, Valid, Exit and not
 * BadExit, and its policy accepts the target: the full policy when the relay
 * has one and the host is an IP address, else the port summary.
 */
export function canExitTo(relay: PathRelay, target: StreamTarget): boolean {
  if (!isUsable(relay) || !relay.flags.includes('Exit') || relay.flags.includes('BadExit')) return false;
  if (relay.exitPolicy !== undefined && target.host !== undefined && parseIp(target.host) !== null) {
    return exitPolicyAllows(relay.exitPolicy, target.host, target.port);
  }
  return summaryAllowsPort(relay.exitSummary, target.port);
}

/** The exits that may carry a stream to `target` (canExitTo). */
export function exitsFor(relays: readonly PathRelay[], target: StreamTarget): PathRelay[] {
  return relays.filter((r) => canExitTo(r, target));
}

/** Backward-compatible: the exits whose summary allows `port` (Running, Exit, not BadExit). */
export function exitsForPort(relays: readonly ConsensusRelay[], port: number): ConsensusRelay[] {
  return relays.filter(
    (r) => r.flags.includes('Exit') && r.flags.includes('Running') && !r.flags.includes('BadExit') && summaryAllowsPort(r.exitSummary, port),
  );
}

/** A relay's selection weight in `position`: max(1, bandwidth) × the position weight of its class / WEIGHT_SCALE. */
export function selectionWeight(relay: ConsensusRelay, position: Position, weights: PositionWeights): number {
  return (Math.max(1, relay.bandwidth) * positionWeight(weights, position, relayClass(relay.flags))) / WEIGHT_SCALE;
}

/**
 * One of `candidates`, with probability proportional to `weight` (one draw of
 * `random`); uniformly when every weight is 0; undefined when there are none.
 */
export function weightedChoice<T>(candidates: readonly T[], weight: (item: T) => number, random: RandomSource): T | undefined {
  if (candidates.length === 0) return undefined;
  const weights = candidates.map(weight);
  const total = weights.reduce((sum, w) => sum + w, 0);
  if (!(total > 0)) return candidates[Math.min(candidates.length - 1, Math.floor(random() * candidates.length))];
  let point = random() * total;
  for (let i = 0; i < candidates.length; i++) {
    point -= weights[i]!;
    if (point < 0 && weights[i]! > 0) return candidates[i];
  }
  // Rounding: the last candidate with weight.
  for (let i = candidates.length - 1; i >= 0; i--) if (weights[i]! > 0) return candidates[i];
  return candidates[candidates.length - 1];
}

/** A weighted draw (guard position) among the Running, Valid, Guard-flagged `relays` for which `compatible` holds. */
export function chooseGuardByWeight(
  relays: readonly PathRelay[],
  compatible: (relay: PathRelay) => boolean,
  weights: PositionWeights,
  random: RandomSource,
): PathRelay | null {
  const guards = relays.filter((r) => isUsable(r) && r.flags.includes('Guard') && compatible(r));
  return weightedChoice(guards, (r) => selectionWeight(r, 'guard', weights), random) ?? null;
}

/** A weighted draw (middle position) among the usable `relays` related to none of `used`. */
export function chooseMiddle(relays: readonly PathRelay[], used: readonly PathRelay[], weights: PositionWeights, random: RandomSource): PathRelay | null {
  const middles = relays.filter((r) => isUsable(r) && !used.some((u) => related(r, u)));
  return weightedChoice(middles, (r) => selectionWeight(r, 'middle', weights), random) ?? null;
}

function normalizeOptions(arg: RandomSource | PathOptions | undefined): PathOptions {
  if (arg === undefined) return {};
  return typeof arg === 'function' ? { random: arg } : arg;
}

/**
 * Choose [guard, middle, exit] for a stream to `target` (a port alone, or
 * host and port). Throws AlliumError ERR_NO_PATH when no exit accepts the
 * target, or no guard and middle can go with any exit that does.
 */
export function choosePath(relays: readonly PathRelay[], target: number | StreamTarget, options?: RandomSource | PathOptions): PathRelay[] {
  const opts = normalizeOptions(options);
  const random = opts.random ?? Math.random;
  const weights = opts.weights ?? computePositionWeights(classTotals(relays));
  const avoid = opts.avoid ?? (() => false);
  const t: StreamTarget = typeof target === 'number' ? { port: target } : target;

  const candidates = relays.filter((r) => isUsable(r) && !avoid(r));
  const allowed = candidates.filter((r) => canExitTo(r, t) && opts.refuseExit?.(r) !== true);
  if (allowed.length === 0) throw new AlliumError('ERR_NO_PATH', `no usable exit allows port ${t.port}`);
  // Leave out exits that no guard can go with, so a heavy unusable exit cannot use up every try below.
  const guards = candidates.filter((r) => r.flags.includes('Guard'));
  let exits = allowed.filter((e) => guards.some((g) => !related(g, e)));
  if (exits.length === 0) throw new AlliumError('ERR_NO_PATH', 'no guard outside the network and family of an exit that allows the port');

  const pickGuard =
    opts.chooseGuard ?? ((compatible: (r: PathRelay) => boolean) => chooseGuardByWeight(candidates, compatible, weights, random));
  for (let attempt = 0; attempt < EXIT_TRIES && exits.length > 0; attempt++) {
    const exit = weightedChoice(exits, (r) => selectionWeight(r, 'exit', weights), random)!;
    const guard = pickGuard((g) => !avoid(g) && !related(g, exit));
    if (guard === null) {
      exits = exits.filter((e) => e !== exit);
      continue;
    }
    const middle = chooseMiddle(candidates, [guard, exit], weights, random);
    if (middle === null) {
      exits = exits.filter((e) => e !== exit);
      continue;
    }
    return [guard, middle, exit];
  }
  throw new AlliumError('ERR_NO_PATH', 'not enough unrelated relays for a three-hop circuit');
}
