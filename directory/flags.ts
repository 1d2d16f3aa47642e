/**
 * The flags an authority votes for each relay (docs/protocol.md §9.4), with
 * thresholds in the spirit of Tor's dir-spec ("Assigning flags in a vote").
 * Pure: the caller passes what the authority knows about every relay.
 */
import type { UptimeStats } from './relay-history.js';

/** Every threshold of §9.4; TOR_FLAG_THRESHOLDS are Tor's values, TESTNET_FLAG_THRESHOLDS fit a network minutes old. */
export interface FlagThresholds {
  /** A relay with less bandwidth (bytes/s) is not "active": it influences no threshold and is never Fast, Stable, Guard or HSDir. */
  minActiveBandwidth: number;
  /** Fast: bandwidth in the top 7/8 of active relays, or at least this (bytes/s). */
  fastGuarantee: number;
  /** Stable: weighted MTBF at least the median of active relays, or at least this (ms). */
  stableMtbfGuaranteeMs: number;
  /** Familiar: known at least this long (ms), or 1/8 of the active relays are newer. */
  familiarTimeKnownMs: number;
  /** Guard: weighted fractional uptime at least the median of familiar active relays, or at least this. */
  guardWfuGuarantee: number;
  /** Guard: bandwidth at least this (bytes/s), or in the fastest quarter of active relays. */
  guardBandwidthGuarantee: number;
  /** HSDir: Fast, Stable and up without a failed test for at least this long (ms). */
  hsdirMinUptimeMs: number;
  /** With fewer Running relays than this, every Running relay is a Guard (small networks need guards first). */
  smallNetworkGuards: number;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;

export const TOR_FLAG_THRESHOLDS: Readonly<FlagThresholds> = Object.freeze({
  minActiveBandwidth: 4096,
  fastGuarantee: 100_000,
  stableMtbfGuaranteeMs: 7 * DAY,
  familiarTimeKnownMs: 8 * DAY,
  guardWfuGuarantee: 0.98,
  guardBandwidthGuarantee: 2_000_000,
  hsdirMinUptimeMs: 96 * HOUR,
  smallNetworkGuards: 8,
});

/** A testnet is minutes old: time-based thresholds in seconds, and every relay that has been up a little counts. */
export const TESTNET_FLAG_THRESHOLDS: Readonly<FlagThresholds> = Object.freeze({
  ...TOR_FLAG_THRESHOLDS,
  stableMtbfGuaranteeMs: 30_000,
  familiarTimeKnownMs: 0,
  guardWfuGuarantee: 0.9,
  hsdirMinUptimeMs: 30_000,
});

/** What the authority knows about one relay when it assigns flags. */
export interface FlagInput {
  /** Its reachability tests say it is Running. */
  running: boolean;
  /** Bytes/s the thresholds use: the authority's measurement if it has one, else the advertised bandwidth. */
  bandwidth: number;
  /** Its exit summary allows a port, and loopback rules allow it to be an exit (§9.4). */
  exitEligible: boolean;
  /** The operator listed it as a bad exit (only when the authority votes on BadExit). */
  badExit: boolean;
  /** Its uptime statistics, if the authority has tested it. */
  stats: UptimeStats | undefined;
}

/** The value at quantile `q` of ascending `sorted` (the lower one between two), or undefined if empty. */
function quantile(sorted: readonly number[], q: number): number | undefined {
  return sorted.length === 0 ? undefined : sorted[Math.floor(q * (sorted.length - 1))];
}

const ascending = (values: number[]): number[] => values.sort((a, b) => a - b);

/** The thresholds in force for a set of relays (for the status page and tests). */
export interface ComputedThresholds {
  fast: number;
  stableMtbfMs: number;
  familiarMs: number;
  guardWfu: number;
  guardBandwidth: number;
}

/** The thresholds that `relays` give under `t` (§9.4). */
export function computeThresholds(relays: readonly FlagInput[], t: FlagThresholds): ComputedThresholds {
  const active = relays.filter((r) => r.running && r.bandwidth >= t.minActiveBandwidth);
  const bw = ascending(active.map((r) => r.bandwidth));
  const mtbf = ascending(active.map((r) => r.stats?.mtbfMs ?? 0));
  const known = ascending(active.map((r) => r.stats?.timeKnownMs ?? 0));
  // 1/8 of the active relays appeared more recently than the familiar ones.
  const familiarMs = Math.min(t.familiarTimeKnownMs, quantile(known, 1 / 8) ?? t.familiarTimeKnownMs);
  const familiarWfu = ascending(active.filter((r) => (r.stats?.timeKnownMs ?? 0) >= familiarMs).map((r) => r.stats?.wfu ?? 0));
  return {
    fast: Math.max(t.minActiveBandwidth, Math.min(t.fastGuarantee, quantile(bw, 1 / 8) ?? t.fastGuarantee)),
    stableMtbfMs: Math.min(t.stableMtbfGuaranteeMs, quantile(mtbf, 1 / 2) ?? t.stableMtbfGuaranteeMs),
    familiarMs,
    guardWfu: Math.min(t.guardWfuGuarantee, quantile(familiarWfu, 1 / 2) ?? t.guardWfuGuarantee),
    guardBandwidth: Math.min(t.guardBandwidthGuarantee, quantile(bw, 3 / 4) ?? t.guardBandwidthGuarantee),
  };
}

/**
 * The flags (sorted) this authority votes for each relay, in input order:
 *
 * - Valid: every relay it lists; Running: its reachability tests succeed;
 * - Exit: Running and exit-eligible; BadExit: listed by the operator;
 * - Fast: active and bandwidth ≥ the Fast threshold;
 * - Stable: active and weighted MTBF ≥ the Stable threshold;
 * - Guard: Fast, Stable, familiar, WFU ≥ the Guard WFU threshold and
 *   bandwidth ≥ the Guard bandwidth threshold — or, with fewer than
 *   `smallNetworkGuards` Running relays, simply Running;
 * - HSDir: Fast, Stable and current uptime ≥ hsdirMinUptimeMs.
 *
 * `votesBadExit`: whether BadExit is among the flags it votes on at all.
 */
export function assignFlags(relays: readonly FlagInput[], t: FlagThresholds, votesBadExit: boolean): string[][] {
  const th = computeThresholds(relays, t);
  const everyoneGuards = relays.filter((r) => r.running).length < t.smallNetworkGuards;
  return relays.map((r) => {
    const flags = ['Valid'];
    if (votesBadExit && r.badExit) flags.push('BadExit');
    if (!r.running) return flags.sort();
    flags.push('Running');
    if (r.exitEligible) flags.push('Exit');
    const active = r.bandwidth >= t.minActiveBandwidth;
    const s = r.stats;
    const fast = active && r.bandwidth >= th.fast;
    const stable = active && s !== undefined && s.mtbfMs >= th.stableMtbfMs;
    if (fast) flags.push('Fast');
    if (stable) flags.push('Stable');
    const familiar = s !== undefined && s.timeKnownMs >= th.familiarMs;
    const guard = fast && stable && familiar && s.wfu >= th.guardWfu && r.bandwidth >= th.guardBandwidth;
    if (guard || everyoneGuards) flags.push('Guard');
    if (fast && stable && s.currentUptimeMs >= t.hsdirMinUptimeMs) flags.push('HSDir');
    return flags.sort();
  });
}

/** The flags an authority votes on (its `known-flags`), with BadExit only when it votes on it. */
export function votedFlags(votesBadExit: boolean): string[] {
  const flags = ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid'];
  if (votesBadExit) flags.unshift('BadExit');
  return flags;
}
