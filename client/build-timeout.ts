/**
 * Circuit build timeout learned from observed build times
 * (docs/protocol.md §11.3), after Tor's path-spec §2.4: the build times of
 * three-hop circuits are fitted with a Pareto distribution whose Xm is the
 * weighted mean of the most frequent 10 ms bins, alpha its maximum
 * likelihood estimate (builds that timed out count as right-censored at the
 * timeout), and the timeout is the `quantile` point of that distribution,
 * clamped to [minMs, maxMs] and to the slowest build seen. Until `minSamples`
 * builds have completed the timeout is `initialMs` (a cap, not a guess).
 * When nearly all recent builds time out, the network changed: the history
 * is dropped and the timeout goes back to `initialMs`.
 *
 * Pure state machine: the caller reports outcomes and reads `timeoutMs`.
 */

export interface BuildTimeoutOptions {
  /** Timeout before enough builds were seen, ms. Default 10 000. */
  initialMs?: number;
  /** Never below this, ms. Default 1000. */
  minMs?: number;
  /** Never above this, ms. Default 60 000. */
  maxMs?: number;
  /** Completed builds needed before learning. Default 20. */
  minSamples?: number;
  /** Builds remembered (most recent). Default 1000. */
  maxSamples?: number;
  /** Point of the fitted distribution used as the timeout. Default 0.8. */
  quantile?: number;
  /** Bins averaged for Xm. Default 10. */
  modes?: number;
  /** Outcomes watched for a network change. Default 20. */
  recentCount?: number;
  /** Timeouts among them that mean the network changed. Default 18. */
  recentTimeouts?: number;
}

const BIN_MS = 10;

/** Learns a circuit build timeout; see the module comment. */
export class BuildTimeoutEstimator {
  readonly #o: Required<BuildTimeoutOptions>;
  /** Completed build times, ms, oldest first. */
  #times: number[] = [];
  /** Timeouts among the remembered builds: the timeout in force when each happened, ms. */
  #censored: number[] = [];
  /** Recent outcomes, true = timed out. */
  #recent: boolean[] = [];
  #timeoutMs: number;

  constructor(opts: BuildTimeoutOptions = {}) {
    this.#o = {
      initialMs: opts.initialMs ?? 10_000,
      minMs: opts.minMs ?? 1_000,
      maxMs: opts.maxMs ?? 60_000,
      minSamples: opts.minSamples ?? 20,
      maxSamples: opts.maxSamples ?? 1000,
      quantile: opts.quantile ?? 0.8,
      modes: opts.modes ?? 10,
      recentCount: opts.recentCount ?? 20,
      recentTimeouts: opts.recentTimeouts ?? 18,
    };
    if (!(this.#o.quantile > 0 && this.#o.quantile < 1)) throw new RangeError('quantile must be in (0, 1)');
    this.#timeoutMs = this.#o.initialMs;
  }

  /** The build timeout in force, ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Whether enough builds were seen to learn (else timeoutMs is the initial cap). */
  get learned(): boolean {
    return this.#times.length >= this.#o.minSamples;
  }

  /** Completed build times remembered, ms, oldest first (a copy). */
  samples(): number[] {
    return [...this.#times];
  }

  /** A three-hop build completed in `ms`. */
  recordBuild(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.#times.push(ms);
    if (this.#times.length > this.#o.maxSamples) this.#times.shift();
    this.#noteRecent(false);
    this.#update();
  }

  /** A build was abandoned at the timeout in force. */
  recordTimeout(): void {
    this.#censored.push(this.#timeoutMs);
    if (this.#censored.length > this.#o.maxSamples) this.#censored.shift();
    if (this.#noteRecent(true)) return;
    this.#update();
  }

  /** Load remembered build times (e.g. from the state file), oldest first. */
  load(times: readonly number[]): void {
    this.#times = times.filter((t) => Number.isFinite(t) && t >= 0).slice(-this.#o.maxSamples);
    this.#censored = [];
    this.#recent = [];
    this.#update();
  }

  /** Returns true when the history was reset. */
  #noteRecent(timedOut: boolean): boolean {
    this.#recent.push(timedOut);
    if (this.#recent.length > this.#o.recentCount) this.#recent.shift();
    const timeouts = this.#recent.filter(Boolean).length;
    if (this.#recent.length >= this.#o.recentCount && timeouts >= this.#o.recentTimeouts) {
      // The network changed (or went away): start learning again from the cap,
      // or double the timeout if it already was at least the cap.
      const next = this.#timeoutMs >= this.#o.initialMs ? Math.min(this.#o.maxMs, this.#timeoutMs * 2) : this.#o.initialMs;
      this.#times = [];
      this.#censored = [];
      this.#recent = [];
      this.#timeoutMs = next;
      return true;
    }
    return false;
  }

  #update(): void {
    // Until enough builds completed, the timeout stays the cap (or what a network change made it).
    if (this.#times.length < this.#o.minSamples) return;
    const estimate = paretoTimeout(this.#times, this.#censored, this.#o.modes, this.#o.quantile);
    const slowest = Math.max(...this.#times);
    const value = Math.min(estimate, Math.max(slowest, this.#o.minMs));
    this.#timeoutMs = Math.round(Math.max(this.#o.minMs, Math.min(this.#o.maxMs, value)));
  }
}

/** Xm: the count-weighted mean of the midpoints of the `modes` most frequent 10 ms bins (ties: shorter bins first). */
export function paretoXm(times: readonly number[], modes: number): number {
  const bins = new Map<number, number>();
  for (const t of times) {
    const bin = Math.floor(t / BIN_MS);
    bins.set(bin, (bins.get(bin) ?? 0) + 1);
  }
  const top = [...bins.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, modes);
  let weighted = 0;
  let count = 0;
  for (const [bin, n] of top) {
    weighted += (bin * BIN_MS + BIN_MS / 2) * n;
    count += n;
  }
  return count === 0 ? BIN_MS / 2 : weighted / count;
}

/**
 * The `quantile` point (ms) of the Pareto distribution fitted to `times`
 * (completed) and `censored` (timed out at the given values): Xm from
 * paretoXm, alpha = n / (Σ ln max(Xm, x) over completed and censored − (n + c) ln Xm).
 */
export function paretoTimeout(times: readonly number[], censored: readonly number[], modes: number, quantile: number): number {
  const xm = paretoXm(times, modes);
  const n = times.length;
  let sum = 0;
  for (const t of times) sum += Math.log(Math.max(xm, t));
  for (const c of censored) sum += Math.log(Math.max(xm, c));
  const denominator = sum - (n + censored.length) * Math.log(xm);
  if (!(denominator > 0)) return xm; // every build at (or below) Xm: the fit collapses to Xm
  const alpha = n / denominator;
  return xm / Math.pow(1 - quantile, 1 / alpha);
}
