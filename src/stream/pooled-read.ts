/**
 * Reading a socket into one shared buffer (net.Socket's `onread`), for the
 * exit's destination sockets (relay/exit.ts, src/stream/splice.ts).
 *
 * A socket read the ordinary way allocates a fresh 64 KiB chunk per read,
 * and a stream that cannot send it yet keeps it; many stuck streams leave
 * many such chunks for the garbage collector, and with them the memory
 * allocator's pages (the relay's RSS above its memory cap,
 * bench/mem-cap.bench.ts). Here every socket reads into one process-wide
 * buffer of READ_BUFFER_BYTES; each read is turned into DATA cells at once
 * (RelayStream.sendNow, which copies into cells) while flow control has room.
 * Only what it cannot send is copied, once, and written to the stream the
 * ordinary way; the socket is paused until the stream has sent that copy,
 * so a stuck stream holds at most one read (bounded, and counted by the
 * memory caps as the stream's writable buffer) and the system's socket
 * buffer holds the rest (backpressure to the destination, as with pipe()).
 *
 * Each read is sized by what the stream can send (PooledReadSink.sendRoom:
 * its flow-control room, between MIN_READ_BYTES and READ_BUFFER_BYTES), so
 * the read that meets a closing window leaves little or nothing to copy: a
 * stream that stops (its window closed, its link congested) holds at most
 * MIN_READ_BYTES, not a 64 KiB read's rest (the relay's memory cap,
 * bench/mem-cap.bench.ts).
 *
 * The buffer is shared safely: a read callback runs to its end before any
 * other read (one thread), and nothing here keeps a view into the buffer
 * past the callback.
 */
import type { Socket } from 'node:net';
import { RELAY_DATA_LENGTH } from '../constants.js';

/** Bytes one read may take: the size of the shared buffer. */
export const READ_BUFFER_BYTES = 64 * 1024;

/** Bytes a read takes at least, however little the stream can send: one DATA cell's worth (RELAY_DATA_LENGTH). */
export const MIN_READ_BYTES = RELAY_DATA_LENGTH;

let shared: Buffer | null = null;

/** The process-wide read buffer (allocated on first use). */
function sharedBuffer(): Buffer {
  shared ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
  return shared;
}

/** Where a pooled read's bytes go: RelayStream (its sendNow, then write() for the rest). */
export interface PooledReadSink {
  /** Send what can go now (copied before this returns); returns the bytes taken. */
  sendNow(data: Uint8Array): number;
  /** About the bytes sendNow() would take now (Infinity: all); sizes the next read. */
  sendRoom(): number;
  /** The rest, in order; `callback` once it is sent (or dropped). */
  write(chunk: Uint8Array, callback: (error?: Error | null) => void): boolean;
  readonly destroyed: boolean;
}

/**
 * One socket's reader: pass `onread` to net.connect() (the socket then emits
 * no 'data'; 'end' and 'close' as usual), then `attach` the stream once
 * there is one. Bytes read before that are copied and held (at most one
 * read: the socket is paused) and go first.
 */
export class PooledReader {
  #socket: Socket | null = null;
  #sink: PooledReadSink | null = null;
  /** Bytes read before attach(), copied; the socket is paused meanwhile. */
  #early: Buffer | null = null;

  /**
   * The `onread` option of net.connect(): the shared buffer, as much of it
   * as the next read should take (Node asks after each read, for that
   * socket's next one), and this reader's callback.
   */
  readonly onread = {
    buffer: (): Uint8Array => this.#nextBuffer(),
    callback: (bytes: number, buffer: Uint8Array): boolean => this.#onRead(buffer.subarray(0, bytes)),
  };

  /**
   * The shared buffer, cut to what the sink can send now; MIN_READ_BYTES
   * before attach() (Node sizes a socket's first read when it connects, and
   * bytes read before there is a stream are held), the whole buffer once the
   * sink is gone (the splice drains or resets the socket).
   */
  #nextBuffer(): Uint8Array {
    const buffer = sharedBuffer();
    const sink = this.#sink;
    if (sink === null) return buffer.subarray(0, MIN_READ_BYTES);
    if (sink.destroyed) return buffer;
    const room = sink.sendRoom();
    return room >= READ_BUFFER_BYTES ? buffer : buffer.subarray(0, Math.max(MIN_READ_BYTES, room));
  }

  /** Start handing reads of `socket` (the socket made with `onread`) to `sink`. */
  attach(socket: Socket, sink: PooledReadSink): void {
    this.#socket = socket;
    this.#sink = sink;
    const early = this.#early;
    this.#early = null;
    if (early !== null) this.#hold(early);
    // Flowing mode (no 'data' is emitted with onread): the socket's EOF then emits 'end' as it would in a pipe().
    else socket.resume();
  }

  #onRead(data: Uint8Array): boolean {
    const sink = this.#sink;
    if (sink === null) {
      // Not attached yet: keep a copy and stop reading until attach().
      this.#early = this.#early === null ? Buffer.from(data) : Buffer.concat([this.#early, data]);
      return false;
    }
    if (sink.destroyed) return true; // nowhere to go: the splice resets or drains the socket
    const taken = sink.sendNow(data);
    if (taken >= data.length) return true;
    this.#hold(Buffer.from(data.subarray(taken)));
    return false;
  }

  /** Write `rest` (a copy, ours) to the sink and read no more until it has been sent. */
  #hold(rest: Buffer): void {
    const socket = this.#socket!;
    socket.pause();
    this.#sink!.write(rest, () => {
      if (!socket.destroyed) socket.resume();
    });
  }
}
