/**
 * Round-trip time of a congestion-controlled circuit hop, from SENDME timing
 * (docs/protocol.md §7.3; Tor proposal 324 §2.1): the time from the DATA cell
 * that asks for a SENDME to that SENDME, smoothed with an N-EWMA, with the
 * minimum kept and reset when the window is stuck at its floor, and samples a
 * stalled or jumping clock would give thrown away. Integer microseconds, the
 * same arithmetic as Tor (so Tor's test vectors apply unchanged).
 */
import type { CongestionParams } from './cc-params.js';

/** A new RTT 5000 times larger or smaller than the average is a clock jump or stall, not the network. */
export const DELTA_DISCREPANCY_RATIO_MAX = 5000;

/**
 * Whether the monotonic clock looks broken, as the last RTT sample judged.
 * Tor keeps one such flag per process (`is_monotime_clock_broken`); so does
 * Allium (`PROCESS_CLOCK`), and tests make their own.
 */
export class ClockHealth {
  broken = false;
}

/** The process-wide clock state. */
export const PROCESS_CLOCK = new ClockHealth();

/** N-EWMA (proposal 324 §2.1.2): (2·curr + (N−1)·prev) / (N+1), integer; `prev` 0 means no history. */
export function nEwma(curr: number, prev: number, n: number): number {
  if (prev === 0) return curr;
  return Math.floor((2 * curr + (n - 1) * prev) / (n + 1));
}

/** A weighted average giving `pctMax` percent to the larger of a and b (0 = min, 100 = max), integer. */
export function percentMaxMix(a: number, b: number, pctMax: number): number {
  const max = Math.max(a, b);
  const min = Math.min(a, b);
  return Math.floor((pctMax * max) / 100) + Math.floor(((100 - pctMax) * min) / 100);
}

/**
 * SENDMEs between two window updates (Tor's CWND_UPDATE_RATE): 1 in slow
 * start (every SENDME); after it, round(cwnd / (cwndIncRate · sendmeInc)),
 * which may be 0.
 */
export function cwndUpdateRate(p: CongestionParams, cwnd: number, inSlowStart: boolean): number {
  if (inSlowStart) return 1;
  const per = p.cwndIncRate * p.sendmeInc;
  return Math.floor((cwnd + Math.floor(per / 2)) / per);
}

/** SENDMEs in one congestion window, rounded (Tor's SENDME_PER_CWND). */
export function sendmesPerCwnd(p: CongestionParams, cwnd: number): number {
  return Math.floor((cwnd + Math.floor(p.sendmeInc / 2)) / p.sendmeInc);
}

/** The state a sample is judged in: whether the hop is in slow start and its current average (0 = none yet). */
export interface RttContext {
  inSlowStart: boolean;
  ewmaUs: number;
}

/**
 * Tor's clock heuristics (proposal 324 §2.1.1): true if `newDelta` (µs)
 * must not be used. A zero delta is a stall (and is remembered in `clock`);
 * in slow start, or without an average, anything else is accepted; after it,
 * a delta 5000× below `oldDelta` is a stall only if one was remembered, and
 * one 5000× above is a jump. A sample that passes clears the remembered stall.
 */
export function stalledOrJumped(clock: ClockHealth, ctx: RttContext, oldDelta: number, newDelta: number): boolean {
  if (newDelta === 0) {
    clock.broken = true;
    return true;
  }
  if (ctx.inSlowStart || ctx.ewmaUs === 0) return false;
  if (oldDelta > newDelta * DELTA_DISCREPANCY_RATIO_MAX) return clock.broken;
  if (newDelta > oldDelta * DELTA_DISCREPANCY_RATIO_MAX) return true;
  clock.broken = false;
  return false;
}

/** The RTT statistics of one hop, µs (0 = no sample yet). */
export class RttEstimator {
  ewmaUs = 0;
  minUs = 0;
  maxUs = 0;
  readonly #p: CongestionParams;
  readonly #clock: ClockHealth;

  constructor(params: CongestionParams, clock: ClockHealth = PROCESS_CLOCK) {
    this.#p = params;
    this.#clock = clock;
  }

  /**
   * Take one sample of `rttUs` µs, with the hop's window `cwnd` (cells) and
   * slow-start state now. Returns the sample, or 0 if the clock heuristics
   * discarded it (nothing is updated then).
   */
  update(rttUs: number, cwnd: number, inSlowStart: boolean): number {
    if (stalledOrJumped(this.#clock, { inSlowStart, ewmaUs: this.ewmaUs }, this.ewmaUs, rttUs)) return 0;
    this.ewmaUs = nEwma(rttUs, this.ewmaUs, this.#ewmaCount(cwnd, inSlowStart));
    if (rttUs > this.maxUs) this.maxUs = rttUs;
    if (this.minUs === 0) {
      this.minUs = this.ewmaUs;
    } else if (cwnd === this.#p.cwndMin && !inSlowStart) {
      // Stuck at the floor: perhaps the minimum was abnormally low. Raise it.
      this.minUs = percentMaxMix(this.ewmaUs, this.minUs, this.#p.rttResetPct);
    } else if (this.ewmaUs < this.minUs) {
      this.minUs = this.ewmaUs;
    }
    return rttUs;
  }

  /** N of the average: cc_ewma_ss in slow start, else a share of the SENDMEs per update, capped; at least 2. */
  #ewmaCount(cwnd: number, inSlowStart: boolean): number {
    const n = inSlowStart
      ? this.#p.ewmaSs
      : Math.min(Math.floor((cwndUpdateRate(this.#p, cwnd, false) * this.#p.ewmaCwndPct) / 100), this.#p.ewmaMax);
    return Math.max(n, 2);
  }
}
