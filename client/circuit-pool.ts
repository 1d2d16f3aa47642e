/**
 * The client's built circuits and what each may still carry
 * (docs/protocol.md §11.5-§11.6):
 * - **clean**: built ahead, no stream yet, no isolation key; the first
 *   stream that takes it fixes its key and makes it dirty;
 * - **dirty**: carries streams of one isolation key; takes new streams of
 *   that key until `maxDirtinessMs` after it became dirty;
 * - **retired**: takes no new streams (NEWNYM, a stream that timed out on it,
 *   or past its dirtiness); closed once its last stream ends.
 * `sweep()` closes circuits that are done: retired or too dirty with no
 * streams left, and clean circuits unused for `cleanMaxAgeMs`.
 *
 * Time is injected; the pool only reads it.
 */
import { DestroyReason } from '../src/cell/reasons.js';
import type { BuiltCircuit } from './circuit-builder.js';
import type { OriginCircuit } from './origin-circuit.js';
import type { PathRelay } from './path-selection.js';

export interface PooledCircuit {
  /** Process-unique number (the circuit's eventId). */
  readonly id: number;
  readonly circuit: OriginCircuit;
  /** [guard, middle, exit]. */
  readonly path: readonly PathRelay[];
  readonly builtAt: number;
  readonly buildMs: number;
  /** The isolation key of its streams, or null while clean. */
  isolation: string | null;
  /** When its first stream was attached, or null while clean. */
  dirtySince: number | null;
  retired: boolean;
  /** Streams open on it now. */
  streams: number;
}

export interface CircuitPoolOptions {
  now?: () => number;
  /** A dirty circuit takes no new streams after this long, ms. Default 10 min (Tor's MaxCircuitDirtiness). */
  maxDirtinessMs?: number;
  /** A clean circuit nobody used is closed after this long, ms. Default 1 h. */
  cleanMaxAgeMs?: number;
  /** Called when a circuit leaves the pool (closed by anyone). */
  onRemoved?: (circuit: PooledCircuit) => void;
}

export const MAX_CIRCUIT_DIRTINESS_MS = 10 * 60_000;
export const CLEAN_MAX_AGE_MS = 60 * 60_000;

export class CircuitPool {
  readonly #now: () => number;
  readonly #maxDirtinessMs: number;
  readonly #cleanMaxAgeMs: number;
  readonly #onRemoved: (circuit: PooledCircuit) => void;
  readonly #circuits = new Set<PooledCircuit>();

  constructor(opts: CircuitPoolOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#maxDirtinessMs = opts.maxDirtinessMs ?? MAX_CIRCUIT_DIRTINESS_MS;
    this.#cleanMaxAgeMs = opts.cleanMaxAgeMs ?? CLEAN_MAX_AGE_MS;
    this.#onRemoved = opts.onRemoved ?? (() => {});
  }

  get size(): number {
    return this.#circuits.size;
  }

  /** Add a freshly built circuit, clean; it leaves the pool when it closes. */
  add(built: BuiltCircuit): PooledCircuit {
    const pc: PooledCircuit = {
      id: built.circuit.eventId,
      circuit: built.circuit,
      path: built.path,
      builtAt: built.builtAt,
      buildMs: built.buildMs,
      isolation: null,
      dirtySince: null,
      retired: false,
      streams: 0,
    };
    this.#circuits.add(pc);
    built.circuit.onClose(() => {
      if (this.#circuits.delete(pc)) this.#onRemoved(pc);
    });
    if (built.circuit.closed && this.#circuits.delete(pc)) this.#onRemoved(pc);
    return pc;
  }

  /** Every circuit in the pool, oldest first. */
  all(): PooledCircuit[] {
    return [...this.#circuits];
  }

  /** Whether `pc` takes new streams (open, not retired, not past its dirtiness). */
  takesStreams(pc: PooledCircuit): boolean {
    if (pc.circuit.closed || pc.retired) return false;
    return pc.dirtySince === null || this.#now() - pc.dirtySince < this.#maxDirtinessMs;
  }

  /** The most recently dirtied circuit of `isolation` that takes streams and whose exit `accepts`. */
  findDirty(isolation: string, accepts: (exit: PathRelay) => boolean): PooledCircuit | undefined {
    let best: PooledCircuit | undefined;
    for (const pc of this.#circuits) {
      if (pc.isolation !== isolation || !this.takesStreams(pc) || !accepts(pc.path[pc.path.length - 1]!)) continue;
      if (best === undefined || pc.dirtySince! > best.dirtySince!) best = pc;
    }
    return best;
  }

  /** The oldest clean circuit whose exit `accepts`. */
  findClean(accepts: (exit: PathRelay) => boolean): PooledCircuit | undefined {
    for (const pc of this.#circuits) {
      if (pc.isolation === null && this.takesStreams(pc) && accepts(pc.path[pc.path.length - 1]!)) return pc;
    }
    return undefined;
  }

  /** Clean circuits that take streams (and whose exit `accepts`, if given). */
  cleanCount(accepts?: (exit: PathRelay) => boolean): number {
    let n = 0;
    for (const pc of this.#circuits) {
      if (pc.isolation === null && this.takesStreams(pc) && (accepts === undefined || accepts(pc.path[pc.path.length - 1]!))) n++;
    }
    return n;
  }

  /** Bind a clean circuit to `isolation`: it is dirty from now on. */
  claim(pc: PooledCircuit, isolation: string): void {
    if (pc.isolation !== null) throw new Error('circuit already claimed');
    pc.isolation = isolation;
    pc.dirtySince = this.#now();
  }

  /** NEWNYM: every dirty circuit takes no new streams. Returns how many were retired. */
  retireDirty(): number {
    let n = 0;
    for (const pc of this.#circuits) {
      if (pc.isolation !== null && !pc.retired) {
        pc.retired = true;
        n++;
      }
    }
    return n;
  }

  /** Close every circuit that is done (see the module comment). Returns how many were closed. */
  sweep(): number {
    const now = this.#now();
    let n = 0;
    for (const pc of [...this.#circuits]) {
      if (pc.circuit.closed) {
        if (this.#circuits.delete(pc)) this.#onRemoved(pc);
        continue;
      }
      const done =
        pc.isolation === null ? now - pc.builtAt >= this.#cleanMaxAgeMs : pc.streams === 0 && !this.takesStreams(pc);
      if (done) {
        pc.circuit.destroy(DestroyReason.FINISHED, pc.isolation === null ? 'clean circuit unused too long' : 'circuit retired');
        n++;
      }
    }
    return n;
  }

  /** Close the oldest idle dirty circuits (no streams) until at most `size` remain or none is idle. Returns how many. */
  trimIdle(size: number): number {
    let n = 0;
    for (const pc of [...this.#circuits]) {
      if (this.#circuits.size <= size) break;
      if (pc.isolation !== null && pc.streams === 0) {
        pc.circuit.destroy(DestroyReason.FINISHED, 'too many circuits');
        n++;
      }
    }
    return n;
  }

  /** Close every circuit. */
  closeAll(reason: number = DestroyReason.FINISHED): void {
    for (const pc of [...this.#circuits]) pc.circuit.destroy(reason, 'client closing');
  }
}
