/**
 * Sender pacing of one congestion-controlled hop (docs/protocol.md §7.5; an
 * Allium addition, Tor does not pace): the DATA cells a congestion window
 * allows go out no faster than `cc_pace_pct` percent of cwnd / RTTmin, with a
 * burst allowance, instead of as one burst whenever SENDMEs arrive together.
 * A burst of a whole window at a bottleneck's line rate queues there and
 * inflates the round trips Vegas reads as congestion (§7.3), so slow start
 * ends long before the window reaches the path's bandwidth-delay product.
 *
 * The pacer is a virtual clock in microseconds: each cell sent moves it on by
 * one interval (RTTmin · 100 / (pct · cwnd)), from no earlier than
 * `now − burstUs`, and a cell may go once the clock plus one interval is not
 * after now. So after a pause up to `burstUs` worth of cells (at least
 * PACE_BURST_MIN_CELLS) go at once, and a timer that fires late loses
 * nothing up to that. Pure arithmetic with the time passed in;
 * the circuit edge owns the one timer that wakes the sender (§7.5).
 */

/** The burst allowance, µs of cells at the pacing rate: covers timer granularity (1 ms) and lateness. */
export const PACE_BURST_US = 4000;

/** The burst allowance is never below this many cells (a TLS record's worth, Tor's sendme_inc). */
export const PACE_BURST_MIN_CELLS = 31;

export class Pacer {
  /** Percent of cwnd / RTTmin to pace at (> 0). */
  readonly pct: number;
  /** The virtual clock, µs: where the last cell sent ends at the pacing rate; -Infinity before the first. */
  #nextSendUs = -Infinity;

  /** `pct`: the pacing rate in percent of cwnd / RTTmin (a positive integer). Throws RangeError otherwise. */
  constructor(pct: number) {
    if (!Number.isInteger(pct) || pct <= 0) throw new RangeError(`pacing percentage ${pct}: expected a positive integer`);
    this.pct = pct;
  }

  /** µs between two cells at window `cwnd` (cells) and minimum RTT `minRttUs`: RTTmin · 100 / (pct · cwnd). */
  intervalUs(cwnd: number, minRttUs: number): number {
    return (minRttUs * 100) / (this.pct * cwnd);
  }

  /** The burst allowance, µs: PACE_BURST_US, or PACE_BURST_MIN_CELLS intervals if longer. */
  burstUs(intervalUs: number): number {
    return Math.max(PACE_BURST_US, PACE_BURST_MIN_CELLS * intervalUs);
  }

  /**
   * µs until one more cell may go at `nowUs` (0: now), at window `cwnd` and
   * minimum RTT `minRttUs` (0 = no sample yet: unpaced, always 0).
   */
  waitUs(nowUs: number, cwnd: number, minRttUs: number): number {
    if (minRttUs <= 0) return 0;
    // The cell may go once its interval ends by now. After a pause the clock
    // restarts from now − burstUs (onSent), so that much goes at once.
    const due = this.#nextSendUs + this.intervalUs(cwnd, minRttUs);
    return due <= nowUs ? 0 : due - nowUs;
  }

  /** One cell went out at `nowUs`: the virtual clock moves on one interval (unpaced while minRttUs is 0). */
  onSent(nowUs: number, cwnd: number, minRttUs: number): void {
    if (minRttUs <= 0) return;
    const interval = this.intervalUs(cwnd, minRttUs);
    this.#nextSendUs = Math.max(this.#nextSendUs, nowUs - this.burstUs(interval)) + interval;
  }
}
