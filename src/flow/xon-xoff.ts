/**
 * Stream flow control on a congestion-controlled hop (docs/protocol.md §7.4;
 * Tor proposal 324 §4): no stream windows and no stream SENDMEs. The receiver
 * sends XOFF once more than cc_xoff_* cells' worth of bytes wait for its
 * application, and XON (with the rate the application drained at since the
 * XOFF) once the application is ready for more; the sender stops between the
 * two. A client also checks that XOFFs and XONs are not more frequent than the
 * bytes it sent could cause (proposal 324 §4.1.4, against "dropmark" signals).
 */
import type { Xoff, Xon } from '../cell/relay-msg.js';
import { ProtocolError } from '../errors.js';
import type { CongestionParams } from './cc-params.js';
import type { StreamFlowControl, StreamFlowMsg } from './flow-control.js';
import { nEwma } from './rtt.js';

/** Which end of the stream this is: the client, or a relay (exit or directory). */
export type StreamSide = 'client' | 'relay';

/**
 * A stream whose peer ignores XOFF is cut off here: more than this many bytes
 * waiting for the application destroy the circuit. Far above any XOFF limit
 * plus what a sender's window can still have in flight when the XOFF lands.
 */
export const STREAM_BUFFER_HARD_LIMIT = 16 * 1024 * 1024;

const XOFF: Xoff = Object.freeze({ kind: 'xoff' });

/** A monotonic clock in milliseconds. */
export type MilliClock = () => number;

export class XonXoffStream implements StreamFlowControl {
  readonly #side: StreamSide;
  readonly #p: CongestionParams;
  readonly #clock: MilliClock;
  /** The peer said XOFF and has not said XON since. */
  #stopped = false;
  /** We said XOFF and have not said XON since. */
  #xoffSent = false;
  #xoffAt = 0;
  /** Bytes delivered in all, and the bytes consumed by the application when we said XOFF. */
  #deliveredBytes = 0;
  #consumedAtXoff = 0;
  /** Drain-rate average carried by our XONs, 1000 bytes/s. */
  #drainRate = 0;
  /** Dropmark accounting (client): bytes we sent, XOFFs and XONs received. */
  #sentBytes = 0;
  #xoffsReceived = 0;
  #xonsReceived = 0;
  /** The rate the peer's last XON advised (1000 bytes/s; 0 = none). Advisory only: Allium does not pace to it. */
  advisedRate = 0;

  constructor(side: StreamSide, params: CongestionParams, clock: MilliClock = performance.now.bind(performance)) {
    this.#side = side;
    this.#p = params;
    this.#clock = clock;
  }

  canSend(): boolean {
    return !this.#stopped;
  }

  sendableCells(): number {
    return this.#stopped ? 0 : Infinity;
  }

  onSent(bytes: number): void {
    if (this.#stopped) throw new ProtocolError('sent a DATA cell on a stream the peer stopped (XOFF)');
    this.#sentBytes += bytes;
  }

  onFlowMsg(msg: StreamFlowMsg): void {
    switch (msg.kind) {
      case 'sendme':
        throw new ProtocolError('stream SENDME on a congestion-controlled circuit');
      case 'xoff':
        if (this.#stopped) throw new ProtocolError('XOFF on a stream already stopped');
        this.#xoffsReceived++;
        this.#checkEarly(this.#xoffsReceived, this.#p.xoffExitBytes, 'XOFF');
        this.#stopped = true;
        return;
      case 'xon':
        this.#xonsReceived++;
        this.#checkEarly(this.#xonsReceived, Math.min(this.#p.xoffExitBytes, this.#p.xonRateBytes), 'XON');
        this.#stopped = false;
        this.advisedRate = msg.kbpsEwma;
        return;
    }
  }

  onDelivered(bytes: number, buffered: number): StreamFlowMsg | null {
    if (buffered > STREAM_BUFFER_HARD_LIMIT) throw new ProtocolError(`stream buffer over ${STREAM_BUFFER_HARD_LIMIT} bytes: the peer ignored XOFF`);
    this.#deliveredBytes += bytes;
    if (this.#xoffSent || buffered <= this.#xoffLimit) return null;
    this.#xoffSent = true;
    this.#xoffAt = this.#clock();
    this.#consumedAtXoff = this.#deliveredBytes - buffered;
    return XOFF;
  }

  takeFlowMsg(buffered: number): StreamFlowMsg | null {
    if (!this.#xoffSent || buffered > this.#xoffLimit) return null;
    this.#xoffSent = false;
    const drained = this.#deliveredBytes - buffered - this.#consumedAtXoff;
    const ms = Math.max(1, this.#clock() - this.#xoffAt);
    // bytes per ms = 1000 bytes per second.
    const rate = Math.max(1, Math.min(0xffff_ffff, Math.floor(drained / ms)));
    this.#drainRate = nEwma(rate, this.#drainRate, this.#p.xonEwmaCnt);
    const xon: Xon = { kind: 'xon', kbpsEwma: this.#drainRate };
    return xon;
  }

  get #xoffLimit(): number {
    return this.#side === 'client' ? this.#p.xoffClientBytes : this.#p.xoffExitBytes;
  }

  /** A client refuses the `n`-th XOFF/XON before it sent n × `perMessage` bytes (proposal 324 §4.1.4). */
  #checkEarly(n: number, perMessage: number, what: string): void {
    if (this.#side === 'client' && this.#sentBytes < n * perMessage) {
      throw new ProtocolError(`${what} number ${n} after only ${this.#sentBytes} bytes sent`);
    }
  }
}

