/**
 * The end of a circuit where streams live: the client's side of its last hop,
 * and the exit relay (docs/protocol.md §6.4, §7). Shared by both roles.
 *
 * It owns the circuit-level SENDME windows (1000 cells, SENDME every 100,
 * authenticated with the running digest as Tor's version-1 SENDMEs are), the
 * table of streams, and the dispatch of stream commands. Anything out of
 * place — a DATA cell for a stream that never existed, a SENDME that does not
 * match, a window overrun — throws ProtocolError, and the owner destroys the
 * circuit.
 */
import { CIRCUIT_SENDME_INCREMENT, CIRCUIT_WINDOW_START } from '../constants.js';
import { RelayCommand } from '../cell/relay-cell.js';
import { decodeSendme, encodeSendmeV1 } from '../cell/sendme.js';
import { decodeEnd, encodeEnd } from '../cell/stream-messages.js';
import { DeliverWindow, PackageWindow } from '../flow/window.js';
import { RelayStream, type StreamPort } from '../stream/relay-stream.js';
import { ProtocolError } from '../errors.js';
import { equalBytes } from '../bytes.js';

/** What the edge needs from the circuit it sits on. */
export interface EdgeTransport {
  /** Seal and send one relay message to the other edge; returns the running digest after this cell. */
  send(command: number, streamId: number, data: Uint8Array): Uint8Array;
  /** True while the link toward the other edge has too much queued. */
  congested(): boolean;
  /** Call `wake` once when the link has drained. */
  onRoom(wake: () => void): void;
}

const RECENTLY_CLOSED_LIMIT = 256;
const MAX_STREAMS_PER_CIRCUIT = 1024;

export class CircuitEdge implements StreamPort {
  readonly #transport: EdgeTransport;
  readonly #package = new PackageWindow(CIRCUIT_WINDOW_START, CIRCUIT_SENDME_INCREMENT);
  readonly #deliver = new DeliverWindow(CIRCUIT_WINDOW_START, CIRCUIT_SENDME_INCREMENT);
  /** Digests of our cells that end an increment; each circuit SENDME must echo the oldest. */
  readonly #sendmeDigests: Uint8Array[] = [];
  readonly #streams = new Map<number, RelayStream>();
  /** Ids of streams that ended recently: cells already in flight for them are dropped, not errors. */
  readonly #recentlyClosed = new Set<number>();
  #waiters: Array<() => void> = [];
  #roomRequested = false;

  constructor(transport: EdgeTransport) {
    this.#transport = transport;
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  hasStream(streamId: number): boolean {
    return this.#streams.has(streamId);
  }

  /** Create the local half of stream `streamId`. */
  addStream(streamId: number): RelayStream {
    if (streamId === 0 || this.#streams.has(streamId)) throw new ProtocolError(`stream id ${streamId} is in use`);
    if (this.#streams.size >= MAX_STREAMS_PER_CIRCUIT) throw new ProtocolError('too many streams on one circuit');
    this.#recentlyClosed.delete(streamId);
    const stream = new RelayStream(streamId, this);
    this.#streams.set(streamId, stream);
    return stream;
  }

  getStream(streamId: number): RelayStream | undefined {
    return this.#streams.get(streamId);
  }

  /** Send END for a stream that never got a RelayStream (refused BEGIN). */
  refuse(streamId: number, reason: number): void {
    this.#transport.send(RelayCommand.END, streamId, encodeEnd(reason));
  }

  /**
   * Handle a flow or stream command addressed to this edge. Returns false for
   * commands the owner must handle itself (BEGIN, CONNECTED, EXTENDED2, ...).
   * `receivedDigest` gives the running digest after this cell, for SENDMEs.
   */
  handle(command: number, streamId: number, data: Uint8Array, receivedDigest: () => Uint8Array): boolean {
    switch (command) {
      case RelayCommand.DATA: {
        if (streamId === 0) throw new ProtocolError('DATA on stream 0');
        this.#deliver.take();
        if (this.#deliver.sendmeDue) {
          this.#deliver.sentSendme();
          this.#transport.send(RelayCommand.SENDME, 0, encodeSendmeV1(receivedDigest()));
        }
        this.#stream(streamId)?.receiveData(data);
        return true;
      }
      case RelayCommand.SENDME: {
        if (streamId === 0) {
          const digest = decodeSendme(data);
          const expected = this.#sendmeDigests.shift();
          if (digest === null) throw new ProtocolError('circuit SENDME without an authenticated digest');
          if (expected === undefined || !equalBytes(digest, expected)) throw new ProtocolError('circuit SENDME digest mismatch');
          this.#package.credit();
          this.#wake();
        } else {
          this.#stream(streamId)?.receiveSendme();
        }
        return true;
      }
      case RelayCommand.END: {
        if (streamId === 0) throw new ProtocolError('END on stream 0');
        const stream = this.#stream(streamId);
        if (stream !== undefined) {
          this.#forget(streamId);
          stream.receiveEnd(decodeEnd(data));
        }
        return true;
      }
      default:
        return false;
    }
  }

  /** The circuit is gone: fail every stream. */
  abortAll(error: Error): void {
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.abort(error);
    this.#waiters = [];
  }

  // ---- StreamPort ----

  canSendData(): boolean {
    return this.#package.open && !this.#transport.congested();
  }

  waitForRoom(wake: () => void): void {
    this.#waiters.push(wake);
    if (this.#transport.congested() && !this.#roomRequested) {
      this.#roomRequested = true;
      this.#transport.onRoom(() => {
        this.#roomRequested = false;
        this.#wake();
      });
    }
  }

  sendData(streamId: number, data: Uint8Array): void {
    const endsIncrement = this.#package.take();
    const digest = this.#transport.send(RelayCommand.DATA, streamId, data);
    if (endsIncrement) this.#sendmeDigests.push(digest);
  }

  sendStreamSendme(streamId: number): void {
    this.#transport.send(RelayCommand.SENDME, streamId, new Uint8Array(0));
  }

  sendEnd(streamId: number, reason: number): void {
    this.#transport.send(RelayCommand.END, streamId, encodeEnd(reason));
  }

  release(streamId: number): void {
    this.#forget(streamId);
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
