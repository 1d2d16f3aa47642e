/**
 * Reading OR links at no more than a token bucket allows: a Duplex around a
 * socket that passes writes through and forwards reads chunk by chunk,
 * pausing the socket while the shared bucket is empty. The link layer sees an
 * ordinary byte stream (its own pause/resume work as on the socket), so every
 * link of a relay — accepted or dialled — shares one BandwidthRate. The peer
 * then backs up through TCP flow control, as in Tor.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { PeerAddress, Transport, TransportConnectOptions } from '../../src/link/transport.js';
import type { TokenBucket } from './token-bucket.js';

/** Longest a throttled read waits before it looks at the bucket again, ms. */
const MAX_WAIT_MS = 100;

export class ThrottledStream extends Duplex {
  readonly #inner: Duplex;
  readonly #bucket: TokenBucket;
  #wanted = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(inner: Duplex, bucket: TokenBucket) {
    super({ allowHalfOpen: true });
    this.#inner = inner;
    this.#bucket = bucket;
    inner.pause();
    inner.on('data', (chunk: Uint8Array) => {
      const positive = this.#bucket.take(chunk.length);
      const more = this.push(chunk);
      if (!more) this.#wanted = false;
      if (!positive) {
        inner.pause();
        this.#waitForTokens();
      } else if (!more) {
        inner.pause();
      }
    });
    inner.once('end', () => this.push(null));
    inner.on('error', (error) => this.destroy(error));
    inner.once('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  #waitForTokens(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#bucket.msUntilPositive() > 0) return this.#waitForTokens();
      if (this.#wanted && !this.destroyed) this.#inner.resume();
      // Look again at least every MAX_WAIT_MS: the rate may have grown meanwhile (SIGHUP, a worker's share).
    }, Math.min(MAX_WAIT_MS, this.#bucket.msUntilPositive()));
  }

  override _read(): void {
    this.#wanted = true;
    if (this.#timer === undefined && this.#bucket.msUntilPositive() === 0) this.#inner.resume();
    else this.#waitForTokens();
  }

  /** The wrapped socket's peer address, so per-address limits (relay/dos.ts) still see who is connecting. */
  get remoteAddress(): string | undefined {
    return (this.#inner as Partial<Socket>).remoteAddress;
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#inner.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#inner.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#timer);
    this.#inner.destroy(error ?? undefined);
    callback(error);
  }
}

/** A transport whose links are read through `bucket`. */
export class ThrottledTransport implements Transport {
  constructor(
    private readonly inner: Transport,
    private readonly bucket: TokenBucket,
  ) {}

  async connect(peer: PeerAddress, opts?: TransportConnectOptions): Promise<Duplex> {
    return new ThrottledStream(await this.inner.connect(peer, opts), this.bucket);
  }
}
