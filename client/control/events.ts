/**
 * The control port's asynchronous events (Tor's control-spec §4.1;
 * docs/control-port.md), built from what the client publishes:
 *
 * - CIRC BUILT / CLOSED from the `allium:circuit:built` and
 *   `allium:circuit:destroyed` diagnostics channels (src/events.ts), with
 *   the path looked up in the client's circuit list; circuits the client
 *   does not list (another role in the same process) are not reported.
 * - STREAM from the client's stream table (client/stream-table.ts), which
 *   alone knows targets (they never go through the process-wide channels).
 * - BW once a second: bytes read and written on the client's links in that
 *   second (cells × 514).
 * - STATUS_CLIENT BOOTSTRAP, and NOTICE / WARN log lines, from the
 *   bootstrap tracker (client/bootstrap.ts).
 * - SIGNAL NEWNYM when a controller sends it.
 *
 * Each event is one line: the event name and the text after `650 `.
 */
import { subscribe } from '../../src/events.js';
import { CELL_LENGTH } from '../../src/constants.js';
import type { LinkStats } from '../../src/events.js';
import type { BootstrapTracker } from '../bootstrap.js';
import { describeBootstrap, describeBootstrapProblem } from '../bootstrap.js';
import type { CircuitInfo } from '../circuit-manager.js';
import type { StreamTable } from '../stream-table.js';
import { bootstrapLine, circuitLine, streamLine } from './format.js';

/** One asynchronous event: its name (for SETEVENTS filtering) and its line after `650 `. */
export interface ControlEvent {
  name: string;
  text: string;
}

/** Where the events come from: the client's parts. */
export interface ControlEventInputs {
  circuits(): CircuitInfo[];
  streams: StreamTable;
  bootstrap: BootstrapTracker;
  linkStats(): LinkStats;
  /** BW interval, ms; default 1000. */
  bwIntervalMs?: number;
}

/** A running source of control events; close() stops every subscription and timer. */
export interface ControlEventSource {
  onEvent(listener: (event: ControlEvent) => void): () => void;
  /** Emit an event from the control port itself (SIGNAL). */
  emit(event: ControlEvent): void;
  close(): void;
}

export function startControlEvents(inputs: ControlEventInputs): ControlEventSource {
  const listeners: Array<(event: ControlEvent) => void> = [];
  const emit = (event: ControlEvent) => {
    for (const l of [...listeners]) l(event);
  };
  const stops: Array<() => void> = [];
  /** Circuits reported BUILT, by id: only these get CLOSED. */
  const reported = new Map<number, CircuitInfo>();

  stops.push(
    subscribe('allium:circuit:built', (e) => {
      if (e.role !== 'origin') return;
      // The manager lists the circuit once build() has returned to it: look after this turn.
      setImmediate(() => {
        const info = inputs.circuits().find((c) => c.id === e.circuitId);
        if (info === undefined || reported.has(info.id)) return;
        reported.set(info.id, info);
        emit({ name: 'CIRC', text: `CIRC ${circuitLine(info, 'BUILT')}` });
      });
    }),
  );
  stops.push(
    subscribe('allium:circuit:destroyed', (e) => {
      if (e.role !== 'origin') return;
      const info = reported.get(e.circuitId);
      if (info === undefined) return;
      reported.delete(e.circuitId);
      emit({ name: 'CIRC', text: `CIRC ${circuitLine(info, 'CLOSED', { reason: e.reason, remote: e.remote })}` });
    }),
  );
  stops.push(inputs.streams.onChange((s) => emit({ name: 'STREAM', text: `STREAM ${streamLine(s, true)}` })));
  stops.push(
    inputs.bootstrap.onChange((change) => {
      emit({ name: 'STATUS_CLIENT', text: `STATUS_CLIENT ${bootstrapLine(change.status)}` });
      if (change.kind === 'progress') emit({ name: 'NOTICE', text: `NOTICE ${describeBootstrap(change.status)}` });
      else emit({ name: 'WARN', text: `WARN ${describeBootstrapProblem(change.status)}` });
    }),
  );

  let last = inputs.linkStats();
  const bw = setInterval(() => {
    const now = inputs.linkStats();
    const read = Math.max(0, now.cellsIn - last.cellsIn) * CELL_LENGTH;
    const written = Math.max(0, now.cellsOut - last.cellsOut) * CELL_LENGTH;
    last = now;
    emit({ name: 'BW', text: `BW ${read} ${written}` });
  }, inputs.bwIntervalMs ?? 1000);
  bw.unref();
  stops.push(() => clearInterval(bw));

  return {
    onEvent(listener) {
      listeners.push(listener);
      return () => {
        const i = listeners.indexOf(listener);
        if (i >= 0) listeners.splice(i, 1);
      };
    },
    emit,
    close() {
      for (const stop of stops) stop();
      stops.length = 0;
      listeners.length = 0;
    },
  };
}
