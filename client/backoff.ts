/**
 * Retry delays with decorrelated jitter, the schedule Tor uses for directory
 * fetches and (proposal 336) for guard retries: each delay is drawn between
 * the base and three times the previous delay, capped. Pure: the random
 * source is a parameter.
 */
import type { RandomSource } from './path-selection.js';

export interface BackoffSchedule {
  /** The smallest delay, ms (> 0). */
  baseMs: number;
  /** The largest delay, ms (≥ baseMs). */
  capMs: number;
}

/**
 * The delay after `previousMs` (0 for the first failure): uniform in
 * [base, max(base + 1, 3 × previous)), capped at `capMs`.
 */
export function nextDelay(schedule: BackoffSchedule, previousMs: number, random: RandomSource): number {
  const lower = Math.max(1, schedule.baseMs);
  const upper = Math.max(lower + 1, previousMs * 3);
  return Math.min(schedule.capMs, Math.floor(lower + random() * (upper - lower)));
}
