/**
 * The application streams of one client as its operator sees them (the
 * control port's `stream-status` and STREAM events, docs/control-port.md):
 * each request from the SOCKS port, the HTTP tunnel or the programmatic API,
 * from NEW to CLOSED, with its target.
 *
 * Targets are destinations: they live only here, in memory, for the control
 * port, whose users authenticated as the operator. They never go to logs,
 * to the process-wide event channels (src/events.ts) or to metrics.
 */

/** Tor's StreamStatus values that Allium reports (control-spec §4.1.2). */
export type StreamStatus = 'NEW' | 'NEWRESOLVE' | 'SUCCEEDED' | 'FAILED' | 'CLOSED';

/** How the application reached the client: Tor's CLIENT_PROTOCOL values (UNKNOWN: the programmatic API). */
export type ClientProtocol = 'SOCKS4' | 'SOCKS5' | 'HTTPCONNECT' | 'UNKNOWN';

export interface AppStream {
  /** Control-port stream id: process-unique, never reused, never a wire stream id. */
  readonly id: number;
  status: StreamStatus;
  /** The event id of the circuit carrying it (src/events.ts); 0 before it is attached, and for lookups. */
  circuitId: number;
  /** The target as the application named it (a lookup's name, with port 0). */
  readonly host: string;
  readonly port: number;
  readonly protocol: ClientProtocol;
  readonly purpose: 'connect' | 'resolve';
  /** The END reason (src/cell/reasons.ts) once it failed or closed; null before. */
  reason: number | null;
}

/** Most streams tracked at once; beyond it new streams are still served but not listed (a bound on memory). */
export const MAX_TRACKED_STREAMS = 4096;

let nextId = 1;

export class StreamTable {
  readonly #live = new Map<number, AppStream>();
  readonly #listeners: Array<(stream: Readonly<AppStream>) => void> = [];

  /** Streams from NEW until they fail or close, oldest first (copies). */
  list(): AppStream[] {
    return [...this.#live.values()].map((s) => ({ ...s }));
  }

  /** Call `listener` with a copy of a stream each time its status changes; returns the function that removes it. */
  onChange(listener: (stream: Readonly<AppStream>) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /** A new request: NEW (connect) or NEWRESOLVE (lookup). */
  add(host: string, port: number, protocol: ClientProtocol, purpose: AppStream['purpose']): AppStream {
    const stream: AppStream = {
      id: nextId++,
      status: purpose === 'connect' ? 'NEW' : 'NEWRESOLVE',
      circuitId: 0,
      host,
      port,
      protocol,
      purpose,
      reason: null,
    };
    if (this.#live.size < MAX_TRACKED_STREAMS) this.#live.set(stream.id, stream);
    this.#emit(stream);
    return stream;
  }

  /** The stream is open (CONNECTED) on circuit `circuitId`, or the lookup answered. */
  succeeded(stream: AppStream, circuitId: number): void {
    if (stream.status === 'FAILED' || stream.status === 'CLOSED') return;
    stream.status = 'SUCCEEDED';
    stream.circuitId = circuitId;
    this.#emit(stream);
  }

  /** The request failed before it was open; `reason` is the END reason that best says why. */
  failed(stream: AppStream, reason: number): void {
    if (stream.status === 'FAILED' || stream.status === 'CLOSED') return;
    stream.status = 'FAILED';
    stream.reason = reason;
    this.#live.delete(stream.id);
    this.#emit(stream);
  }

  /** An open stream ended. */
  closed(stream: AppStream, reason: number): void {
    if (stream.status === 'FAILED' || stream.status === 'CLOSED') return;
    stream.status = 'CLOSED';
    stream.reason = reason;
    this.#live.delete(stream.id);
    this.#emit(stream);
  }

  #emit(stream: AppStream): void {
    if (this.#listeners.length === 0) return;
    const copy = { ...stream };
    for (const listener of [...this.#listeners]) listener(copy);
  }
}
