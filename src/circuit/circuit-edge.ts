/**
 * One end of one circuit hop where streams live (docs/protocol.md §6.4, §7):
 * at a client, one edge per hop of its circuit (made when first used); at a
 * relay, the edge of its own hop (exit streams, directory streams). Shared by
 * both roles.
 *
 * It owns the hop's circuit-level flow control (src/flow/flow-control.ts:
 * Tor's fixed windows, or Vegas where the hop's handshake agreed on it), the
 * table of streams, and the dispatch of the stream and flow commands DATA,
 * SENDME, XON, XOFF, END and FIN. Anything out of place for the circuit — a
 * DATA cell for a stream that never existed, a SENDME that does not match, a
 * window overrun, an XON/XOFF the hop's flow control has no place for — throws
 * ProtocolError, and the owner destroys the circuit; what is out of place for
 * one stream only (DATA after its FIN, a FIN it did not negotiate) ends that
 * stream (docs/protocol.md §6.7).
 */
import { relayCommandOf, type Data, type End, type Fin, type RelayMsg, type Sendme, type Xoff, type Xon } from '../cell/relay-msg.js';
import { EndReason } from '../cell/reasons.js';
import { endReasonOf } from '../cell/stream-messages.js';
import { fixedWindows, type CircuitFlowControl, type FlowControlFactory, type StreamFlowMsg } from '../flow/flow-control.js';
import { RelayStream, type StreamKind, type StreamPort } from '../stream/relay-stream.js';
import type { CircuitStatsRecorder } from './circuit-stats.js';
import { ProtocolError, StreamEndedError } from '../errors.js';
import { publish } from '../events.js';

/** The messages an edge handles itself; the circuit's dispatcher hands them over. */
export type EdgeMsg = Data | Sendme | Xon | Xoff | End | Fin;

const FIN: Fin = { kind: 'fin' };
const END_COMMAND = relayCommandOf('end');
const FIN_COMMAND = relayCommandOf('fin');

/** What the edge needs from the circuit it sits on. */
export interface EdgeTransport {
  /**
   * Encode (writeRelayMsg), seal and send one relay message to the other
   * edge on stream `streamId` (0: the circuit); returns the running digest of
   * the sending layer after this cell, possibly in the layer's own array
   * (valid until its next seal: copy it to keep it).
   */
  send(streamId: number, msg: RelayMsg): Uint8Array;
  /** True while the link toward the other edge has too much queued. */
  congested(): boolean;
  /** Cells the link toward the other edge takes before it is congested (ChannelRoom.roomCells): 0 while congested. */
  roomCells(): number;
  /** Call `wake` once when the link has drained. */
  onRoom(wake: () => void): void;
}

export interface EdgeOptions {
  /** Flow control for the hop and its streams; default Tor's fixed windows. */
  flow?: FlowControlFactory;
  /** The circuit's process-unique event number (src/events.ts), for stream events. */
  circuitId?: number;
  /** The owning manager's counters. */
  stats?: CircuitStatsRecorder | null;
  /** Reclaim half-closed streams idle this long (ms); default HALF_CLOSED_IDLE_TIMEOUT_MS (src/stream/relay-stream.ts). */
  halfClosedIdleMs?: number;
  /** Clock for that limit (ms); default Date.now. */
  now?: () => number;
}

const RECENTLY_CLOSED_LIMIT = 256;
/** Streams open at once on one hop of a circuit; a request beyond it is refused with END RESOURCELIMIT. */
export const MAX_STREAMS_PER_CIRCUIT = 1024;

export class CircuitEdge implements StreamPort {
  readonly #transport: EdgeTransport;
  readonly #flowFactory: FlowControlFactory;
  readonly #flow: CircuitFlowControl;
  readonly #circuitId: number;
  readonly #stats: CircuitStatsRecorder | null;
  readonly #streamOptions: { halfClosedIdleMs?: number; now?: () => number };
  readonly #streams = new Map<number, RelayStream>();
  /** Streams that reported `allium:stream:open`; they report `allium:stream:close` once. */
  readonly #opened = new WeakSet<RelayStream>();
  /** Ids of streams that ended recently: cells already in flight for them are dropped, not errors. */
  readonly #recentlyClosed = new Set<number>();
  #waiters: Array<() => void> = [];
  #roomRequested = false;
  /** The one timer that wakes the streams when sender pacing (§7.5) lets the next cell go. */
  #paceTimer: NodeJS.Timeout | null = null;

  constructor(transport: EdgeTransport, opts: EdgeOptions = {}) {
    this.#transport = transport;
    this.#flowFactory = opts.flow ?? fixedWindows;
    this.#flow = this.#flowFactory.circuit();
    this.#circuitId = opts.circuitId ?? 0;
    this.#stats = opts.stats ?? null;
    this.#streamOptions = {
      ...(opts.halfClosedIdleMs !== undefined ? { halfClosedIdleMs: opts.halfClosedIdleMs } : {}),
      ...(opts.now !== undefined ? { now: opts.now } : {}),
    };
  }

  /** This hop's circuit-level flow control, for diagnostics. */
  get flow(): CircuitFlowControl {
    return this.#flow;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  /** Bytes the streams of this edge hold (RelayStream.bufferedBytes: their buffers and their sockets'), for the memory caps. */
  bufferedBytes(): number {
    let n = 0;
    for (const stream of this.#streams.values()) n += stream.bufferedBytes;
    return n;
  }

  /** The earliest heldSince of this edge's streams (performance.now() ms), or null when none holds bytes (the relay's memory cap). */
  heldSince(): number | null {
    let since: number | null = null;
    for (const stream of this.#streams.values()) {
      const s = stream.heldSince;
      if (s !== null && (since === null || s < since)) since = s;
    }
    return since;
  }

  hasStream(streamId: number): boolean {
    return this.#streams.has(streamId);
  }

  /** True when the hop has MAX_STREAMS_PER_CIRCUIT streams: a new request is refused (END RESOURCELIMIT). */
  get full(): boolean {
    return this.#streams.size >= MAX_STREAMS_PER_CIRCUIT;
  }

  /** Create the local half of stream `streamId`. Throws ProtocolError if the id is 0 or in use, or the hop is full (check `full` first). */
  addStream(streamId: number, kind: StreamKind = 'client'): RelayStream {
    if (streamId === 0 || this.#streams.has(streamId)) throw new ProtocolError(`stream id ${streamId} is in use`);
    if (this.full) throw new ProtocolError('too many streams on one circuit');
    this.#recentlyClosed.delete(streamId);
    const stream = new RelayStream(streamId, this, {
      kind,
      flow: this.#flowFactory.stream(),
      meter: kind === 'dir' ? (this.#stats?.directory ?? null) : this.#stats,
      circuitId: this.#circuitId,
      ...this.#streamOptions,
    });
    this.#streams.set(streamId, stream);
    return stream;
  }

  /**
   * The stream is open (CONNECTED sent or received): publish
   * `allium:stream:open` and count it; its close will be published too.
   */
  opened(stream: RelayStream): void {
    if (this.#opened.has(stream) || stream.destroyed) return;
    this.#opened.add(stream);
    this.#stats?.streamOpened();
    publish('allium:stream:open', () => ({ circuitId: this.#circuitId, streamId: stream.streamId, kind: stream.kind }));
  }

  getStream(streamId: number): RelayStream | undefined {
    return this.#streams.get(streamId);
  }

  /** Send END for a stream that never got a RelayStream (refused BEGIN or BEGIN_DIR). */
  refuse(streamId: number, reason: number): void {
    this.#transport.send(streamId, { kind: 'end', reason });
  }

  /**
   * Handle DATA, SENDME, XON, XOFF, END or FIN addressed to this edge (the
   * circuit's dispatcher has matched the kind). `receivedDigest` gives the
   * running digest of the receiving layer after this cell, for circuit
   * SENDMEs. Throws ProtocolError for stream 0 where a stream is needed, a
   * stream never opened, a SENDME that does not authenticate, a window
   * overrun, a flow message the hop's flow control has no place for. Cells
   * for a stream that closed recently are dropped (DATA still counts against
   * the circuit window).
   */
  handle(streamId: number, msg: EdgeMsg, receivedDigest: () => Uint8Array): void {
    switch (msg.kind) {
      case 'data': {
        if (streamId === 0) throw new ProtocolError('DATA on stream 0');
        const sendme = this.#flow.onDelivered(receivedDigest);
        if (sendme !== null) this.#transport.send(0, sendme);
        this.#stream(streamId)?.receiveData(msg.data);
        return;
      }
      case 'sendme':
        if (streamId === 0) {
          this.#flow.onSendme(msg, this.#transport.congested());
          this.#wake();
        } else {
          this.#stream(streamId)?.receiveFlowMsg(msg);
        }
        return;
      case 'xon':
      case 'xoff':
        if (streamId === 0) throw new ProtocolError(`${msg.kind.toUpperCase()} on stream 0`);
        this.#stream(streamId)?.receiveFlowMsg(msg);
        return;
      case 'end': {
        if (streamId === 0) throw new ProtocolError('END on stream 0');
        const stream = this.#stream(streamId);
        if (stream !== undefined) {
          this.#forget(streamId);
          stream.receiveEnd(msg.reason);
        }
        return;
      }
      case 'fin':
        if (streamId === 0) throw new ProtocolError('FIN on stream 0');
        this.#stream(streamId)?.receiveFin();
        return;
    }
  }

  /**
   * A stream message whose body did not decode (the dispatcher caught the
   * DecodeError), docs/protocol.md §6.7: an END still ends its stream, with
   * the reason in its first byte (as Tor processes a malformed END); a FIN
   * ends its stream with END TORPROTOCOL. Returns false for any other command,
   * whose error is the circuit's. Throws ProtocolError as handle() does.
   */
  handleMalformed(streamId: number, command: number, data: Uint8Array, receivedDigest: () => Uint8Array): boolean {
    if (command === END_COMMAND) {
      this.handle(streamId, { kind: 'end', reason: endReasonOf(data) }, receivedDigest);
      return true;
    }
    if (command === FIN_COMMAND) {
      if (streamId === 0) throw new ProtocolError('FIN on stream 0');
      this.#stream(streamId)?.destroy(new StreamEndedError(EndReason.TORPROTOCOL, 'malformed FIN'));
      return true;
    }
    return false;
  }

  /** The circuit is gone: fail every stream. */
  abortAll(error: Error): void {
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.abort(error);
    this.#waiters = [];
    if (this.#paceTimer !== null) clearTimeout(this.#paceTimer);
    this.#paceTimer = null;
  }

  // ---- StreamPort ----

  canSendData(): boolean {
    return this.#flow.canSend() && !this.#transport.congested();
  }

  dataRoomCells(): number {
    return Math.min(this.#transport.roomCells(), this.#flow.sendableCells());
  }

  waitForRoom(wake: () => void): void {
    this.#waiters.push(wake);
    if (this.#transport.congested()) {
      if (!this.#roomRequested) {
        this.#roomRequested = true;
        this.#transport.onRoom(() => {
          this.#roomRequested = false;
          this.#wake();
        });
      }
      return;
    }
    // Only pacing holds the hop back (a SENDME wakes the streams otherwise): one timer per edge.
    const delayMs = this.#flow.pacingDelayMs();
    if (delayMs > 0 && this.#paceTimer === null) {
      this.#paceTimer = setTimeout(() => {
        this.#paceTimer = null;
        this.#wake();
      }, Math.ceil(delayMs));
      this.#paceTimer.unref();
    }
  }

  sendData(streamId: number, data: Uint8Array): void {
    if (!this.#flow.canSend()) throw new ProtocolError('sent a DATA cell with an empty package window');
    this.#flow.onSent(this.#transport.send(streamId, { kind: 'data', data }));
  }

  sendStreamFlowMsg(streamId: number, msg: StreamFlowMsg): void {
    this.#transport.send(streamId, msg);
  }

  sendEnd(streamId: number, reason: number): void {
    this.#transport.send(streamId, { kind: 'end', reason });
  }

  sendFin(streamId: number): void {
    this.#transport.send(streamId, FIN);
  }

  wireClosed(stream: RelayStream): void {
    if (this.#streams.get(stream.streamId) === stream) this.#forget(stream.streamId);
  }

  release(stream: RelayStream): void {
    if (this.#streams.get(stream.streamId) === stream) this.#forget(stream.streamId);
    if (this.#opened.has(stream)) {
      this.#opened.delete(stream);
      this.#stats?.streamClosed();
      publish('allium:stream:close', () => ({
        circuitId: this.#circuitId,
        streamId: stream.streamId,
        kind: stream.kind,
        reason: stream.endReason ?? 0,
        bytesIn: stream.bytesIn,
        bytesOut: stream.bytesOut,
      }));
    }
  }

  // ---- internals ----

  #stream(streamId: number): RelayStream | undefined {
    const stream = this.#streams.get(streamId);
    if (stream === undefined && !this.#recentlyClosed.has(streamId)) {
      throw new ProtocolError(`cell for unknown stream ${streamId}`);
    }
    return stream;
  }

  #forget(streamId: number): void {
    if (!this.#streams.delete(streamId)) return;
    this.#recentlyClosed.add(streamId);
    if (this.#recentlyClosed.size > RECENTLY_CLOSED_LIMIT) {
      this.#recentlyClosed.delete(this.#recentlyClosed.values().next().value as number);
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
