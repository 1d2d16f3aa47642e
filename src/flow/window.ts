/**
 * SENDME windows as pure counters (docs/protocol.md §7). Only DATA cells
 * count. Going below zero or being credited above the start is a protocol
 * violation: the caller tears the circuit (or stream) down.
 */
import { ProtocolError } from '../errors.js';

/** How many more DATA cells we may send. */
export class PackageWindow {
  readonly #start: number;
  readonly #increment: number;
  #value: number;

  constructor(start: number, increment: number) {
    this.#start = start;
    this.#increment = increment;
    this.#value = start;
  }

  get value(): number {
    return this.#value;
  }

  get open(): boolean {
    return this.#value > 0;
  }

  /** Count one DATA cell sent. Returns true when this cell ends an increment (its digest must be remembered for v1 SENDMEs). */
  take(): boolean {
    if (this.#value <= 0) throw new ProtocolError('sent a DATA cell with an empty package window');
    this.#value--;
    return (this.#start - this.#value) % this.#increment === 0;
  }

  /** A SENDME arrived. */
  credit(): void {
    if (this.#value + this.#increment > this.#start) throw new ProtocolError('SENDME would overfill the package window');
    this.#value += this.#increment;
  }
}

/** How many more DATA cells the peer may send us. */
export class DeliverWindow {
  readonly #start: number;
  readonly #increment: number;
  #value: number;

  constructor(start: number, increment: number) {
    this.#start = start;
    this.#increment = increment;
    this.#value = start;
  }

  get value(): number {
    return this.#value;
  }

  /** Count one DATA cell received; a peer that overruns the window violated the protocol. */
  take(): void {
    if (this.#value <= 0) throw new ProtocolError('peer sent a DATA cell beyond the deliver window');
    this.#value--;
  }

  /** True while at least one SENDME is owed. */
  get sendmeDue(): boolean {
    return this.#value <= this.#start - this.#increment;
  }

  /** Record that a SENDME went out. */
  sentSendme(): void {
    this.#value += this.#increment;
  }
}
