/**
 * One stream at either end of a circuit hop (a client, an exit, a relay's
 * directory) as a Node Duplex (docs/protocol.md §6.4, §6.5, §7).
 *
 * Writing turns bytes into DATA cells, at most 498 bytes each, only while the
 * stream's flow control and the circuit hop's have room: a full circuit makes
 * write() wait, so pipe()/pipeline() slow the producer. Reading hands DATA to
 * the consumer; what the stream tells the far end about flow goes out only as
 * the consumer reads: stream SENDMEs on fixed windows, so a slow reader stops
 * the far end after one window (500 cells); on a congestion-controlled hop an
 * XOFF once too much waits and an XON when the consumer catches up (§7.4).
 *
 * Tor has no half-closed streams: END, sent or received, closes both ways.
 */
import { Duplex } from 'node:stream';
import { RELAY_DATA_LENGTH } from '../constants.js';
import { FixedWindowStream, type StreamFlowControl, type StreamFlowMsg } from '../flow/flow-control.js';
import { EndReason } from '../cell/reasons.js';
import { StreamEndedError } from '../errors.js';

/** What a stream carries: 'client' at an origin, 'exit' (BEGIN) or 'dir' (BEGIN_DIR) at a relay. */
export type StreamKind = 'client' | 'exit' | 'dir';

/** Counts application bytes as they pass (a manager's stats). */
export interface ByteMeter {
  bytesIn(n: number): void;
  bytesOut(n: number): void;
}

/** What a stream needs from the circuit edge that owns it. */
export interface StreamPort {
  /** True if one more DATA cell may go out now (circuit window open, link not congested). */
  canSendData(): boolean;
  /** Calls `wake` once, when canSendData() may have become true. */
  waitForRoom(wake: () => void): void;
  sendData(streamId: number, data: Uint8Array): void;
  /** Send a stream SENDME, XON or XOFF on stream `streamId`. */
  sendStreamFlowMsg(streamId: number, msg: StreamFlowMsg): void;
  sendEnd(streamId: number, reason: number): void;
  /** The stream is finished both ways; forget its id. */
  release(stream: RelayStream): void;
}

export interface RelayStreamOptions {
  kind?: StreamKind;
  /** Default: Tor's fixed stream windows. */
  flow?: StreamFlowControl;
  meter?: ByteMeter | null;
  /** Readable and writable high-water marks in bytes; default 64 KiB. */
  highWaterMark?: number;
  /** The process-unique event id of the circuit it rides on (src/events.ts); default 0. */
  circuitId?: number;
}

interface PendingWrite {
  chunk: Uint8Array;
  offset: number;
  callback: (error?: Error | null) => void;
}

export class RelayStream extends Duplex {
  readonly streamId: number;
  readonly kind: StreamKind;
  /** The process-unique event id of its circuit (not a wire id), as in stream events; 0 if unknown. */
  readonly circuitId: number;
  readonly #port: StreamPort;
  readonly #flow: StreamFlowControl;
  readonly #meter: ByteMeter | null;
  #bytesIn = 0;
  #bytesOut = 0;
  #endReason: number | null = null;
  #pending: PendingWrite | null = null;
  #waiting = false;
  /** DATA received in this event-loop turn, not yet handed to the consumer. */
  #inbox: Buffer[] = [];
  #inboxBytes = 0;
  #flushQueued = false;
  /** performance.now() when a DATA cell last went out, and when the consumer last asked for more (see heldSince). */
  #lastSentAt = performance.now();
  #lastReadAt = performance.now();
  /** END was sent or received: no more cells for this stream in either direction. */
  #ended = false;

  constructor(streamId: number, port: StreamPort, opts: RelayStreamOptions = {}) {
    const highWaterMark = opts.highWaterMark ?? 64 * 1024;
    super({ allowHalfOpen: false, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
    this.streamId = streamId;
    this.kind = opts.kind ?? 'client';
    this.circuitId = opts.circuitId ?? 0;
    this.#port = port;
    this.#flow = opts.flow ?? new FixedWindowStream();
    this.#meter = opts.meter ?? null;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Application bytes received (DATA bodies), including any the consumer has not read yet. */
  get bytesIn(): number {
    return this.#bytesIn;
  }

  /** Application bytes sent (DATA bodies). */
  get bytesOut(): number {
    return this.#bytesOut;
  }

  /**
   * The END reason (src/cell/reasons.ts) sent or received, once the stream
   * ended; DESTROY if the circuit went away under it; null while it is open.
   */
  get endReason(): number | null {
    return this.#endReason;
  }

  // ---- from the circuit ----

  /**
   * A DATA cell for this stream arrived. Throws ProtocolError if the peer
   * overran our window. `data` must not be reused by the caller (cells from a
   * link are unshared copies). Cells that arrive together (one link read) are
   * handed to the consumer as one chunk, so the application socket sees one
   * write per batch instead of one per 498 bytes.
   */
  receiveData(data: Uint8Array): void {
    const reply = this.#flow.onDelivered(data.length, this.#buffered() + data.length);
    if (this.#ended) return;
    if (reply !== null) this.#port.sendStreamFlowMsg(this.streamId, reply);
    this.#bytesIn += data.length;
    this.#meter?.bytesIn(data.length);
    this.#inbox.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    this.#inboxBytes += data.length;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(() => this.#flushInbox());
    }
  }

  /** A stream SENDME, XON or XOFF arrived. Throws ProtocolError if the stream's flow control refuses it. */
  receiveFlowMsg(msg: StreamFlowMsg): void {
    this.#flow.onFlowMsg(msg);
    this.#pump();
  }

  /** The peer ended the stream. */
  receiveEnd(reason: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#endReason = reason;
    if (reason === EndReason.DONE) {
      this.#flushInbox();
      this.push(null);
      this.#dropPendingWrite();
      this.end();
    } else {
      this.destroy(new StreamEndedError(reason, `stream ended by peer (reason ${reason})`));
    }
  }

  /** The circuit went away under the stream. */
  abort(error: Error): void {
    if (!this.#ended) this.#endReason = error instanceof StreamEndedError ? error.reason : EndReason.DESTROY;
    this.#ended = true;
    this.destroy(error);
  }

  /**
   * performance.now() since when the bytes this stream holds (to send, or
   * unread by its consumer) have made no progress: the last DATA cell sent
   * while a write waits, the consumer's last read while bytes wait for it;
   * null when it holds none. A flowing stream is young, a stuck one old (the
   * relay's memory cap frees the oldest first, relay/mem-cap.ts).
   */
  get heldSince(): number | null {
    const sending = this.#pending !== null ? this.#lastSentAt : Infinity;
    const reading = this.readableLength + this.#inboxBytes > 0 ? this.#lastReadAt : Infinity;
    const since = Math.min(sending, reading);
    return since === Infinity ? null : since;
  }

  // ---- Duplex ----

  override _read(): void {
    this.#lastReadAt = performance.now();
    // The consumer wants more. Node calls _read again only after a push(), so
    // every owed SENDME must go now, or a drained stream would wait forever.
    this.#grantCredit();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#ended) {
      callback();
      return;
    }
    // A write that finds none waiting starts its wait now.
    this.#lastSentAt = performance.now();
    this.#pending = { chunk, offset: 0, callback };
    this.#pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#ended) {
      this.#ended = true;
      this.#endReason = EndReason.DONE;
      this.#port.sendEnd(this.streamId, EndReason.DONE);
      // END closes both ways: nothing more will be read, so end the readable
      // too, letting the stream close and release its id.
      this.push(null);
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#ended) {
      this.#ended = true;
      const reason = error === null ? EndReason.DONE : error instanceof StreamEndedError ? error.reason : EndReason.MISC;
      this.#endReason = reason;
      this.#port.sendEnd(this.streamId, reason);
    }
    this.#dropPendingWrite();
    this.#port.release(this);
    callback(error);
  }

  #flushInbox(): void {
    this.#flushQueued = false;
    const inbox = this.#inbox;
    if (inbox.length === 0) return;
    this.#inbox = [];
    this.#inboxBytes = 0;
    if (this.destroyed) return;
    // push() returning false means the consumer is behind: owe the SENDME (or XON) until _read().
    if (this.push(inbox.length === 1 ? inbox[0]! : Buffer.concat(inbox))) this.#grantCredit();
  }

  /** Bytes that arrived and wait for the consumer (read buffer and this turn's inbox). */
  #buffered(): number {
    return this.readableLength + this.#inboxBytes;
  }

  /** Send every flow message owed now that the consumer is ready for more. */
  #grantCredit(): void {
    if (this.#ended) return;
    for (let msg = this.#flow.takeFlowMsg(this.#buffered()); msg !== null && !this.#ended; msg = this.#flow.takeFlowMsg(this.#buffered())) {
      this.#port.sendStreamFlowMsg(this.streamId, msg);
    }
  }

  #pump(): void {
    while (this.#pending !== null && !this.#ended) {
      if (!this.#flow.canSend()) return; // receiveFlowMsg() pumps again
      if (!this.#port.canSendData()) {
        if (!this.#waiting) {
          this.#waiting = true;
          this.#port.waitForRoom(() => {
            this.#waiting = false;
            this.#pump();
          });
        }
        return;
      }
      const p = this.#pending;
      const piece = p.chunk.subarray(p.offset, p.offset + RELAY_DATA_LENGTH);
      this.#flow.onSent(piece.length);
      this.#port.sendData(this.streamId, piece);
      this.#lastSentAt = performance.now();
      this.#bytesOut += piece.length;
      this.#meter?.bytesOut(piece.length);
      p.offset += piece.length;
      if (p.offset >= p.chunk.length) {
        this.#pending = null;
        p.callback();
      }
    }
  }

  #dropPendingWrite(): void {
    const p = this.#pending;
    this.#pending = null;
    if (p !== null) p.callback();
  }
}
