/**
 * Computing the consensus from a round's votes (docs/protocol.md §9.6).
 *
 * Pure and deterministic: the result depends only on the set of votes (not
 * on their order, the clock, or the computing authority's configuration),
 * so every authority holding the same votes encodes the same body bytes.
 */
import { compareBytes } from '../src/netdoc/text.js';
import { formatSummary } from '../src/netdoc/exit-policy.js';
import { AlliumError } from '../src/errors.js';
import type { ConsensusAuthority, ConsensusBody, ConsensusRelay } from '../src/netdoc/consensus.js';
import type { Vote, VoteRelay } from '../src/netdoc/vote.js';
import { computeBandwidthWeights } from './bandwidth-weights.js';

/** The consensus methods this code can compute (§8.4, §9.6). */
export const SUPPORTED_METHODS: readonly number[] = [1, 2, 3, 4];

/** The lower median: the ⌊(n−1)/2⌋-th smallest value (ties go to the smaller, as in Tor). */
export function lowerMedian(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** A strict majority of `of`: more than half. */
const majority = (count: number, of: number): boolean => count * 2 > of;

/**
 * The method the consensus uses: the highest method that this code supports
 * and that more than two thirds of the votes list; 1 if none (every vote lists 1).
 */
export function chooseMethod(votes: readonly Vote[], supported: readonly number[] = SUPPORTED_METHODS): number {
  let best = 1;
  for (const m of supported) {
    const count = votes.filter((v) => v.consensusMethods.includes(m)).length;
    if (count * 3 > votes.length * 2 && m > best) best = m;
  }
  return best;
}

/** Bytes as a string usable as a map key (one char per byte). */
function keyOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * The descriptor-derived fields of an entry. The descriptor digest fixes the
 * nickname, address, port and keys (they are the descriptor's); the exit
 * summary also depends on the voter, so it is part of the key.
 */
function descriptorKey(r: ConsensusRelay): string {
  const family = (r.family ?? []).map(keyOf).join('');
  const a = r.orAddress6 === undefined ? '' : `[${r.orAddress6.address}]:${r.orAddress6.port}`;
  return `${keyOf(r.descriptorDigest)}${r.nickname} ${r.address} ${r.orPort} ${keyOf(r.linkKey)}${keyOf(r.ntorOnionKey)}${formatSummary(r.exitSummary)} ${family} ${a}`;
}

/**
 * Method 3 (§9.6): each listed relay's family becomes the members that are
 * listed too and whose own (chosen) family lists it back; none left: no
 * family. `declared` holds each relay's family from its chosen entry.
 */
function mutualFamilies(relays: ConsensusRelay[], declared: ReadonlyMap<ConsensusRelay, readonly Uint8Array[]>): void {
  const byId = new Map<string, ConsensusRelay>();
  for (const r of relays) byId.set(keyOf(r.identity), r);
  for (const r of relays) {
    const self = keyOf(r.identity);
    const mutual = (declared.get(r) ?? []).filter((id) => {
      const other = byId.get(keyOf(id));
      return other !== undefined && (declared.get(other) ?? []).some((back) => keyOf(back) === self);
    });
    if (mutual.length > 0) r.family = mutual;
  }
}

/**
 * The entry whose descriptor fields appear in the most votes; ties go to the
 * smaller descriptor digest, then to the smaller key text.
 */
function chooseEntry(entries: readonly VoteRelay[]): VoteRelay {
  const groups = new Map<string, { entry: VoteRelay; count: number }>();
  for (const e of entries) {
    const key = descriptorKey(e);
    const g = groups.get(key);
    if (g === undefined) groups.set(key, { entry: e, count: 1 });
    else g.count++;
  }
  let best: { key: string; entry: VoteRelay; count: number } | undefined;
  for (const [key, g] of groups) {
    if (
      best === undefined ||
      g.count > best.count ||
      (g.count === best.count && (compareBytes(g.entry.descriptorDigest, best.entry.descriptorDigest) < 0 ||
        (compareBytes(g.entry.descriptorDigest, best.entry.descriptorDigest) === 0 && key < best.key)))
    ) {
      best = { key, ...g };
    }
  }
  return best!.entry;
}

/**
 * The consensus body for a round's votes (§9.6). The votes must be from
 * distinct authorities and for the same valid-after (else AlliumError
 * ERR_CONFIG: the caller grouped them wrongly). Every vote counts equally.
 *
 * - method: `chooseMethod`;
 * - fresh-until, valid-until: the lower median of the votes' values;
 * - params: every key listed by more than half of the votes, at the lower
 *   median of the listed values;
 * - authorities: the voters;
 * - a relay is listed when more than half of the votes list its identity;
 *   its descriptor fields are those most votes agree on; a flag is set when
 *   more than half of the votes that list the relay and know the flag set
 *   it; BadExit clears Exit; relays without Running or Valid are left out;
 * - bandwidth: the lower median of the Measured values if more than half of
 *   the votes listing the relay measured it, else the lower median of the
 *   advertised values, marked Unmeasured;
 * - method ≥ 2: the bandwidth weights of §9.7;
 * - method ≥ 3: each relay's `f` line holds its mutual family: the members
 *   of its declared family that are listed and declare it back;
 * - method ≥ 4: each relay's `a` line, its IPv6 OR address (chosen with the
 *   other descriptor fields).
 */
export function computeConsensus(votes: readonly Vote[], supported: readonly number[] = SUPPORTED_METHODS): ConsensusBody {
  if (votes.length === 0) throw new AlliumError('ERR_CONFIG', 'no votes');
  const validAfter = votes[0]!.validAfter;
  const seen = new Set<string>();
  for (const v of votes) {
    if (v.validAfter !== validAfter) throw new AlliumError('ERR_CONFIG', 'votes of different rounds');
    const id = keyOf(v.authority.identity);
    if (seen.has(id)) throw new AlliumError('ERR_CONFIG', 'two votes by one authority');
    seen.add(id);
  }
  const n = votes.length;
  const consensusMethod = chooseMethod(votes, supported);

  const paramValues = new Map<string, number[]>();
  for (const v of votes) for (const [k, value] of v.rawParams) paramValues.set(k, [...(paramValues.get(k) ?? []), value]);
  const rawParams = new Map<string, number>();
  for (const [k, values] of [...paramValues].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (majority(values.length, n)) rawParams.set(k, lowerMedian(values));
  }

  const authorities: ConsensusAuthority[] = votes.map((v) => v.authority).sort((a, b) => compareBytes(a.identity, b.identity));

  // Entries by relay identity, each with the known flags of the vote it came from.
  const listings = new Map<string, { entry: VoteRelay; known: readonly string[] }[]>();
  for (const v of votes) {
    for (const r of v.relays) {
      const id = keyOf(r.identity);
      const list = listings.get(id);
      if (list === undefined) listings.set(id, [{ entry: r, known: v.knownFlags }]);
      else list.push({ entry: r, known: v.knownFlags });
    }
  }
  const relays: ConsensusRelay[] = [];
  const declared = new Map<ConsensusRelay, readonly Uint8Array[]>();
  for (const list of listings.values()) {
    if (!majority(list.length, n)) continue;
    const chosen = chooseEntry(list.map((l) => l.entry));
    const allFlags = new Set<string>();
    for (const l of list) for (const f of l.known) allFlags.add(f);
    const flags: string[] = [];
    for (const f of [...allFlags].sort()) {
      const voters = list.filter((l) => l.known.includes(f));
      const setBy = voters.filter((l) => l.entry.flags.includes(f)).length;
      if (majority(setBy, voters.length)) flags.push(f);
    }
    if (flags.includes('BadExit') && flags.includes('Exit')) flags.splice(flags.indexOf('Exit'), 1);
    if (!flags.includes('Running') || !flags.includes('Valid')) continue;
    const measured = list.map((l) => l.entry.measured).filter((m): m is number => m !== undefined);
    const isMeasured = majority(measured.length, list.length);
    const relay: ConsensusRelay = {
      nickname: chosen.nickname,
      identity: chosen.identity,
      address: chosen.address,
      orPort: chosen.orPort,
      linkKey: chosen.linkKey,
      ntorOnionKey: chosen.ntorOnionKey,
      descriptorDigest: chosen.descriptorDigest,
      flags,
      bandwidth: isMeasured ? lowerMedian(measured) : lowerMedian(list.map((l) => l.entry.bandwidth)),
      exitSummary: chosen.exitSummary,
    };
    if (!isMeasured) relay.unmeasured = true;
    if (consensusMethod >= 4 && chosen.orAddress6 !== undefined) relay.orAddress6 = chosen.orAddress6;
    if (chosen.family !== undefined && chosen.family.length > 0) declared.set(relay, chosen.family);
    relays.push(relay);
  }
  relays.sort((a, b) => compareBytes(a.identity, b.identity));
  if (consensusMethod >= 3) mutualFamilies(relays, declared);

  const body: ConsensusBody = {
    consensusMethod,
    rawParams,
    validAfter,
    freshUntil: lowerMedian(votes.map((v) => v.freshUntil)),
    validUntil: lowerMedian(votes.map((v) => v.validUntil)),
    authorities,
    relays,
  };
  if (consensusMethod >= 2) {
    const weights = computeBandwidthWeights(relays, rawParams.get('bwweightscale'));
    if (weights !== undefined) body.bandwidthWeights = weights;
  }
  return body;
}
