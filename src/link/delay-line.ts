/**
 * One direction of an emulated wide-area link, in user space (this kernel has
 * no `netem`): bytes go in, and come out after a fixed one-way delay, no
 * faster than a line rate, in order. docs/testnet.md "Latency and bandwidth"
 * says how accurate it is.
 *
 * The model is a link of rate R and propagation delay D with a FIFO in front:
 * a chunk of n bytes pushed at time t finishes transmitting at
 *   tx = max(t, tx of the previous chunk) + n / R
 * and is delivered at tx + D (+ jitter, never earlier than the previous
 * chunk, so bytes are never reordered). With a rate, a chunk larger than
 * SEGMENT_BYTES is cut into segments of that size, each with its own tx, as
 * a link sends packets: the first bytes of a 64 KiB socket read are not held
 * back for the whole 64 KiB's transmission time (5 ms at 100 Mbit/s, which
 * would otherwise be added at every hop). One timer, for the oldest chunk,
 * does the releasing; every chunk due by then goes out together.
 *
 * Bounded: once more than `queueBytes` are inside (waiting for the line or in
 * flight), `push` returns false and the writer should stop until `onRoom`.
 * The receiver can refuse delivery (returns false); the line then holds
 * everything until `resume()`.
 */

export interface LinkShape {
  /** One-way delay added to every byte, ms (≥ 0). */
  delayMs: number;
  /** Uniform jitter on the delay, ± ms (≥ 0); never reorders. Default 0. */
  jitterMs?: number;
  /** Line rate in bits per second; null or absent = unlimited. */
  rateBps?: number | null;
  /** Bytes the line holds before push() says stop. Default: twice the bandwidth-delay product, at least 256 KiB (4 MiB when unlimited). */
  queueBytes?: number;
}

/** The timing a DelayLine needs: a clock in ms and a way to run a callback later. Injected in tests. */
export interface LineTimers {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const REAL_TIMERS: LineTimers = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** A chunk is released once it is due within this much (ms): timers fire in whole milliseconds. */
export const RELEASE_SLACK_MS = 0.5;

/**
 * With a rate, chunks go on the line in segments of at most this many bytes,
 * each due once it has been transmitted (bytes).
 */
export const SEGMENT_BYTES = 4096;

/** Default bound when the rate is unlimited. */
const UNLIMITED_QUEUE_BYTES = 4 * 1024 * 1024;
const MIN_QUEUE_BYTES = 256 * 1024;

/** The queue bound for `shape` (see LinkShape.queueBytes). */
export function queueBound(shape: LinkShape): number {
  if (shape.queueBytes !== undefined) return shape.queueBytes;
  if (shape.rateBps === null || shape.rateBps === undefined) return UNLIMITED_QUEUE_BYTES;
  const bdp = (shape.rateBps / 8) * ((shape.delayMs + (shape.jitterMs ?? 0)) / 1000);
  return Math.max(MIN_QUEUE_BYTES, Math.ceil(2 * bdp));
}

/** Throws RangeError unless `shape` is a valid link shape. */
export function checkShape(shape: LinkShape): void {
  const finite = (v: number) => Number.isFinite(v) && v >= 0;
  if (!finite(shape.delayMs)) throw new RangeError(`delay ${shape.delayMs} ms: expected a finite number ≥ 0`);
  if (shape.jitterMs !== undefined && !finite(shape.jitterMs)) throw new RangeError(`jitter ${shape.jitterMs} ms: expected a finite number ≥ 0`);
  if (shape.rateBps !== undefined && shape.rateBps !== null && !(Number.isFinite(shape.rateBps) && shape.rateBps > 0)) {
    throw new RangeError(`rate ${shape.rateBps} bit/s: expected a positive number`);
  }
  if (shape.queueBytes !== undefined && !(Number.isInteger(shape.queueBytes) && shape.queueBytes > 0)) {
    throw new RangeError(`queue ${shape.queueBytes} bytes: expected a positive integer`);
  }
}

interface Slot {
  chunk: Uint8Array;
  releaseAt: number;
}

export class DelayLine {
  readonly #shape: LinkShape;
  readonly #bound: number;
  readonly #deliver: (chunk: Uint8Array) => boolean;
  readonly #timers: LineTimers;
  readonly #random: () => number;
  readonly #queue: Slot[] = [];
  #head = 0;
  #queued = 0;
  /** When the line finishes transmitting what it has, ms. */
  #txEnd = 0;
  #lastRelease = 0;
  #timer: unknown = null;
  #timerAt = Infinity;
  #held = false;
  #closed = false;
  #roomWaiters: Array<() => void> = [];
  #emptyWaiters: Array<() => void> = [];

  /**
   * `deliver(chunk)` receives the bytes in order when they are due; it
   * returns false to stop further deliveries until `resume()`. Throws
   * RangeError for an invalid shape.
   */
  constructor(shape: LinkShape, deliver: (chunk: Uint8Array) => boolean, timers: LineTimers = REAL_TIMERS, random: () => number = Math.random) {
    checkShape(shape);
    this.#shape = shape;
    this.#bound = queueBound(shape);
    this.#deliver = deliver;
    this.#timers = timers;
    this.#random = random;
  }

  /** Bytes inside the line: waiting to be transmitted, in flight, or held. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** True once the line holds more than its bound. */
  get full(): boolean {
    return this.#queued > this.#bound;
  }

  /** Put `chunk` on the line (it must not be reused by the caller). Returns false once the line is full. */
  push(chunk: Uint8Array): boolean {
    if (this.#closed) return false;
    if (chunk.length === 0) return !this.full;
    const now = this.#timers.now();
    const jitter = this.#shape.jitterMs ?? 0;
    const delay = jitter === 0 ? this.#shape.delayMs : Math.max(0, this.#shape.delayMs + (this.#random() * 2 - 1) * jitter);
    const rate = this.#shape.rateBps;
    if (rate === null || rate === undefined || chunk.length <= SEGMENT_BYTES) {
      this.#enqueue(chunk, now, delay);
    } else {
      // Segment by segment, as a link sends packets: the first bytes of a
      // large write do not wait for the whole write to be transmitted.
      for (let at = 0; at < chunk.length; at += SEGMENT_BYTES) this.#enqueue(chunk.subarray(at, at + SEGMENT_BYTES), now, delay);
    }
    return !this.full;
  }

  /** One segment pushed at `now`: it finishes transmitting after what is ahead of it, and is due `delay` ms later. */
  #enqueue(chunk: Uint8Array, now: number, delay: number): void {
    const rate = this.#shape.rateBps;
    const txMs = rate === null || rate === undefined ? 0 : (chunk.length * 8 * 1000) / rate;
    this.#txEnd = Math.max(now, this.#txEnd) + txMs;
    const releaseAt = Math.max(this.#txEnd + delay, this.#lastRelease);
    this.#lastRelease = releaseAt;
    this.#queued += chunk.length;
    if (this.#head >= this.#queue.length && !this.#held && releaseAt <= now + RELEASE_SLACK_MS) {
      // Nothing ahead of it and already due (no delay, no rate): straight through.
      this.#queued -= chunk.length;
      if (!this.#deliver(chunk)) this.#held = true;
      return;
    }
    this.#queue.push({ chunk, releaseAt });
    this.#schedule();
  }

  /** Call `fn` once the line has room again (at once, in a microtask, if it has now). */
  onRoom(fn: () => void): void {
    if (!this.full || this.#closed) queueMicrotask(fn);
    else this.#roomWaiters.push(fn);
  }

  /** Call `fn` once everything pushed so far has been delivered. */
  onEmpty(fn: () => void): void {
    if (this.#queued === 0 || this.#closed) queueMicrotask(fn);
    else this.#emptyWaiters.push(fn);
  }

  /** The receiver is ready again after refusing a delivery. */
  resume(): void {
    if (!this.#held) return;
    this.#held = false;
    this.#release();
  }

  /** Drop everything and stop; nothing is delivered after this. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#timers.clearTimer(this.#timer);
    this.#timer = null;
    this.#queue.length = 0;
    this.#head = 0;
    this.#queued = 0;
    this.#wake();
  }

  #schedule(): void {
    if (this.#held || this.#closed || this.#head >= this.#queue.length) return;
    const due = this.#queue[this.#head]!.releaseAt;
    if (this.#timer !== null && this.#timerAt <= due) return;
    if (this.#timer !== null) this.#timers.clearTimer(this.#timer);
    this.#timerAt = due;
    this.#timer = this.#timers.setTimer(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.#release();
      // Timers fire in whole milliseconds, never early: ask for the whole ms below, the slack covers the rest.
    }, Math.max(0, Math.floor(due - this.#timers.now())));
  }

  #release(): void {
    const now = this.#timers.now();
    while (!this.#held && !this.#closed && this.#head < this.#queue.length) {
      const slot = this.#queue[this.#head]!;
      if (slot.releaseAt > now + RELEASE_SLACK_MS) break;
      this.#head++;
      this.#queued -= slot.chunk.length;
      if (!this.#deliver(slot.chunk)) this.#held = true;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    this.#wake();
    this.#schedule();
  }

  #wake(): void {
    if (!this.full && this.#roomWaiters.length > 0) {
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const fn of waiters) fn();
    }
    if (this.#queued === 0 && this.#emptyWaiters.length > 0) {
      const waiters = this.#emptyWaiters;
      this.#emptyWaiters = [];
      for (const fn of waiters) fn();
    }
  }
}
