/**
 * Accounting (torrc AccountingMax / AccountingStart / AccountingRule,
 * docs/protocol.md §8.2.1): a byte budget per period. Periods start at
 * multiples of `periodMs` since the Unix epoch (UTC midnight for a day).
 * Bytes are the cell bytes of every link, read and written, counted by `rule`:
 * `max` (the larger direction) or `sum`. `check()` (called every second by
 * the relay, or by tests with an injected clock) says when the relay starts
 * and stops hibernating.
 */
import { AlliumError } from '../../src/errors.js';

export type AccountingRule = 'max' | 'sum';

export interface AccountingSettings {
  maxBytes: number;
  periodMs: number;
  rule: AccountingRule;
}

export interface AccountingState {
  hibernating: boolean;
  /** Bytes counted in this period by the rule. */
  usedBytes: number;
  maxBytes: number;
  /** ms since the epoch when this period ends (and a hibernating relay wakes). */
  periodEnd: number;
}

export class Accounting {
  readonly #settings: AccountingSettings;
  #periodStart: number;
  #base: { read: number; written: number };
  #hibernating = false;

  /** Throws AlliumError ERR_CONFIG for a budget or period that is not positive. */
  constructor(
    settings: AccountingSettings,
    private readonly counters: () => { read: number; written: number },
    private readonly now: () => number = Date.now,
  ) {
    if (!(settings.maxBytes > 0) || !(settings.periodMs > 0)) throw new AlliumError('ERR_CONFIG', 'accounting: max and period must be positive');
    this.#settings = settings;
    this.#periodStart = this.#startOf(now());
    this.#base = counters();
  }

  #startOf(t: number): number {
    return Math.floor(t / this.#settings.periodMs) * this.#settings.periodMs;
  }

  #used(): number {
    const c = this.counters();
    const read = c.read - this.#base.read;
    const written = c.written - this.#base.written;
    return this.#settings.rule === 'sum' ? read + written : Math.max(read, written);
  }

  /** Roll the period if it ended, compare the count with the budget; returns 'hibernate' or 'wake' when the state changes. */
  check(): 'hibernate' | 'wake' | null {
    const start = this.#startOf(this.now());
    if (start !== this.#periodStart) {
      this.#periodStart = start;
      this.#base = this.counters();
      if (this.#hibernating) {
        this.#hibernating = false;
        return 'wake';
      }
    }
    if (!this.#hibernating && this.#used() >= this.#settings.maxBytes) {
      this.#hibernating = true;
      return 'hibernate';
    }
    return null;
  }

  get hibernating(): boolean {
    return this.#hibernating;
  }

  state(): AccountingState {
    return { hibernating: this.#hibernating, usedBytes: this.#used(), maxBytes: this.#settings.maxBytes, periodEnd: this.#periodStart + this.#settings.periodMs };
  }
}
