/**
 * One stream at either end of a circuit hop (a client, an exit, a relay's
 * directory) as a Node Duplex (docs/protocol.md §6.4, §6.5, §6.7, §7).
 *
 * Writing turns bytes into DATA cells, at most 498 bytes each, only while the
 * stream's flow control and the circuit hop's have room: a full circuit makes
 * write() wait, so pipe()/pipeline() slow the producer. Reading hands DATA to
 * the consumer; what the stream tells the far end about flow goes out only as
 * the consumer reads: stream SENDMEs on fixed windows, so a slow reader stops
 * the far end after one window (500 cells); on a congestion-controlled hop an
 * XOFF once too much waits and an XON when the consumer catches up (§7.4).
 *
 * How it ends (§6.4, §6.7):
 * - end() on a stream that negotiated half-close (enableHalfClose(), after
 *   BEGIN and CONNECTED agreed) sends FIN: no more DATA from us, and reading
 *   goes on. A FIN received ends the readable side once every DATA before it
 *   has been read; writing goes on. FIN both ways closes the stream.
 * - end() on any other stream sends END DONE, which closes both directions
 *   (Tor's behaviour); what was already received is still read out.
 * - END DONE received: everything received before it is read out, then the
 *   readable side ends; anything written from then on is dropped (the far end
 *   is gone) and the stream closes once its reader has seen the end.
 * - END with another reason, a protocol violation on the stream, an idle
 *   half-closed stream, or the circuit going away: the stream is destroyed
 *   with StreamEndedError / CircuitDestroyedError, so whoever holds a socket
 *   for it can reset that socket instead of ending it cleanly.
 */
import { Duplex } from 'node:stream';
import { RELAY_DATA_LENGTH } from '../constants.js';
import { FixedWindowStream, type StreamFlowControl, type StreamFlowMsg } from '../flow/flow-control.js';
import { EndReason } from '../cell/reasons.js';
import { StreamEndedError } from '../errors.js';
import { StreamInbox } from './stream-inbox.js';
import type { AttachedBuffers, ByteMeter, StreamPort } from './stream-port.js';

export type { AttachedBuffers, ByteMeter, StreamPort } from './stream-port.js';

/** What a stream carries: 'client' (an origin's BEGIN), 'exit' (BEGIN at a relay) or 'dir' (BEGIN_DIR, at either end). */
export type StreamKind = 'client' | 'exit' | 'dir';

/**
 * A half-closed stream (one FIN sent or received, §6.4) that carries no DATA
 * either way for this long is reclaimed with END TIMEOUT: 5 minutes.
 */
export const HALF_CLOSED_IDLE_TIMEOUT_MS = 5 * 60_000;

/**
 * The event a RelayStream emits (no arguments) once it is closed on the wire
 * (END sent or received, FIN both ways, or the circuit gone): nothing more
 * will cross the circuit for it either way. src/stream/splice.ts bounds the
 * life of a socket from then on.
 */
export const WIRE_CLOSE_EVENT = 'wireclose';

/**
 * Emitted (no arguments) when this stream has just sent XOFF (§7.4): more
 * than the XOFF threshold of bytes now waits for the application, a step a
 * memory cap looks at in the next turn (client/mem-cap.ts) rather than at its
 * next tick.
 */
export const XOFF_SENT_EVENT = 'xoffsent';

export interface RelayStreamOptions {
  kind?: StreamKind;
  /** Default: Tor's fixed stream windows. */
  flow?: StreamFlowControl;
  meter?: ByteMeter | null;
  /** Readable and writable high-water marks in bytes; default 64 KiB. */
  highWaterMark?: number;
  /** The process-unique event id of the circuit it rides on (src/events.ts); default 0. */
  circuitId?: number;
  /** Reclaim a half-closed stream idle this long (ms); default HALF_CLOSED_IDLE_TIMEOUT_MS; 0 never. */
  halfClosedIdleMs?: number;
  /** The clock for the idle limit (ms); default Date.now. */
  now?: () => number;
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
  readonly #idleMs: number;
  readonly #now: () => number;
  #bytesIn = 0;
  #bytesOut = 0;
  #endReason: number | null = null;
  #pending: PendingWrite | null = null;
  #waiting = false;
  readonly #flushInboxBound = (): void => this.#flushInbox();
  /** DATA received in this event-loop turn, not yet handed to the consumer. */
  readonly #inbox = new StreamInbox();
  #flushQueued = false;
  /** performance.now() when a DATA cell last went out, and when the consumer last asked for more (see heldSince). */
  #lastSentAt = performance.now();
  #lastReadAt = performance.now();
  /** The socket spliced to this stream (attachBuffers): its buffers count as this stream's. */
  #attached: AttachedBuffers | null = null;
  /** The readable side has been ended (push(null)). */
  #eof = false;
  /** Both edges agreed to half-close (BeginFlag.HALF_CLOSE). */
  #halfClose = false;
  #finSent = false;
  #finReceived = false;
  /** No more cells for this stream in either direction: END sent or received, or FIN both ways. */
  #wireClosed = false;
  /** Armed while half-closed: reclaims the stream after #idleMs without DATA. */
  #idleTimer: NodeJS.Timeout | null = null;
  #lastActive = 0;

  constructor(streamId: number, port: StreamPort, opts: RelayStreamOptions = {}) {
    const highWaterMark = opts.highWaterMark ?? 64 * 1024;
    // allowHalfOpen: the ends of the two directions are this class's business (above).
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
    this.streamId = streamId;
    this.kind = opts.kind ?? 'client';
    this.circuitId = opts.circuitId ?? 0;
    this.#port = port;
    this.#flow = opts.flow ?? new FixedWindowStream();
    this.#meter = opts.meter ?? null;
    this.#idleMs = opts.halfClosedIdleMs ?? HALF_CLOSED_IDLE_TIMEOUT_MS;
    this.#now = opts.now ?? Date.now;
  }

  /** True once the stream is closed on the wire (END sent or received, FIN both ways, or circuit gone). */
  get ended(): boolean {
    return this.#wireClosed;
  }

  /** True if both edges agreed to half-close (§6.4). */
  get halfClose(): boolean {
    return this.#halfClose;
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
   * ended; DONE after FIN both ways; DESTROY if the circuit went away under
   * it; null while it is open.
   */
  get endReason(): number | null {
    return this.#endReason;
  }

  /**
   * Both edges agreed to half-close (the client asked in BEGIN, the exit
   * answered in CONNECTED): from now on end() sends FIN, and a FIN received
   * ends only the readable side. Call before any data flows.
   */
  enableHalfClose(): void {
    this.#halfClose = true;
  }

  // ---- from the circuit ----

  /**
   * A DATA cell for this stream arrived. Throws ProtocolError if the peer
   * overran our window. `data` is copied before this returns (into the
   * inbox, one buffer per batch), so it may be a view into a frame the caller
   * reuses. Cells that arrive together (one link read)
   * are handed to the consumer as one chunk, in a microtask, so the
   * application socket sees one write per batch instead of one per 498 bytes.
   * (Deferring to setImmediate, one write per poll phase, let a stuck
   * stream's inbox outgrow the memory cap's checks and stalled a reading
   * stream beside it: test/client/mem-cap.test.ts.) DATA after the peer's FIN
   * ends the stream with END TORPROTOCOL.
   */
  receiveData(data: Uint8Array): void {
    const reply = this.#flow.onDelivered(data.length, this.#buffered() + data.length);
    if (this.#wireClosed) return;
    if (this.#finReceived) {
      this.#violation('DATA after FIN');
      return;
    }
    if (reply !== null) {
      this.#port.sendStreamFlowMsg(this.streamId, reply);
      if (reply.kind === 'xoff') this.emit(XOFF_SENT_EVENT);
    }
    if (this.#idleTimer !== null) this.#lastActive = this.#now();
    this.#bytesIn += data.length;
    this.#meter?.bytesIn(data.length);
    this.#inbox.append(data);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushInboxBound);
    }
  }

  /** A stream SENDME, XON or XOFF arrived. Throws ProtocolError if the stream's flow control refuses it. */
  receiveFlowMsg(msg: StreamFlowMsg): void {
    this.#flow.onFlowMsg(msg);
    this.#pump();
  }

  /**
   * The peer's FIN: it sends no more DATA. The readable side ends after what
   * came before it. A FIN on a stream that did not negotiate half-close, or a
   * second FIN, ends the stream with END TORPROTOCOL.
   */
  receiveFin(): void {
    if (this.#wireClosed) return;
    if (!this.#halfClose || this.#finReceived) {
      this.#violation(this.#halfClose ? 'a second FIN' : 'FIN on a stream that did not negotiate half-close');
      return;
    }
    this.#finReceived = true;
    this.#endOfInput();
    if (this.#finSent) this.#closeWire(EndReason.DONE);
    else this.#armIdle();
  }

  /** The peer ended the stream (both directions). */
  receiveEnd(reason: number): void {
    if (this.#wireClosed) return;
    this.#closeWire(reason);
    if (reason === EndReason.DONE) {
      this.#endOfInput();
      this.#dropPendingWrite();
      // Nothing more crosses the wire: once the reader has seen the end, the
      // stream is finished both ways (later writes are dropped meanwhile).
      if (this.readableEnded) this.destroy();
      else this.once('end', () => this.destroy());
    } else {
      this.destroy(new StreamEndedError(reason, `stream ended by peer (reason ${reason})`));
    }
  }

  /** The circuit went away under the stream. */
  abort(error: Error): void {
    if (!this.#wireClosed) this.#closeWire(error instanceof StreamEndedError ? error.reason : EndReason.DESTROY);
    this.destroy(error);
  }

  /**
   * Count `holder`'s buffers as this stream's from now on: the socket it is
   * spliced to (src/stream/splice.ts), whose write buffer holds what this
   * stream delivered and the socket has not sent yet, and whose read buffer
   * what the socket received and this stream has not taken. The exit's
   * destination socket and the client's SOCKS / tunnel socket, for the memory
   * caps (relay/mem-cap.ts, client/mem-cap.ts).
   */
  attachBuffers(holder: AttachedBuffers): void {
    this.#attached = holder;
  }

  /**
   * Bytes this stream holds now, in bytes: its readable and writable buffers,
   * DATA not yet handed to the consumer, and the buffers of the attached
   * socket (attachBuffers). What the memory caps account per stream.
   */
  get bufferedBytes(): number {
    const socket = this.#attached === null ? 0 : this.#attached.writableLength + this.#attached.readableLength;
    return this.readableLength + this.writableLength + this.#inbox.bytes + socket;
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
    const reading = this.readableLength + this.#inbox.bytes > 0 ? this.#lastReadAt : Infinity;
    const since = Math.min(sending, reading);
    return since === Infinity ? null : since;
  }

  // ---- Duplex ----

  override _read(): void {
    this.#lastReadAt = performance.now();
    // The consumer wants more: what waits in the inbox goes now (flushInbox
    // grants credit for it once it is taken); the credit owed is only for
    // bytes the consumer has, never for bytes still in the inbox.
    if (this.#inbox.bytes > 0) {
      this.#flushInbox();
      return;
    }
    // Node calls _read again only after a push(), so every owed SENDME must
    // go now, or a drained stream would wait forever.
    this.#grantCredit();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#wireClosed) {
      callback(); // the far end is gone: dropped, as TCP drops writes after the peer's close
      return;
    }
    // A write that finds none waiting starts its wait now.
    this.#lastSentAt = performance.now();
    this.#pending = { chunk, offset: 0, callback };
    this.#pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.#wireClosed) {
      if (this.#halfClose) {
        this.#finSent = true;
        this.#port.sendFin(this.streamId);
        if (this.#finReceived) this.#closeWire(EndReason.DONE);
        else this.#armIdle();
      } else {
        this.#closeWire(EndReason.DONE);
        this.#port.sendEnd(this.streamId, EndReason.DONE);
        // END closes both ways: what already arrived is still read, then the readable ends.
        this.#endOfInput();
      }
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#wireClosed) {
      const reason = error === null ? EndReason.DONE : error instanceof StreamEndedError ? error.reason : EndReason.MISC;
      this.#closeWire(reason);
      this.#port.sendEnd(this.streamId, reason);
    }
    this.#clearIdle();
    this.#attached = null;
    this.#inbox.clear();
    this.#dropPendingWrite();
    this.#port.release(this);
    callback(error);
  }

  // ---- internals ----

  /** Hand over what arrived, then end the readable side (once). */
  #endOfInput(): void {
    this.#flushInbox();
    if (this.#eof) return;
    this.#eof = true;
    this.push(null);
  }

  #closeWire(reason: number): void {
    if (this.#wireClosed) return;
    this.#wireClosed = true;
    this.#endReason = reason;
    this.#clearIdle();
    this.#port.wireClosed(this);
    this.emit(WIRE_CLOSE_EVENT);
  }

  /** The peer broke the rules of this stream: END TORPROTOCOL, and the reader sees an error. */
  #violation(what: string): void {
    this.destroy(new StreamEndedError(EndReason.TORPROTOCOL, `stream protocol violation: ${what}`));
  }

  #armIdle(): void {
    if (this.#idleTimer !== null || this.#idleMs <= 0 || this.#wireClosed) return;
    this.#lastActive = this.#now();
    const check = (): void => {
      const idle = this.#now() - this.#lastActive;
      if (idle >= this.#idleMs) {
        this.#idleTimer = null;
        this.destroy(new StreamEndedError(EndReason.TIMEOUT, `half-closed stream idle for ${idle} ms`));
        return;
      }
      this.#idleTimer = setTimeout(check, this.#idleMs - idle).unref();
    };
    this.#idleTimer = setTimeout(check, this.#idleMs).unref();
  }

  #clearIdle(): void {
    if (this.#idleTimer === null) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
  }

  #flushInbox(): void {
    this.#flushQueued = false;
    const chunk = this.#inbox.take();
    if (chunk === null || this.destroyed || this.#eof) return;
    // push() returning false means the consumer is behind: owe the SENDME (or XON) until _read().
    if (this.push(chunk)) this.#grantCredit();
  }

  /** Bytes that arrived and wait for the consumer (read buffer and this turn's inbox). */
  #buffered(): number {
    return this.readableLength + this.#inbox.bytes;
  }

  /**
   * Send every flow message owed now that the consumer is ready for more.
   * None once the peer has finished sending (its FIN): a stream SENDME or an
   * XON would only let it send DATA it has promised not to send.
   */
  #grantCredit(): void {
    if (this.#finReceived || this.#wireClosed) return;
    for (let msg = this.#flow.takeFlowMsg(this.#buffered()); msg !== null && !this.#wireClosed; msg = this.#flow.takeFlowMsg(this.#buffered())) {
      this.#port.sendStreamFlowMsg(this.streamId, msg);
    }
  }

  /**
   * Send what of `data` the stream's and the circuit's flow control let go
   * now, as DATA cells, before this returns; returns the bytes taken (the
   * rest is the caller's to write() later, in order). `data` is copied into
   * cells, so it may be a view into a buffer the caller reuses (an exit's
   * pooled socket read, src/stream/pooled-read.ts). Takes nothing while an
   * earlier write() still waits (bytes stay in order); takes everything once
   * the stream is closed on the wire (dropped, as _write drops them) or
   * after end().
   */
  sendNow(data: Uint8Array): number {
    if (this.#wireClosed || this.writableEnded || this.destroyed) return data.length;
    if (this.#pending !== null || this.writableLength > 0) return 0;
    return this.#sendPieces(data, 0);
  }

  /**
   * Bytes sendNow() would take now, about: the stream's and the circuit's
   * flow control room in DATA cells (RELAY_DATA_LENGTH each), 0 while an
   * earlier write waits or the link is congested; Infinity once everything
   * is taken (closed on the wire, or ended). An exit sizes its next socket
   * read by it, so a stream whose window has closed reads no more than it
   * can send (src/stream/pooled-read.ts).
   */
  sendRoom(): number {
    if (this.#wireClosed || this.writableEnded || this.destroyed) return Infinity;
    if (this.#pending !== null || this.writableLength > 0) return 0;
    return Math.min(this.#flow.sendableCells(), this.#port.dataRoomCells()) * RELAY_DATA_LENGTH;
  }

  /** DATA cells from data[offset..] while flow control has room; returns the new offset. */
  #sendPieces(data: Uint8Array, offset: number): number {
    let at = offset;
    while (at < data.length && !this.#wireClosed && this.#flow.canSend() && this.#port.canSendData()) {
      const piece = data.subarray(at, at + RELAY_DATA_LENGTH);
      this.#flow.onSent(piece.length);
      this.#port.sendData(this.streamId, piece);
      at += piece.length;
    }
    const sent = at - offset;
    if (sent > 0) {
      this.#bytesOut += sent;
      this.#meter?.bytesOut(sent);
      if (this.#idleTimer !== null) this.#lastActive = this.#now();
      // One clock read per call, not per cell: these cells leave in the same instant.
      this.#lastSentAt = performance.now();
    }
    return at;
  }

  #pump(): void {
    while (this.#pending !== null && !this.#wireClosed) {
      if (!this.#flow.canSend()) break; // receiveFlowMsg() pumps again
      if (!this.#port.canSendData()) {
        if (!this.#waiting) {
          this.#waiting = true;
          this.#port.waitForRoom(() => {
            this.#waiting = false;
            this.#pump();
          });
        }
        break;
      }
      const p = this.#pending;
      p.offset = this.#sendPieces(p.chunk, p.offset);
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
