/**
 * The voting timetable (docs/protocol.md §9.5). Pure arithmetic on times in
 * ms since the epoch.
 *
 * Rounds are aligned to the voting interval I: the consensus of round VA
 * becomes valid at VA, a whole multiple of I. With vote delay V and
 * distribution delay D (V + D ≤ I/2):
 *
 *   VA − D − V     each authority makes, signs and uploads its vote
 *   VA − D − V/2   it stops accepting uploaded votes and downloads missing ones
 *   VA − D         it computes the consensus, signs it and uploads its signature
 *   VA − D/2       it downloads missing signatures
 *   VA             it publishes the consensus if more than half of all authorities signed
 */
import { AlliumError } from '../src/errors.js';

export interface Timetable {
  /** I: ms between rounds, a whole number of seconds. */
  intervalMs: number;
  /** V: ms for votes to be uploaded. */
  voteDelayMs: number;
  /** D: ms for signatures to be exchanged. */
  distDelayMs: number;
  /** How long each consensus stays valid (valid-until − valid-after), a whole number of seconds ≥ I. */
  lifetimeMs: number;
}

/** The moments of one round. */
export interface RoundTimes {
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  voteAt: number;
  fetchVotesAt: number;
  computeAt: number;
  fetchSignaturesAt: number;
  publishAt: number;
}

/**
 * A timetable with V = D = I/4 unless given. Throws AlliumError ERR_CONFIG
 * unless I and the lifetime are whole seconds, lifetime ≥ I, and V, D > 0
 * with V + D ≤ I/2.
 */
export function makeTimetable(intervalMs: number, lifetimeMs: number, voteDelayMs?: number, distDelayMs?: number): Timetable {
  const t: Timetable = {
    intervalMs,
    lifetimeMs,
    voteDelayMs: voteDelayMs ?? Math.floor(intervalMs / 4),
    distDelayMs: distDelayMs ?? Math.floor(intervalMs / 4),
  };
  if (!Number.isInteger(intervalMs) || intervalMs < 1000 || intervalMs % 1000 !== 0) {
    throw new AlliumError('ERR_CONFIG', 'the voting interval must be a whole number of seconds (at least 1000 ms)');
  }
  if (!Number.isInteger(lifetimeMs) || lifetimeMs % 1000 !== 0 || lifetimeMs < intervalMs) {
    throw new AlliumError('ERR_CONFIG', 'the consensus lifetime must be a whole number of seconds, at least the voting interval');
  }
  if (!(t.voteDelayMs > 0 && t.distDelayMs > 0 && t.voteDelayMs + t.distDelayMs <= intervalMs / 2)) {
    throw new AlliumError('ERR_CONFIG', 'need vote delay > 0, distribution delay > 0 and their sum ≤ half the voting interval');
  }
  return t;
}

/** The moments of the round whose consensus is valid after `validAfter`. */
export function roundTimes(t: Timetable, validAfter: number): RoundTimes {
  return {
    validAfter,
    freshUntil: validAfter + t.intervalMs,
    validUntil: validAfter + t.lifetimeMs,
    voteAt: validAfter - t.distDelayMs - t.voteDelayMs,
    fetchVotesAt: validAfter - t.distDelayMs - Math.floor(t.voteDelayMs / 2),
    computeAt: validAfter - t.distDelayMs,
    fetchSignaturesAt: validAfter - Math.floor(t.distDelayMs / 2),
    publishAt: validAfter,
  };
}

/** The round to take part in next: the first one whose votes are still being accepted at `now`. */
export function nextRound(t: Timetable, now: number): number {
  let va = Math.ceil(now / t.intervalMs) * t.intervalMs;
  while (roundTimes(t, va).fetchVotesAt <= now) va += t.intervalMs;
  return va;
}

/**
 * Whether a vote for round `validAfter` is accepted at `now`: the round is
 * on the timetable, and `now` is between one interval before its vote time
 * and its fetch time (§9.5: late votes are refused, so that authorities agree
 * on the set of votes).
 */
export function acceptsVotes(t: Timetable, validAfter: number, now: number): boolean {
  if (validAfter % t.intervalMs !== 0) return false;
  const r = roundTimes(t, validAfter);
  return now >= r.voteAt - t.intervalMs && now < r.fetchVotesAt;
}
