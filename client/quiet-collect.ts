/**
 * A full garbage collection when the client falls quiet: when the last of
 * its application streams closes and at least `minArrayBufferBytes` of
 * ArrayBuffer memory is still allocated, the client asks V8 for a major
 * collection (src/collect-garbage.ts, asynchronous).
 *
 * Why: the data a stream held long enough (its inbox, the chunks queued on
 * its SOCKS socket) has been promoted to V8's old generation by the time
 * the stream ends, and its buffers live outside the V8 heap, in malloc's,
 * until a major collection sweeps them. V8 starts one for such memory only
 * after it has grown a lot since the last, so after a burst of streams a
 * client kept several MiB of dead buffers resident for as long as it stayed
 * idle. With no stream open, nearly every buffer left is such garbage, and
 * a collection costs 10-20 ms of CPU for a client's heap of about 15 MiB.
 * After 3 downloads of 100 MB and two rounds of 20 parallel 5 MB downloads
 * on 20 circuits, the client held 11 MiB of such buffers without these
 * collections (RSS 84-94 MiB in 4 runs) and 0-1 MiB with them (RSS 77-84
 * MiB in 12 runs). Most of what is left is free memory in the middle of
 * malloc's heap, which glibc gives back only to malloc_trim
 * (docs/operators.md, "Memory").
 *
 * The collection is an ordinary one (src/collect-garbage.ts): a forced gc()
 * here threw away the optimized code of about 20 hot functions at every
 * quiet moment, which then cost 0.1-0.2 CPU s per 100 MB download to
 * compile again.
 *
 * Not when streams stay open (a browser's idle keep-alive connections): the
 * client is not quiet then, and V8's own schedule applies.
 */
import { collectGarbage as requestMajorCollection } from '../src/collect-garbage.js';
import type { RelayStream } from '../src/stream/relay-stream.js';

/** Default: collect only if at least this much ArrayBuffer memory is allocated when the client falls quiet (bytes). */
export const QUIET_COLLECT_MIN_BYTES = 2 * 1024 * 1024;
/** Default: at most one collection per this many ms. */
export const QUIET_COLLECT_MIN_INTERVAL_MS = 1_000;

export interface QuietCollectOptions {
  /** Collect only if at least this many bytes of ArrayBuffer memory are allocated then. Default QUIET_COLLECT_MIN_BYTES. */
  minArrayBufferBytes?: number;
  /** At most one collection per this many ms. Default QUIET_COLLECT_MIN_INTERVAL_MS. */
  minIntervalMs?: number;
  /** Bytes of ArrayBuffer memory allocated now; default process.memoryUsage().arrayBuffers. */
  arrayBufferBytes?: () => number;
  /** How a collection is requested (false: this runtime offers none); default src/collect-garbage.ts. */
  collectGarbage?: () => boolean;
  /** Monotonic clock, ms; default performance.now. */
  now?: () => number;
}

export interface QuietCollectStats {
  /** Collections requested. */
  collections: number;
}

/** Watches the client's open streams; see the module comment. */
export class QuietCollector {
  /** Streams tracked and not yet closed. */
  #open = 0;
  readonly #minBytes: number;
  readonly #minIntervalMs: number;
  readonly #arrayBufferBytes: () => number;
  readonly #collect: () => boolean;
  readonly #now: () => number;
  #last = -Infinity;
  #collections = 0;

  constructor(opts: QuietCollectOptions = {}) {
    this.#minBytes = opts.minArrayBufferBytes ?? QUIET_COLLECT_MIN_BYTES;
    this.#minIntervalMs = opts.minIntervalMs ?? QUIET_COLLECT_MIN_INTERVAL_MS;
    this.#arrayBufferBytes = opts.arrayBufferBytes ?? (() => process.memoryUsage().arrayBuffers);
    this.#collect = opts.collectGarbage ?? requestMajorCollection;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Count `stream` as open until it closes. */
  track(stream: RelayStream): void {
    if (stream.destroyed) return;
    this.#open++;
    stream.once('close', () => {
      if (--this.#open === 0) this.#quiet();
    });
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.#open;
  }

  stats(): QuietCollectStats {
    return { collections: this.#collections };
  }

  #quiet(): void {
    const now = this.#now();
    if (now - this.#last < this.#minIntervalMs) return;
    if (this.#arrayBufferBytes() < this.#minBytes) return;
    if (!this.#collect()) return;
    this.#last = now;
    this.#collections++;
  }
}
