/**
 * Building one circuit (docs/protocol.md §11.3): choose a path (exit first,
 * the guard from the guard set, then a middle; ./path-selection.ts), open or
 * reuse the link to the guard, build hop by hop within the learned build
 * timeout, and on failure try a new path, at most `attempts` times.
 *
 * Every failure is put where it belongs:
 * - the guard's link cannot be opened, or is lost → the guard is down (guard
 *   set retry schedule) and avoided in every position (relay status);
 * - a DESTROY while extending to hop k for a relay-fault reason (the
 *   previous hop could not connect to it, it refused, it was overloaded, the
 *   extend timed out) → hop k is avoided;
 * - our own build timeout → counted by the timeout estimator, nobody blamed.
 * A hop that was added counts as a success for that relay.
 */
import { debuglog } from 'node:util';
import { hex } from '../src/bytes.js';
import { DestroyReason } from '../src/cell/reasons.js';
import type { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import { AlliumError, CircuitDestroyedError } from '../src/errors.js';
import type { Channel } from '../src/link/channel.js';
import { LinkManager } from '../src/link/link-manager.js';
import { TcpTransport, type Transport } from '../src/link/transport.js';
import type { Consensus } from '../src/netdoc/consensus.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import type { LinkStats } from '../src/events.js';
import type { BuildTimeoutEstimator } from './build-timeout.js';
import type { GuardSet } from './guard-set.js';
import { OriginCircuit } from './origin-circuit.js';
import { choosePathAvoiding } from './path-avoiding.js';
import { choosePath, type PathRelay, type RandomSource, type StreamTarget } from './path-selection.js';
import { positionWeightsFor, type PositionWeights } from './position-weights.js';
import type { RelayStatus } from './relay-status.js';

const debug = debuglog('allium:client');

/** Time limit for opening a link to a guard (transport connect + handshake), ms. */
export const LINK_TIMEOUT_MS = 10_000;
/** Paths tried for one build request. */
export const BUILD_ATTEMPTS = 3;

/** DESTROY reasons that say the relay being extended to is at fault (down, refusing, overloaded). */
const RELAY_FAULT_REASONS: ReadonlySet<number> = new Set([
  DestroyReason.CONNECTFAILED,
  DestroyReason.OR_IDENTITY,
  DestroyReason.CHANNEL_CLOSED,
  DestroyReason.RESOURCELIMIT,
  DestroyReason.HIBERNATING,
  DestroyReason.TIMEOUT,
  DestroyReason.INTERNAL,
]);

export interface BuildRequest {
  /** The exit must accept this (port; host too when it is an address). */
  target: StreamTarget;
  /** Exits not to use for this request. */
  refuseExit?: (relay: PathRelay) => boolean;
  /** Paths to try; default BUILD_ATTEMPTS. */
  attempts?: number;
  /** Give up (ERR_TIMEOUT) when this time (ms since the epoch) has come. */
  deadline?: number;
}

export interface BuiltCircuit {
  circuit: OriginCircuit;
  /** [guard, middle, exit]. */
  path: PathRelay[];
  builtAt: number;
  /** How long the successful attempt took, ms. */
  buildMs: number;
}

export interface CircuitBuilderOptions {
  consensus: () => Consensus | null;
  guards: GuardSet;
  status: RelayStatus;
  /** Learned timeout; ignored when `fixedTimeoutMs` is set. */
  timeouts: BuildTimeoutEstimator;
  /** A fixed build timeout, ms (no learning). */
  fixedTimeoutMs?: number;
  stats: CircuitStatsRecorder;
  transport?: Transport;
  random?: RandomSource;
  now?: () => number;
  /** Called with each successful three-hop build time, ms (to persist it). */
  onBuildTime?: (ms: number) => void;
  /**
   * Dial a guard at its IPv6 OR address when it has one, and ask relays that
   * both have one to extend over IPv6 (origin-circuit.ts extendSpecifiers). Default false: IPv4.
   */
  preferIPv6?: boolean;
}

export class CircuitBuilder {
  readonly #o: CircuitBuilderOptions;
  readonly #now: () => number;
  readonly #random: RandomSource;
  readonly #links: LinkManager<OriginCircuit>;
  readonly #watched = new WeakSet<Channel>();
  #consensus: Consensus | null = null;
  #weights: PositionWeights | null = null;
  #closed = false;

  constructor(opts: CircuitBuilderOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#links = new LinkManager<OriginCircuit>({
      transport: opts.transport ?? new TcpTransport(),
      handler: {
        onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
        onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells),
        onLinkClosed: (slot) => slot.circuit.linkClosed(),
      },
      dialTimeoutMs: LINK_TIMEOUT_MS,
    });
  }

  /** The build timeout in force, ms. */
  get timeoutMs(): number {
    return this.#o.fixedTimeoutMs ?? this.#o.timeouts.timeoutMs;
  }

  /** The client's links (to its guards): a read-only snapshot. */
  linkStats(): LinkStats {
    return this.#links.stats();
  }

  /**
   * Bring the guard set and relay status up to date with the consensus in
   * use (cheap when it did not change). Returns it, or null before the first.
   */
  sync(): Consensus | null {
    const consensus = this.#o.consensus();
    if (consensus !== null && consensus !== this.#consensus) {
      this.#consensus = consensus;
      this.#weights = positionWeightsFor(consensus);
      this.#o.guards.onConsensus(consensus.relays, this.#weights);
      this.#o.status.onConsensus(consensus.relays);
    }
    return consensus;
  }

  /**
   * Build a circuit whose exit accepts `request.target`, trying new paths
   * on failure. Rejects with the last attempt's error: ERR_NO_PATH when the
   * consensus offers no path, ERR_TIMEOUT past `request.deadline`, or what
   * the last build failed with.
   */
  async build(request: BuildRequest): Promise<BuiltCircuit> {
    const attempts = request.attempts ?? BUILD_ATTEMPTS;
    let lastError: unknown = new AlliumError('ERR_NO_PATH', 'no attempt made');
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (this.#closed) throw new AlliumError('ERR_CONFIG', 'client is closed');
      if (request.deadline !== undefined && this.#now() >= request.deadline) {
        throw new AlliumError('ERR_TIMEOUT', 'no circuit could be built in time', { cause: lastError });
      }
      const consensus = this.sync();
      if (consensus === null) throw new AlliumError('ERR_NO_PATH', 'no consensus yet');
      const path = this.#choose(consensus, request);
      try {
        return await this.#attempt(path, request.deadline, consensus.params);
      } catch (error) {
        lastError = error;
        debug('circuit build failed (attempt %d): %s', attempt + 1, (error as Error).message);
      }
    }
    throw lastError;
  }

  close(): void {
    this.#closed = true;
    this.#links.close();
  }

  /** A path, avoiding relays that failed recently as far as that still leaves one. */
  #choose(consensus: Consensus, request: BuildRequest): PathRelay[] {
    const base = {
      random: this.#random,
      weights: this.#weights!,
      ...(request.refuseExit !== undefined ? { refuseExit: request.refuseExit } : {}),
      chooseGuard: (compatible: (r: PathRelay) => boolean) => this.#o.guards.choose(compatible),
    };
    // Every path needing a relay that failed recently: the oldest failures are tried again first (path-avoiding.ts).
    return choosePathAvoiding(consensus.relays, this.#o.status, (avoid) => choosePath(consensus.relays, request.target, { ...base, avoid }));
  }

  /** Build through `path`; `params` (the consensus's) decide whether each hop is asked for congestion control (§7.2). */
  async #attempt(path: PathRelay[], deadline: number | undefined, params: NetworkParams): Promise<BuiltCircuit> {
    const guard = path[0]!;
    const started = this.#now();
    let channel: Channel;
    try {
      const at = this.#o.preferIPv6 === true && guard.orAddress6 !== undefined ? guard.orAddress6 : { address: guard.address, port: guard.orPort };
      channel = await this.#links.get({ ...at, identity: guard.identity, linkKey: guard.linkKey });
    } catch (error) {
      if (!this.#closed) this.#guardFailed(guard, `link: ${(error as Error).message}`);
      throw error;
    }
    this.#watch(channel, guard);
    let hops = 0;
    const fixed = this.#o.fixedTimeoutMs;
    const timeoutMs = Math.max(1, Math.min(this.timeoutMs, deadline === undefined ? Infinity : deadline - this.#now()));
    try {
      const circuit = await OriginCircuit.build(channel, this.#links.circuitsOf(channel), path, timeoutMs, {
        stats: this.#o.stats,
        params,
        preferIPv6: this.#o.preferIPv6 === true,
        onHop: (n) => {
          hops = n;
          if (n === 1) this.#o.guards.markSucceeded(guard);
          this.#o.status.markSucceeded(path[n - 1]!);
        },
      });
      const buildMs = this.#now() - started;
      if (fixed === undefined) this.#o.timeouts.recordBuild(buildMs);
      this.#o.onBuildTime?.(buildMs);
      return { circuit, path, builtAt: this.#now(), buildMs };
    } catch (error) {
      if (this.#closed) throw error;
      if (error instanceof AlliumError && error.code === 'ERR_TIMEOUT') {
        if (fixed === undefined && timeoutMs >= this.timeoutMs) this.#o.timeouts.recordTimeout();
      } else if (channel.closed) {
        // The link to the guard went away under the build (watch() marks the guard).
      } else if (error instanceof CircuitDestroyedError && RELAY_FAULT_REASONS.has(error.reason) && hops < path.length) {
        const culprit = path[hops]!;
        if (hops === 0) this.#guardFailed(guard, `CREATE2 refused (reason ${error.reason})`);
        else this.#o.status.markFailed(culprit, `extend failed (reason ${error.reason})`);
        debug('relay %s (%s) avoided: extend to it failed with reason %d', culprit.nickname, hex(culprit.identity).slice(0, 8), error.reason);
      }
      throw error;
    }
  }

  #guardFailed(guard: PathRelay, why: string): void {
    this.#o.status.markFailed(guard, why);
    this.#o.guards.markFailed(guard, why);
  }

  /** When a link to a guard closes without our asking, the guard is down. */
  #watch(channel: Channel, guard: PathRelay): void {
    if (this.#watched.has(channel)) return;
    this.#watched.add(channel);
    channel.once('close', (err?: Error) => {
      if (this.#closed) return;
      this.#guardFailed(guard, `link lost${err !== undefined ? `: ${err.message}` : ''}`);
    });
  }
}
