/**
 * Circuits built ahead (docs/protocol.md §11): the client keeps clean
 * circuits ready for the ports it predicts and for new isolation keys,
 * within bounds, backing off when builds fail. CircuitManager
 * (circuit-manager.ts) owns the pool and the builder and tells this module
 * when the pool changed.
 */
import { debuglog } from 'node:util';
import { DestroyReason } from '../src/cell/reasons.js';
import type { Consensus } from '../src/netdoc/consensus.js';
import type { BuildRequest, BuiltCircuit } from './circuit-builder.js';
import type { CircuitPool } from './circuit-pool.js';
import { canExitTo } from './path-selection.js';
import type { PredictedPorts } from './predicted-ports.js';

const debug = debuglog('allium:client');

/** Circuits built ahead. */
export interface PreemptiveOptions {
  /** Clean circuits kept per predicted port. Default 2. */
  cleanPerPort: number;
  /** Clean circuits kept in any case (for new isolation keys). Default 2. */
  minClean: number;
  /** Clean circuits (built and building) at most. Default 8. */
  maxClean: number;
  /** Builds ahead under way at once, at most. Default 3. */
  maxBuilding: number;
}

export const DEFAULT_PREEMPTIVE: PreemptiveOptions = { cleanPerPort: 2, minClean: 2, maxClean: 8, maxBuilding: 3 };

/**
 * After a stream claims a clean circuit, its replacement is built this much
 * later (when another clean circuit is left), so that the build's work does
 * not delay the new stream's first bytes, ms.
 */
const CLAIM_TOPUP_DELAY_MS = 250;
/** Builds ahead that fail back off from this to PREEMPTIVE_BACKOFF_MAX_MS. */
const PREEMPTIVE_BACKOFF_MS = 250;
const PREEMPTIVE_BACKOFF_MAX_MS = 15_000;

/** What building ahead needs of its CircuitManager. */
export interface BuildAheadDeps {
  options: PreemptiveOptions;
  pool: CircuitPool;
  predicted: PredictedPorts;
  now: () => number;
  /** The consensus the builder uses now (CircuitBuilder.sync), null without one. */
  sync: () => Consensus | null;
  /** Build a circuit (failures reported as the manager reports them). */
  build: (request: BuildRequest) => Promise<BuiltCircuit>;
  /** Add a built circuit to the pool. */
  add: (built: BuiltCircuit) => void;
  /** Builds for streams under way. */
  onDemand: () => number;
  /** Circuits (built and building) at most. */
  maxCircuits: number;
  closed: () => boolean;
}

export class BuildAhead {
  readonly #deps: BuildAheadDeps;
  /** Builds ahead under way: their target ports. */
  readonly #ahead = new Set<{ port: number }>();
  #maintainScheduled = false;
  #backoffMs = 0;
  #notBefore = 0;
  /** No builds ahead before this time while a clean circuit is left (see CLAIM_TOPUP_DELAY_MS). */
  #holdUntil = 0;

  constructor(deps: BuildAheadDeps) {
    this.#deps = deps;
  }

  /** Builds ahead under way. */
  get building(): number {
    return this.#ahead.size;
  }

  /** A stream claimed a clean circuit: top the clean ones up, a little later if one is left. */
  claimed(): void {
    const d = this.#deps;
    if (d.pool.cleanCount() > 0) {
      this.#holdUntil = d.now() + CLAIM_TOPUP_DELAY_MS;
      setTimeout(() => this.schedule(), CLAIM_TOPUP_DELAY_MS).unref();
    } else {
      this.schedule();
    }
  }

  /** Run maintain() at the end of this turn (once however often asked). */
  schedule(): void {
    if (this.#maintainScheduled || this.#deps.closed()) return;
    this.#maintainScheduled = true;
    setImmediate(() => {
      this.#maintainScheduled = false;
      this.maintain();
    });
  }

  /** Close what is done, then launch builds ahead while the pool lacks clean circuits for a predicted port. */
  maintain(): void {
    const d = this.#deps;
    if (d.closed()) return;
    d.pool.sweep();
    const consensus = d.sync();
    if (consensus === null) return;
    if (d.now() < this.#notBefore) return;
    if (d.now() < this.#holdUntil && d.pool.cleanCount() > 0) return;
    const p = d.options;
    // Ports no exit allows (a request that failed with EXITPOLICY) get no builds ahead.
    const ports = d.predicted.current().filter((port) => consensus.relays.some((r) => canExitTo(r, { port })));
    const wanted: number[] = [];
    const aheadFor = (port: number) => [...this.#ahead].filter((a) => a.port === port).length;
    for (const port of ports) {
      const have = d.pool.cleanCount((exit) => canExitTo(exit, { port })) + aheadFor(port);
      for (let i = have; i < p.cleanPerPort; i++) wanted.push(port);
    }
    const clean = () => d.pool.cleanCount() + this.#ahead.size;
    let extra = p.minClean - clean() - wanted.length;
    while (extra-- > 0) wanted.push(ports[0] ?? 80);
    for (const port of wanted) {
      if (this.#ahead.size >= p.maxBuilding || clean() >= p.maxClean) break;
      if (d.pool.size + this.#ahead.size + d.onDemand() >= d.maxCircuits) break;
      this.#buildAhead(port);
    }
  }

  #buildAhead(port: number): void {
    const d = this.#deps;
    const slot = { port };
    this.#ahead.add(slot);
    d.build({ target: { port } }).then(
      (built) => {
        this.#ahead.delete(slot);
        this.#backoffMs = 0;
        if (d.closed()) {
          built.circuit.destroy(DestroyReason.FINISHED, 'client closing');
          return;
        }
        d.add(built);
        this.schedule();
      },
      (error: unknown) => {
        this.#ahead.delete(slot);
        if (d.closed()) return;
        this.#backoffMs = Math.min(PREEMPTIVE_BACKOFF_MAX_MS, Math.max(PREEMPTIVE_BACKOFF_MS, this.#backoffMs * 2));
        this.#notBefore = d.now() + this.#backoffMs;
        debug('building ahead failed (%s); next try in %d ms', (error as Error).message, this.#backoffMs);
      },
    );
  }
}
