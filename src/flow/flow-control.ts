/**
 * Flow control behind one interface per circuit hop and one per stream
 * (docs/protocol.md §7), so that the fixed SENDME windows of today and a
 * congestion-control algorithm later (Tor proposal 324, "Vegas") are two
 * implementations that the edge, the circuit and the stream never tell apart.
 *
 * What an implementation sees, per circuit hop, is everything Vegas needs:
 * every DATA cell sent (with the running digest after it and the time), every
 * circuit SENDME received (with the time, so the round trip of the cell that
 * asked for it can be measured), and every DATA cell delivered. It decides
 * when the hop may send (a window or a congestion window against the cells in
 * flight) and when to answer with a SENDME.
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
import type { Sendme } from '../cell/relay-msg.js';
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
  /** Smallest such round trip seen (ms); null before the first. */
  minRttMs: number | null;
}

/**
 * Flow control for one circuit hop, at one edge (both directions).
 * Sending side: canSend() / onSent() / onSendme(). Receiving side: onDelivered().
 */
export interface CircuitFlowControl {
  /** True if one more DATA cell may go out on this hop now. */
  canSend(): boolean;
  /**
   * One DATA cell went out. `digest` is the running digest (§4) of the
   * sending layer right after it, which a version-1 SENDME may echo. Throws
   * ProtocolError if canSend() was false (a bug in the caller).
   */
  onSent(digest: Uint8Array): void;
  /** A circuit SENDME arrived. Throws ProtocolError if none was owed or it does not authenticate. */
  onSendme(sendme: Sendme): void;
  /**
   * One DATA cell arrived (counted even if its stream is gone). Returns the
   * SENDME to send back now, or null. `receivedDigest` gives the running
   * digest of the receiving layer right after this cell; it is called only when
   * a SENDME is due. Throws ProtocolError if the peer overran the window.
   */
  onDelivered(receivedDigest: () => Uint8Array): Sendme | null;
  snapshot(): CircuitFlowSnapshot;
}

/**
 * Flow control for one stream (both directions). DATA cells count against it
 * as well as against the circuit hop.
 */
export interface StreamFlowControl {
  /** True if one more DATA cell may go out on this stream now. */
  canSend(): boolean;
  /** One DATA cell went out. Throws ProtocolError if canSend() was false. */
  onSent(): void;
  /** A stream SENDME arrived. Throws ProtocolError on over-credit. */
  onSendme(): void;
  /** One DATA cell arrived for this stream. Throws ProtocolError if the peer overran the window. */
  onDelivered(): void;
  /**
   * The application has consumed what arrived: if a stream SENDME is owed
   * now, record it as sent and return true (call again until false).
   */
  takeSendme(): boolean;
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

  onSent(digest: Uint8Array): void {
    if (this.#package.take()) this.#owed.push({ digest, sentAt: this.#clock() });
  }

  onSendme(sendme: Sendme): void {
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

  snapshot(): CircuitFlowSnapshot {
    return { inflight: this.#start - this.#package.value, window: this.#start, lastRttMs: this.#lastRtt, minRttMs: this.#minRtt };
  }
}

/** Tor's fixed stream windows: 500 cells, a version-0 SENDME for every 50 consumed. */
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

  onSent(): void {
    this.#package.take();
  }

  onSendme(): void {
    this.#package.credit();
  }

  onDelivered(): void {
    this.#deliver.take();
  }

  takeSendme(): boolean {
    if (!this.#deliver.sendmeDue) return false;
    this.#deliver.sentSendme();
    return true;
  }
}

/** Today's flow control: Tor's fixed SENDME windows (§7). */
export const fixedWindows: FlowControlFactory = {
  circuit: () => new FixedWindowCircuit(),
  stream: () => new FixedWindowStream(),
};
