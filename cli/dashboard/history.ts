/**
 * Bandwidth over the last hour for the dashboard: every SAMPLE_MS the
 * cumulative byte counters are read and the rate since the last sample is
 * kept, at most an hour of samples (a bounded ring). Pure apart from the
 * timer; time and counters are injected.
 */

export const SAMPLE_MS = 5_000;
export const HISTORY_MS = 3_600_000;
const MAX_SAMPLES = HISTORY_MS / SAMPLE_MS;

/** One point: seconds since the epoch, bytes/s read and written over the interval before it. */
export type BandwidthPoint = [t: number, read: number, written: number];

export class BandwidthHistory {
  readonly #points: BandwidthPoint[] = [];
  #last: { at: number; read: number; written: number };
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly counters: () => { read: number; written: number },
    private readonly now: () => number = Date.now,
  ) {
    this.#last = { at: now(), ...counters() };
  }

  /** The rate since the last sample, as a point at `now` (not stored). */
  #pointNow(): BandwidthPoint | undefined {
    const at = this.now();
    const c = this.counters();
    const seconds = (at - this.#last.at) / 1000;
    if (seconds <= 0) return undefined;
    return [at / 1000, Math.max(0, (c.read - this.#last.read) / seconds), Math.max(0, (c.written - this.#last.written) / seconds)];
  }

  /** Take a sample now. */
  sample(): void {
    const point = this.#pointNow();
    if (point === undefined) return;
    // On the whole second, so the samples of every node line up.
    this.#points.push([Math.round(point[0]), point[1], point[2]]);
    if (this.#points.length > MAX_SAMPLES) this.#points.shift();
    this.#last = { at: this.now(), ...this.counters() };
  }

  /** The samples of the last hour, and the partial interval up to now. */
  points(): BandwidthPoint[] {
    const live = this.#pointNow();
    return live === undefined ? [...this.#points] : [...this.#points, live];
  }

  /** Sample every SAMPLE_MS on the wall clock's multiples of it, so every node's points line up. */
  start(): void {
    if (this.#timer !== undefined) return;
    const tick = () => {
      this.sample();
      this.#timer = setTimeout(tick, SAMPLE_MS - (this.now() % SAMPLE_MS)).unref();
    };
    this.#timer = setTimeout(tick, SAMPLE_MS - (this.now() % SAMPLE_MS)).unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
