/**
 * A token bucket for a relay's bandwidth (torrc BandwidthRate /
 * BandwidthBurst): `rate` bytes per second flow in, at most `burst` are kept.
 * Takes may drive the level below zero (a read already happened); the
 * reader then waits `msUntilPositive()`. Pure: the clock is injected.
 */
import { AlliumError } from '../../src/errors.js';

export class TokenBucket {
  #rate: number;
  #burst: number;
  #level: number;
  #at: number;
  /** How many times a take emptied the bucket (Tor: the global rate limit was reached). */
  #emptied = 0;
  /** Bytes taken so far. */
  #taken = 0;

  /** `rate` bytes/s and `burst` bytes (burst ≥ rate > 0). Throws AlliumError ERR_CONFIG otherwise. */
  constructor(rate: number, burst: number, private readonly now: () => number = () => performance.now()) {
    TokenBucket.check(rate, burst);
    this.#rate = rate;
    this.#burst = burst;
    this.#level = burst;
    this.#at = now();
  }

  static check(rate: number, burst: number): void {
    if (!(rate > 0) || !(burst >= rate) || !Number.isFinite(burst)) throw new AlliumError('ERR_CONFIG', `bandwidth: need rate > 0 and burst ≥ rate (rate ${rate}, burst ${burst})`);
  }

  #refill(): void {
    const t = this.now();
    this.#level = Math.min(this.#burst, this.#level + ((t - this.#at) / 1000) * this.#rate);
    this.#at = t;
  }

  /** Take `bytes` (already read). Returns true while the level stays positive. */
  take(bytes: number): boolean {
    this.#refill();
    const wasPositive = this.#level > 0;
    this.#level -= bytes;
    this.#taken += bytes;
    if (this.#level <= 0 && wasPositive) this.#emptied++;
    return this.#level > 0;
  }

  /** ms until the level is positive again (0 when it is). */
  msUntilPositive(): number {
    this.#refill();
    return this.#level > 0 ? 0 : Math.ceil(((-this.#level + 1) / this.#rate) * 1000);
  }

  /** Change rate and burst (SIGHUP); the level is clamped to the new burst. Throws like the constructor. */
  configure(rate: number, burst: number): void {
    TokenBucket.check(rate, burst);
    this.#refill();
    this.#rate = rate;
    this.#burst = burst;
    this.#level = Math.min(this.#level, burst);
  }

  get rate(): number {
    return this.#rate;
  }

  get burst(): number {
    return this.#burst;
  }

  get emptied(): number {
    return this.#emptied;
  }

  /** Bytes taken since the bucket was made. */
  get taken(): number {
    return this.#taken;
  }
}
