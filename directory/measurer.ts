/**
 * The authority's bandwidth measurements (docs/protocol.md §9.4): every
 * round (a tenth of a minute) it measures the Running relays measured
 * longest ago (never-measured ones first) that are due — not measured within
 * the measurement interval — as many as the byte budget allows, two at a
 * time, and records each result in the relay history. The vote then carries
 * the lower median of a relay's recent measurements as `Measured`.
 */
import { debuglog } from 'node:util';
import { BANDWIDTH_TEST_BYTES } from '../src/dirclient/bandwidth-test.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import type { Registry } from './registry.js';
import type { RelayHistory } from './relay-history.js';

const log = debuglog('allium:directory');

/** How often the measurer looks for due relays, ms. */
export const MEASURE_ROUND_MS = 6_000;
/** Default: each relay is measured again after this long, ms. */
export const DEFAULT_MEASURE_INTERVAL_MS = 3600_000;
/** Default budget: bytes pulled per minute over all relays (64 measurements). */
export const DEFAULT_MEASURE_BUDGET_BYTES_PER_MINUTE = 64 * BANDWIDTH_TEST_BYTES;
/** Measurements under way at once. */
export const MEASURE_CONCURRENCY = 2;

export interface MeasurerOptions {
  registry: Registry;
  history: RelayHistory;
  now: () => number;
  /** One measurement: bytes per second, or undefined if it failed. */
  measure: (d: RelayDescriptor) => Promise<number | undefined>;
  /** A relay is due again this long after its last measurement; default 1 h. */
  intervalMs?: number;
  /** Bytes pulled per minute at most; default 64 measurements' worth (16 MiB). */
  budgetBytesPerMinute?: number;
}

export class Measurer {
  readonly #opts: MeasurerOptions;
  readonly #intervalMs: number;
  readonly #perRound: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(opts: MeasurerOptions) {
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_MEASURE_INTERVAL_MS;
    const budget = opts.budgetBytesPerMinute ?? DEFAULT_MEASURE_BUDGET_BYTES_PER_MINUTE;
    this.#perRound = Math.max(1, Math.floor((budget * MEASURE_ROUND_MS) / 60_000 / BANDWIDTH_TEST_BYTES));
  }

  /** Measurements per round the budget allows. */
  get perRound(): number {
    return this.#perRound;
  }

  /** Runs a round now and then every MEASURE_ROUND_MS (a round still under way skips a tick). */
  start(): void {
    let busy = false;
    const tick = () => {
      if (busy || this.#stopped) return;
      busy = true;
      this.#running = this.runRound().finally(() => (busy = false));
    };
    tick();
    this.#timer = setInterval(tick, MEASURE_ROUND_MS);
  }

  /** Stops the schedule and waits for the round under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One round: the due Running relays measured longest ago, at most `perRound`, MEASURE_CONCURRENCY at a time. */
  async runRound(): Promise<void> {
    const { registry, history } = this.#opts;
    const now = this.#opts.now();
    const due = registry
      .entries()
      .filter((e) => registry.isRunning(e, now))
      .map((e) => ({ e, last: history.lastMeasuredAt(e.identityHex) }))
      .filter(({ last }) => last === undefined || now - last >= this.#intervalMs)
      .sort((a, b) => (a.last ?? -Infinity) - (b.last ?? -Infinity) || (a.e.identityHex < b.e.identityHex ? -1 : 1))
      .slice(0, this.#perRound)
      .map(({ e }) => e);
    const queue = [...due];
    const worker = async () => {
      for (let e = queue.shift(); e !== undefined && !this.#stopped; e = queue.shift()) {
        const bw = await this.#opts.measure(e.descriptor);
        if (bw === undefined || this.#stopped) continue;
        history.recordBandwidth(e.identityHex, bw, this.#opts.now());
        log('measured %s (%s): %d bytes/s', e.identityHex.slice(0, 16), e.descriptor.nickname, bw);
      }
    };
    await Promise.all(Array.from({ length: Math.min(MEASURE_CONCURRENCY, queue.length) }, worker));
  }
}
