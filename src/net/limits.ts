/**
 * Admission limits by key (usually a peer's IP address), shared by the
 * relay's DoS defences (relay/dos.ts) and the authority's HTTP server:
 *
 * - TokenBucket: `rate` tokens per second, at most `burst` saved up; each
 *   admitted event takes one. Time is injected (ms), so tests are exact.
 * - RateLimiter: one bucket per key. The table is bounded: past `maxKeys`
 *   the least recently used key is forgotten (its next event starts with a
 *   full bucket; an attacker needs that many addresses to profit from it).
 * - ConcurrencyLimiter: how many things (connections) each key holds open
 *   right now, refusing past `max`. Keys with a count of zero are deleted, so
 *   the table holds only keys with something open.
 *
 * Pure bookkeeping: no timers, no I/O.
 */
import { AlliumError } from '../errors.js';

export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  /** `rate` tokens/s (> 0), `burst` tokens at most (≥ 1); starts full at time `now` (ms). */
  constructor(rate: number, burst: number, now: number) {
    if (!(rate > 0) || !(burst >= 1)) throw new AlliumError('ERR_CONFIG', `token bucket: rate ${rate}/s and burst ${burst} must be positive`);
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Tokens available at `now` (ms), after refilling. */
  tokens(now: number): number {
    this.#refill(now);
    return this.#tokens;
  }

  /** Take one token at `now` if there is one: true if admitted. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
      this.#at = now;
    }
  }
}

export interface RateLimiterOptions {
  /** Events per second per key. */
  rate: number;
  /** Events a key may save up. */
  burst: number;
  /** Keys remembered at most (least recently used forgotten first). Default 65536. */
  maxKeys?: number;
  /** Clock, ms. Default Date.now. */
  now?: () => number;
}

export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(opts: RateLimiterOptions) {
    this.#rate = opts.rate;
    this.#burst = opts.burst;
    this.#maxKeys = opts.maxKeys ?? 65536;
    this.#now = opts.now ?? Date.now;
    // Validate once, up front.
    new TokenBucket(this.#rate, this.#burst, 0);
  }

  /** Keys tracked now (≤ maxKeys). */
  get size(): number {
    return this.#buckets.size;
  }

  /** One event for `key`: true if admitted (a token was taken). */
  take(key: string): boolean {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#rate, this.#burst, now);
      if (this.#buckets.size >= this.#maxKeys) this.#buckets.delete(this.#buckets.keys().next().value as string);
    } else {
      // Re-insert: Map order is the LRU order.
      this.#buckets.delete(key);
    }
    this.#buckets.set(key, bucket);
    return bucket.take(now);
  }
}

export class ConcurrencyLimiter {
  readonly max: number;
  readonly #counts = new Map<string, number>();

  /** At most `max` open at once per key (0: no limit). */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 0) throw new AlliumError('ERR_CONFIG', `concurrency limit ${max} must be a whole number ≥ 0`);
    this.max = max;
  }

  /** Keys with something open. */
  get size(): number {
    return this.#counts.size;
  }

  /** Open now for `key`. */
  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** Open one more for `key` if under the limit: true if admitted (then call `release` exactly once). */
  acquire(key: string): boolean {
    const n = this.#counts.get(key) ?? 0;
    if (this.max > 0 && n >= this.max) return false;
    this.#counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = this.#counts.get(key) ?? 0;
    if (n <= 1) this.#counts.delete(key);
    else this.#counts.set(key, n - 1);
  }
}
