/**
 * The client's memory cap for queued stream data, the client side of the
 * relay's (relay/mem-cap.ts, docs/protocol.md §3.6): the bytes the client
 * holds for its application streams — each RelayStream's buffers and those
 * of the SOCKS or tunnel socket spliced to it (RelayStream.bufferedBytes) —
 * are accounted; above `capBytes` the client ends the streams whose held
 * bytes are oldest (RelayStream.heldSince: since when they made no
 * progress) with END RESOURCELIMIT, which resets their application sockets,
 * until it is back under `lowWaterBytes`. A stream, not its circuit: the
 * circuit's other streams are someone else's and keep flowing.
 *
 * An application that never reads holds at most a stream window per stream
 * (flow control stops the exit there), so this bounds the many-streams case.
 * The check runs every `checkIntervalMs`, in the event-loop turn after a
 * tracked stream sends XOFF (a step of about cc_xoff_client cells waiting:
 * so a stream filling at memory speed is seen before the next tick; not
 * with checkIntervalMs 0), and whenever `check()` is called; each event is
 * logged once and counted.
 */
import { debuglog } from 'node:util';
import { EndReason } from '../src/cell/reasons.js';
import { StreamEndedError } from '../src/errors.js';
import { XOFF_SENT_EVENT, type RelayStream } from '../src/stream/relay-stream.js';

const log = debuglog('allium:client');

/** The client's default cap, bytes: 64 MiB (a client has far fewer streams than a relay). */
export const DEFAULT_CLIENT_MEMORY_CAP = 64 * 1024 * 1024;

export interface ClientMemoryCapOptions {
  /** Bytes of stream and socket buffers above which streams are ended. Default DEFAULT_CLIENT_MEMORY_CAP. */
  capBytes?: number;
  /** End streams until the total is at most this. Default 3/4 of the cap. */
  lowWaterBytes?: number;
  /** How often the total is checked, ms; 0: only when check() is called. Default 250. */
  checkIntervalMs?: number;
  /** Where each event is reported (one line); default NODE_DEBUG=allium:client. */
  log?: (message: string) => void;
}

export interface ClientMemoryCapStats {
  capBytes: number;
  /** Bytes held at the last check. */
  queuedBytes: number;
  /** Times the cap was exceeded. */
  oomEvents: number;
  /** Streams ended by the cap. */
  streamsFreed: number;
  /** Bytes those streams held. */
  bytesFreed: number;
}

export class ClientMemoryCap {
  readonly capBytes: number;
  readonly lowWaterBytes: number;
  readonly #streams = new Set<RelayStream>();
  readonly #log: (message: string) => void;
  #timer: NodeJS.Timeout | null = null;
  #soon: NodeJS.Immediate | null = null;
  #stats = { queuedBytes: 0, oomEvents: 0, streamsFreed: 0, bytesFreed: 0 };

  constructor(opts: ClientMemoryCapOptions = {}) {
    this.capBytes = opts.capBytes ?? DEFAULT_CLIENT_MEMORY_CAP;
    this.lowWaterBytes = Math.min(this.capBytes, opts.lowWaterBytes ?? Math.floor((this.capBytes * 3) / 4));
    this.#log = opts.log ?? ((message) => log('%s', message));
    const every = opts.checkIntervalMs ?? 250;
    if (every > 0) {
      this.#timer = setInterval(() => this.check(), every);
      this.#timer.unref();
    }
  }

  /** Account `stream` until it closes. It must have an 'error' listener (splice() adds one): the cap ends it with an error. */
  track(stream: RelayStream): void {
    if (stream.destroyed) return;
    this.#streams.add(stream);
    if (this.#timer !== null) stream.on(XOFF_SENT_EVENT, this.#checkSoon);
    stream.once('close', () => {
      this.#streams.delete(stream);
      stream.off(XOFF_SENT_EVENT, this.#checkSoon);
    });
  }

  /** Check in the next turn (once however many streams ask in this one). */
  readonly #checkSoon = (): void => {
    if (this.#timer === null) return;
    this.#soon ??= setImmediate(() => {
      this.#soon = null;
      this.check();
    });
  };

  /** Streams accounted now. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Bytes held now by the tracked streams and their sockets. */
  queuedBytes(): number {
    let total = 0;
    for (const stream of this.#streams) total += stream.bufferedBytes;
    return total;
  }

  /** Check the total now; over the cap, end the streams holding the oldest bytes. Returns the bytes they held. */
  check(): number {
    const total = this.queuedBytes();
    this.#stats.queuedBytes = total;
    if (total <= this.capBytes) return 0;
    this.#stats.oomEvents++;
    const now = performance.now();
    const victims = [...this.#streams]
      .map((stream) => ({ stream, bytes: stream.bufferedBytes, since: stream.heldSince ?? now }))
      // Not yet spliced (no 'error' listener): it holds nothing yet, and ending it would throw.
      .filter((v) => v.bytes > 0 && v.stream.listenerCount('error') > 0)
      .sort((a, b) => a.since - b.since);
    let left = total;
    let freed = 0;
    let streams = 0;
    for (const v of victims) {
      if (left <= this.lowWaterBytes) break;
      this.#streams.delete(v.stream);
      // END RESOURCELIMIT to the exit; splice() resets the application's socket on the error.
      v.stream.destroy(new StreamEndedError(EndReason.RESOURCELIMIT, 'client out of memory for queued stream data'));
      left -= v.bytes;
      freed += v.bytes;
      streams++;
    }
    this.#stats.streamsFreed += streams;
    this.#stats.bytesFreed += freed;
    this.#log(`memory cap: ${total} bytes held by streams, over the cap of ${this.capBytes}; ended ${streams} streams holding the oldest data (${freed} bytes)`);
    return freed;
  }

  stats(): ClientMemoryCapStats {
    return { capBytes: this.capBytes, ...this.#stats };
  }

  /** Stop the periodic check. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#soon !== null) clearImmediate(this.#soon);
    this.#soon = null;
  }
}
