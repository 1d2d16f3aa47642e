/**
 * The counters behind a circuit manager's stats() (client or relay), fed by
 * the circuits, edges and streams it owns. src/events.ts defines the snapshot.
 */
import type { CircuitStats } from '../events.js';
import type { ByteMeter } from '../stream/relay-stream.js';

export class CircuitStatsRecorder implements ByteMeter {
  #open = 0;
  #built = 0;
  #destroyed = 0;
  #streams = 0;
  #streamsOpened = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #dirBytesIn = 0;
  #dirBytesOut = 0;

  /** The meter for directory streams (BEGIN_DIR), counted apart from application streams. */
  readonly directory: ByteMeter = {
    bytesIn: (n) => (this.#dirBytesIn += n),
    bytesOut: (n) => (this.#dirBytesOut += n),
  };

  /** A circuit finished building (origin) or was created (relay). */
  circuitBuilt(): void {
    this.#built++;
    this.#open++;
  }

  /** A circuit that was counted as built ended. */
  circuitDestroyed(): void {
    this.#destroyed++;
    this.#open--;
  }

  /** A stream opened (CONNECTED sent or received). */
  streamOpened(): void {
    this.#streamsOpened++;
    this.#streams++;
  }

  /** A stream counted by streamOpened() closed. */
  streamClosed(): void {
    this.#streams--;
  }

  bytesIn(n: number): void {
    this.#bytesIn += n;
  }

  bytesOut(n: number): void {
    this.#bytesOut += n;
  }

  /** A copy of the counters now. */
  snapshot(): CircuitStats {
    return {
      open: this.#open,
      built: this.#built,
      destroyed: this.#destroyed,
      streams: this.#streams,
      streamsOpened: this.#streamsOpened,
      streamBytesIn: this.#bytesIn,
      streamBytesOut: this.#bytesOut,
      dirBytesIn: this.#dirBytesIn,
      dirBytesOut: this.#dirBytesOut,
    };
  }
}
