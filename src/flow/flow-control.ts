/**
 * Flow control behind one interface per circuit hop and one per stream
 * (docs/protocol.md §7), so that Tor's fixed SENDME windows (`cc_alg` 0) and
 * congestion control (Tor proposal 324: Vegas per hop, ./vegas.ts, with
 * XON/XOFF per stream, ./xon-xoff.ts) are implementations that the edge, the
 * circuit and the stream never tell apart. Which one a hop runs is agreed in
 * its ntor-v3 handshake (§7.2, src/circuit/cc-negotiation.ts).
 *
 * What an implementation sees, per circuit hop: every DATA cell sent (with
 * the running digest after it), every circuit SENDME received (and whether the
 * link toward the peer is congested then), and every DATA cell delivered. It
 * decides when the hop may send and when to answer with a SENDME. Per stream:
 * every DATA cell sent and delivered, with the bytes waiting for the
 * application, and every stream SENDME, XON or XOFF; it decides when the
 * stream may send and what to tell the peer.
 *
 * The fixed-window implementation here is Tor's: circuit 1000 cells with an
 * authenticated (version 1) SENDME every 100, stream 500 cells with a SENDME
 * every 50 consumed.
 */
import {
  CIRCUIT_SENDME_INCREMENT,
  CIRCUIT_WINDOW_START,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_START,
} from '../constants.js';
import type { Sendme, Xoff, Xon } from '../cell/relay-msg.js';
import { ProtocolError } from '../errors.js';
import { equalBytes } from '../bytes.js';
import { DeliverWindow, PackageWindow } from './window.js';

/** A read-only view of one hop's flow-control state, for diagnostics. */
export interface CircuitFlowSnapshot {
  /** DATA cells sent and not yet acknowledged by a SENDME. */
  inflight: number;
  /** Cells the sender may have in flight: the package window start, or a congestion window. */
  window: number;
  /** Round trip (ms) from the DATA cell that asked for the latest SENDME to that SENDME; null before the first. */
  lastRttMs: number | null;
  /** Smallest such round trip seen (ms); for Vegas the smoothed minimum. Null before the first. */
  minRttMs: number | null;
  /** 'fixed' windows (§7.1) or 'vegas' (§7.3). */
  algorithm: 'fixed' | 'vegas';
  /** Vegas: still in slow start. Always false for fixed windows. */
  slowStart: boolean;
}

/**
 * Flow control for one circuit hop, at one edge (both directions).
 * Sending side: canSend() / onSent() / onSendme(). Receiving side: onDelivered().
 */
export interface CircuitFlowControl {
  /** True if one more DATA cell may go out on this hop now. */
  canSend(): boolean;
  /**
   * DATA cells that may go out on this hop now before a SENDME is needed
   * (the package window, or what a congestion window has free): at least 1
   * while canSend() is true, 0 otherwise. An estimate for sizing reads
   * (src/stream/pooled-read.ts), not a promise: a pacer may stop sends
   * earlier; canSend() stays the rule per cell.
   */
  sendableCells(): number;
  /**
   * One DATA cell went out. `digest` is the running digest (§4) of the
   * sending layer right after it, which a version-1 SENDME may echo; it may
   * be the layer's own array (OnionLayer.sealDigest), valid only during the
   * call, so an implementation copies what it keeps. Throws
   * ProtocolError if canSend() was false (a bug in the caller).
   */
  onSent(digest: Uint8Array): void;
  /**
   * A circuit SENDME arrived; `linkBlocked`: the link toward the peer has
   * too much queued right now (a congestion signal for Vegas). Throws
   * ProtocolError if none was owed or it does not authenticate.
   */
  onSendme(sendme: Sendme, linkBlocked?: boolean): void;
  /**
   * One DATA cell arrived (counted even if its stream is gone). Returns the
   * SENDME to send back now, or null. `receivedDigest` gives the running
   * digest of the receiving layer right after this cell; it is called only when
   * a SENDME is due. Throws ProtocolError if the peer overran the window.
   */
  onDelivered(receivedDigest: () => Uint8Array): Sendme | null;
  /**
   * ms until canSend() turns true again without a SENDME, when only sender
   * pacing holds it back (Vegas, §7.5); 0 otherwise (it may send, or only a
   * SENDME can open the window).
   */
  pacingDelayMs(): number;
  snapshot(): CircuitFlowSnapshot;
}

/** What one end of a stream may tell the other about flow: a stream SENDME (§7.1), or XON / XOFF (§7.4). */
export type StreamFlowMsg = Sendme | Xon | Xoff;

/**
 * Flow control for one stream (both directions). DATA cells count against it
 * as well as against the circuit hop. `buffered` is always the bytes that
 * arrived on the stream and wait for the application.
 */
export interface StreamFlowControl {
  /** True if one more DATA cell may go out on this stream now. */
  canSend(): boolean;
  /** DATA cells that may go out on this stream now (its package window; Infinity without one); 0 when canSend() is false. */
  sendableCells(): number;
  /** One DATA cell carrying `bytes` went out. Throws ProtocolError if canSend() was false. */
  onSent(bytes: number): void;
  /** A stream SENDME, XON or XOFF arrived. Throws ProtocolError if it has no place here (wrong kind, over-credit, too early). */
  onFlowMsg(msg: StreamFlowMsg): void;
  /**
   * One DATA cell of `bytes` arrived and now waits, `buffered` bytes in all.
   * Returns a message to send back at once (XOFF), or null. Throws
   * ProtocolError if the peer overran the window or the buffer limit.
   */
  onDelivered(bytes: number, buffered: number): StreamFlowMsg | null;
  /**
   * The application is ready for more, with `buffered` bytes still waiting:
   * returns the next message owed to the peer (a stream SENDME, an XON), or
   * null. Call again until null.
   */
  takeFlowMsg(buffered: number): StreamFlowMsg | null;
}

/** Makes the flow-control state of each new circuit hop edge and stream. */
export interface FlowControlFactory {
  circuit(): CircuitFlowControl;
  stream(): StreamFlowControl;
}

/** A monotonic clock in milliseconds. */
export type Clock = () => number;

/**
 * Tor's fixed circuit windows: 1000 cells, a version-1 SENDME every 100
 * cells, each echoing the running digest after the cell that completed the
 * increment (checked against the oldest remembered one).
 */
export class FixedWindowCircuit implements CircuitFlowControl {
  readonly #start: number;
  readonly #package: PackageWindow;
  readonly #deliver: DeliverWindow;
  readonly #clock: Clock;
  /** Digest and send time of each of our DATA cells that ends an increment; each SENDME answers the oldest. */
  readonly #owed: Array<{ digest: Uint8Array; sentAt: number }> = [];
  #lastRtt: number | null = null;
  #minRtt: number | null = null;

  constructor(start = CIRCUIT_WINDOW_START, increment = CIRCUIT_SENDME_INCREMENT, clock: Clock = performance.now.bind(performance)) {
    this.#start = start;
    this.#package = new PackageWindow(start, increment);
    this.#deliver = new DeliverWindow(start, increment);
    this.#clock = clock;
  }

  canSend(): boolean {
    return this.#package.open;
  }

  sendableCells(): number {
    return this.#package.value;
  }

  onSent(digest: Uint8Array): void {
    if (this.#package.take()) this.#owed.push({ digest: digest.slice(), sentAt: this.#clock() });
  }

  onSendme(sendme: Sendme, _linkBlocked?: boolean): void {
    if (sendme.version !== 1 || sendme.digest === null) throw new ProtocolError('circuit SENDME without an authenticated digest');
    const expected = this.#owed[0];
    if (expected === undefined || !equalBytes(sendme.digest, expected.digest)) throw new ProtocolError('circuit SENDME digest mismatch');
    this.#package.credit();
    this.#owed.shift();
    const rtt = this.#clock() - expected.sentAt;
    this.#lastRtt = rtt;
    if (this.#minRtt === null || rtt < this.#minRtt) this.#minRtt = rtt;
  }

  onDelivered(receivedDigest: () => Uint8Array): Sendme | null {
    this.#deliver.take();
    if (!this.#deliver.sendmeDue) return null;
    this.#deliver.sentSendme();
    return { kind: 'sendme', version: 1, digest: receivedDigest() };
  }

  pacingDelayMs(): number {
    return 0;
  }

  snapshot(): CircuitFlowSnapshot {
    return {
      inflight: this.#start - this.#package.value,
      window: this.#start,
      lastRttMs: this.#lastRtt,
      minRttMs: this.#minRtt,
      algorithm: 'fixed',
      slowStart: false,
    };
  }
}

/** A stream SENDME (version 0, no digest), §7.1. */
export const STREAM_SENDME: Sendme = Object.freeze({ kind: 'sendme', version: 0, digest: null });

/** Tor's fixed stream windows: 500 cells, a version-0 SENDME for every 50 consumed. XON and XOFF have no place here. */
export class FixedWindowStream implements StreamFlowControl {
  readonly #package: PackageWindow;
  readonly #deliver: DeliverWindow;

  constructor(start = STREAM_WINDOW_START, increment = STREAM_SENDME_INCREMENT) {
    this.#package = new PackageWindow(start, increment);
    this.#deliver = new DeliverWindow(start, increment);
  }

  canSend(): boolean {
    return this.#package.open;
  }

  sendableCells(): number {
    return this.#package.value;
  }

  onSent(_bytes: number): void {
    this.#package.take();
  }

  onFlowMsg(msg: StreamFlowMsg): void {
    if (msg.kind !== 'sendme') throw new ProtocolError(`${msg.kind.toUpperCase()} on a circuit without congestion control`);
    this.#package.credit();
  }

  onDelivered(_bytes: number, _buffered: number): StreamFlowMsg | null {
    this.#deliver.take();
    return null;
  }

  takeFlowMsg(_buffered: number): StreamFlowMsg | null {
    if (!this.#deliver.sendmeDue) return null;
    this.#deliver.sentSendme();
    return STREAM_SENDME;
  }
}

/** Tor's fixed SENDME windows (§7.1): a hop whose handshake agreed on no congestion control. */
export const fixedWindows: FlowControlFactory = {
  circuit: () => new FixedWindowCircuit(),
  stream: () => new FixedWindowStream(),
};
