/**
 * A stream's inbox: the DATA bodies received in one turn of the event loop,
 * copied end to end into one buffer, until RelayStream (relay-stream.ts)
 * hands them to its consumer as one chunk. A steady flow costs one buffer per
 * batch: each new buffer is sized by what the last batch held.
 */

/** The smallest inbox buffer, in bytes (one DATA body fits). */
export const INBOX_MIN_BYTES = 512;
/** The largest first guess for an inbox buffer, in bytes (what the last batch held, up to this). */
export const INBOX_MAX_HINT_BYTES = 256 * 1024;

/** DATA received and not yet handed to the consumer, in one growable buffer. */
export class StreamInbox {
  /** The bytes held are #buf[0 .. #bytes); null when empty. */
  #buf: Buffer | null = null;
  #bytes = 0;
  /** Bytes the last batch held: the first size tried for the next buffer. */
  #hint = INBOX_MIN_BYTES;

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Copy `data` in after what is held (so `data` may be a view into a buffer the caller reuses). */
  append(data: Uint8Array): void {
    const at = this.#bytes;
    const buf = this.#buf !== null && at + data.length <= this.#buf.length ? this.#buf : this.#grow(at + data.length);
    buf.set(data, at);
    this.#bytes = at + data.length;
  }

  /**
   * Everything held, as one chunk, and empty the inbox; null when empty. A
   * batch that fills less than half its buffer comes out as a copy, so the
   * consumer does not hold the slack.
   */
  take(): Buffer | null {
    const buf = this.#buf;
    const bytes = this.#bytes;
    if (buf === null || bytes === 0) return null;
    this.#buf = null;
    this.#bytes = 0;
    this.#hint = Math.min(bytes, INBOX_MAX_HINT_BYTES);
    return 2 * bytes < buf.length ? Buffer.from(buf.subarray(0, bytes)) : buf.subarray(0, bytes);
  }

  /** Drop what is held. */
  clear(): void {
    this.#buf = null;
    this.#bytes = 0;
  }

  /**
   * A buffer of at least `need` bytes holding what the current one holds:
   * the last batch's size or the next power of two above `need` (at least
   * INBOX_MIN_BYTES).
   */
  #grow(need: number): Buffer {
    let size = Math.max(this.#hint, INBOX_MIN_BYTES);
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    if (this.#buf !== null && this.#bytes > 0) next.set(this.#buf.subarray(0, this.#bytes), 0);
    this.#buf = next;
    return next;
  }
}
