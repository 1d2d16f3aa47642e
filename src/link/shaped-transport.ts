/**
 * A link that behaves like a wide-area one (docs/testnet.md "Latency and
 * bandwidth"): `shapeDuplex` puts a DelayLine (./delay-line.ts) on each
 * direction of a byte stream, and `ShapedTransport` does so for every link a
 * node dials, so a testnet's links get a one-way delay and a line rate in each
 * direction without `netem`. Backpressure runs through: a full line stops the
 * writer (write() returns false) or pauses the reading of the socket, and a
 * reader that does not read holds the line.
 */
import { Duplex } from 'node:stream';
import { DelayLine, REAL_TIMERS, checkShape, type LineTimers, type LinkShape } from './delay-line.js';
import type { PeerAddress, Transport, TransportConnectOptions } from './transport.js';

/**
 * `inner` seen through a link of `shape`: what is written to the result
 * reaches `inner` one delay later, what `inner` yields is readable one delay
 * later. Ending, errors and destruction pass through (an end arrives after
 * the bytes before it). Throws RangeError for an invalid shape.
 */
export function shapeDuplex(inner: Duplex, shape: LinkShape, timers: LineTimers = REAL_TIMERS): Duplex {
  checkShape(shape);
  let innerEnded = false;
  let innerDraining = false;

  const outbound = new DelayLine(
    shape,
    (chunk) => {
      if (inner.destroyed) return true;
      if (inner.write(chunk)) return true;
      if (!innerDraining) {
        innerDraining = true;
        inner.once('drain', () => {
          innerDraining = false;
          outbound.resume();
        });
      }
      return false;
    },
    timers,
  );
  const inbound = new DelayLine(shape, (chunk) => outer.push(chunk), timers);

  const outer = new Duplex({
    // Our own buffers stay small: the lines are the queues.
    readableHighWaterMark: 64 * 1024,
    writableHighWaterMark: 16 * 1024,
    read() {
      inbound.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      // A full line holds the write (Node sends no other until this one is done).
      if (outbound.push(chunk)) callback();
      else outbound.onRoom(() => callback());
    },
    final(callback) {
      outbound.onEmpty(() => {
        if (!inner.destroyed) inner.end();
        callback();
      });
    },
    destroy(error, callback) {
      outbound.close();
      inbound.close();
      inner.destroy();
      callback(error);
    },
  });

  inner.on('data', (chunk: Buffer) => {
    if (!inbound.push(chunk)) {
      inner.pause();
      inbound.onRoom(() => inner.resume());
    }
  });
  // The end comes out after the bytes before it; a close without an end (the
  // inner stream went away while paused, say) counts as one, an error does not.
  const endAfterBytes = () => {
    if (innerEnded) return;
    innerEnded = true;
    inbound.onEmpty(() => {
      if (!outer.destroyed) outer.push(null);
    });
  };
  inner.on('end', endAfterBytes);
  inner.on('error', (error) => outer.destroy(error));
  inner.on('close', () => {
    if (inner.errored === null) endAfterBytes();
  });
  return outer;
}

/** Dials through `inner` and shapes every connection it makes with `shape`. */
export class ShapedTransport implements Transport {
  readonly #inner: Transport;
  readonly #shape: LinkShape;

  /** Throws RangeError for an invalid shape. */
  constructor(inner: Transport, shape: LinkShape) {
    checkShape(shape);
    this.#inner = inner;
    this.#shape = shape;
  }

  async connect(peer: PeerAddress, opts: TransportConnectOptions = {}): Promise<Duplex> {
    const socket = await this.#inner.connect(peer, opts);
    const shaped = shapeDuplex(socket, this.#shape);
    shaped.on('error', () => {});
    opts.signal?.addEventListener('abort', () => shaped.destroy(), { once: true });
    return shaped;
  }
}
