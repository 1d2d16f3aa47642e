/**
 * Sharing one BandwidthRate among a relay's worker processes
 * (relay/relay-workers.ts). Each worker reads through its own token bucket;
 * every REBALANCE_MS the main process gives each worker a share of the
 * relay's rate from what the workers did in the last interval, max-min fair
 * (water-filling): a worker whose bucket ran empty wants more than it had, a
 * worker that did not gets what it used plus headroom, at least a small
 * floor; whatever is left goes to the workers that want more, equally, or,
 * when none does, to every worker equally. The shares always add up to the
 * relay's rate, so together the workers never read faster than it, and one
 * busy worker gets nearly all of it (a single download is not capped at
 * rate / workers). Pure: the caller measures and applies.
 */

/** How often the main process recomputes the shares, ms. */
export const REBALANCE_MS = 250;
/** An idle worker keeps at least this fraction of an equal share (bytes/s), so its bucket is never empty for long. */
export const FLOOR_FRACTION = 0.02;
/** A worker that did not run out gets this much more than it used. */
export const HEADROOM = 1.25;

/** What one worker did since the last rebalance. */
export interface WorkerUse {
  /** Bytes it took from its bucket. */
  bytes: number;
  /** Whether its bucket ran empty (it would have read more). */
  limited: boolean;
}

/** One worker's bucket: rate in bytes/s, burst in bytes. */
export interface RateShare {
  rate: number;
  burst: number;
}

/**
 * Each worker's rate and burst for the next interval. `rate` and `burst` are
 * the relay's (bytes/s, bytes; burst ≥ rate > 0), `uses` one entry per
 * worker, `intervalMs` the time they cover. The rates add up to `rate`; each
 * burst is the relay's burst scaled like the rate (so burst ≥ rate for each).
 */
export function shareRate(rate: number, burst: number, uses: readonly WorkerUse[], intervalMs: number): RateShare[] {
  const n = uses.length;
  if (n === 0) return [];
  const floor = (rate / n) * FLOOR_FRACTION;
  const need = uses.map((u) => (u.limited ? Infinity : Math.max(floor, ((u.bytes * 1000) / Math.max(1, intervalMs)) * HEADROOM)));
  const rates = new Array<number>(n).fill(0);
  // Water-filling: the smallest needs first, each at most an equal part of what is left.
  const order = need.map((_, i) => i).sort((a, b) => need[a]! - need[b]!);
  let left = rate;
  order.forEach((i, k) => {
    const give = Math.min(need[i]!, left / (n - k));
    rates[i] = give;
    left -= give;
  });
  // Nobody wanted more than it got: spread the rest equally, so the shares add up to the rate.
  if (left > 0) for (let i = 0; i < n; i++) rates[i]! += left / n;
  return rates.map((r) => ({ rate: r, burst: (burst * r) / rate }));
}
