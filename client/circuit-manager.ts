/**
 * The client's circuits and streams (docs/protocol.md §11): the pool of
 * built circuits (./circuit-pool.ts), circuits built ahead for the ports in
 * use and for new isolation keys (./build-ahead.ts), streams attached by
 * isolation key (./isolation.ts), and streams retried on another circuit
 * where that is safe, within a bounded time (when: ./stream-retry.ts).
 *
 * Opening a stream: a dirty circuit of the stream's key whose exit accepts
 * the target, else a clean circuit (which the stream then claims), else a
 * circuit built for it. When BEGIN fails in a way another exit or circuit
 * may not (the exit refused by policy, could not resolve the name, timed
 * out, or was out of resources; the circuit was destroyed before
 * CONNECTED; no answer within the attempt time), the stream is tried again
 * on another circuit, avoiding that exit, until `streamTimeoutMs` after the
 * request; the caller gets an error only then, or for a failure no other
 * circuit would change (the destination refused the connection). Optimistic
 * data given with the request is sent behind BEGIN on every try.
 *
 * A name lookup (RESOLVE) takes a circuit the same way, as a request to the
 * name on RESOLVE_PORT, and is tried on another circuit when its circuit is
 * destroyed or its exit stays silent past the attempt time.
 */
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { hex } from '../src/bytes.js';
import { EndReason } from '../src/cell/reasons.js';
import type { ResolvedAnswer } from '../src/cell/stream-messages.js';
import { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import { AlliumError, StreamEndedError } from '../src/errors.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import type { Transport } from '../src/link/transport.js';
import type { Consensus } from '../src/netdoc/consensus.js';
import { BuildAhead, DEFAULT_PREEMPTIVE, type PreemptiveOptions } from './build-ahead.js';
import { BuildTimeoutEstimator } from './build-timeout.js';
import { CircuitBuilder, type BuildRequest, type BuiltCircuit } from './circuit-builder.js';
import { CircuitPool, type PooledCircuit } from './circuit-pool.js';
import { GuardSet, type GuardStatus } from './guard-set.js';
import { isolationKey, type IsolationOptions } from './isolation.js';
import { canExitTo, isUsable, type PathRelay, type RandomSource, type StreamTarget } from './path-selection.js';
import { PredictedPorts } from './predicted-ports.js';
import { RelayStatus } from './relay-status.js';
import {
  FATAL_BUILD_ERRORS,
  MAX_STREAM_ATTEMPTS,
  STREAM_ATTEMPT_TIMEOUT_MS,
  STREAM_TIMEOUT_MS,
  retryAfterBeginFailure,
  retryAfterResolveFailure,
} from './stream-retry.js';

export { DEFAULT_PREEMPTIVE, type PreemptiveOptions } from './build-ahead.js';
export { MAX_RESOLVE_FAILURES, MAX_STREAM_ATTEMPTS, STREAM_ATTEMPT_TIMEOUT_MS, STREAM_TIMEOUT_MS } from './stream-retry.js';

const debug = debuglog('allium:client');

/** Circuits (built and building) at most. */
export const MAX_CIRCUITS = 512;
/** RESOLVE requests take a circuit whose exit allows this port (docs/protocol.md §12.3). */
export const RESOLVE_PORT = 80;

/** Maintenance tick while no circuit is built yet / afterwards, ms. */
const TICK_STARTING_MS = 250;
const TICK_MS = 1000;

export interface CircuitManagerOptions {
  consensus: () => Consensus | null;
  /** The guard set (persisted by the caller); default a fresh in-memory one. */
  guards?: GuardSet;
  status?: RelayStatus;
  timeouts?: BuildTimeoutEstimator;
  /**
   * The counters stats() reads; default a fresh recorder. The client shares
   * one with its directory fetches through relays, so their one-hop circuits
   * and directory streams are counted with the rest.
   */
  stats?: CircuitStatsRecorder;
  /** A fixed circuit build timeout, ms: no learning. */
  fixedBuildTimeoutMs?: number;
  /** Guards over IPv6 and IPv6 between relays where they have it (CircuitBuilderOptions.preferIPv6). */
  preferIPv6?: boolean;
  /** How links to guards are dialled; default plain TCP. */
  transport?: Transport;
  random?: RandomSource;
  now?: () => number;
  isolation?: IsolationOptions;
  /** Default MAX_CIRCUIT_DIRTINESS_MS (10 min). */
  maxDirtinessMs?: number;
  /** Default STREAM_TIMEOUT_MS. */
  streamTimeoutMs?: number;
  /** Default STREAM_ATTEMPT_TIMEOUT_MS. */
  streamAttemptTimeoutMs?: number;
  preemptive?: Partial<PreemptiveOptions>;
  /** Called with each successful build time, ms. */
  onBuildTime?: (ms: number) => void;
  /** Called when a circuit build failed (every path it tried), while the manager is open: bootstrap problems. */
  onBuildFailed?: (error: Error) => void;
}

/** Options of one stream request (the programmatic API; SOCKS fills them from the request). */
export interface OpenStreamOptions {
  /** Isolation string: streams with different strings never share a circuit. Default ''. */
  isolation?: string;
  /**
   * Optimistic data (docs/protocol.md §6.4): bytes sent as DATA right behind
   * BEGIN, before CONNECTED; sent again with every retry on another circuit.
   */
  earlyData?: Uint8Array;
}

/** A built circuit as status output shows it (no isolation keys, no destinations). */
export interface CircuitInfo {
  id: number;
  /** clean: built ahead, unused; dirty: carrying streams of one isolation key; retired: takes no new streams. */
  purpose: 'clean' | 'dirty' | 'retired';
  path: { nickname: string; identity: string }[];
  builtAt: number;
  buildMs: number;
  dirtySince: number | null;
  streams: number;
}

/** An open stream (its target is shown only to whoever asks this API, never logged). */
export interface StreamInfo {
  id: number;
  circuitId: number;
  host: string;
  port: number;
  openedAt: number;
}

let nextStreamInfoId = 1;

export class CircuitManager {
  readonly #now: () => number;
  readonly #consensus: () => Consensus | null;
  /** Identities (hex) of the relays in the consensus last looked at, for #listed. */
  #listedIn: { consensus: Consensus; identities: Set<string> } | null = null;
  readonly #guards: GuardSet;
  readonly #status: RelayStatus;
  readonly #timeouts: BuildTimeoutEstimator;
  readonly #builder: CircuitBuilder;
  readonly #pool: CircuitPool;
  readonly #predicted: PredictedPorts;
  readonly #stats: CircuitStatsRecorder;
  readonly #isolation: IsolationOptions;
  readonly #streamTimeoutMs: number;
  readonly #attemptTimeoutMs: number;
  readonly #onBuildFailed: (error: Error) => void;
  readonly #streams = new Map<number, StreamInfo>();
  readonly #streamOf = new WeakMap<Duplex, StreamInfo>();
  /** Builds for streams under way, by isolation key and port (shared by identical requests). */
  readonly #onDemand = new Map<string, Promise<PooledCircuit>>();
  /** Clean circuits built ahead. */
  readonly #ahead: BuildAhead;
  #epoch = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #resolveReady!: () => void;
  /** Resolves when the first circuit is built. Never rejects. */
  readonly ready: Promise<void>;

  constructor(opts: CircuitManagerOptions) {
    this.#now = opts.now ?? Date.now;
    const random = opts.random ?? Math.random;
    this.#guards = opts.guards ?? new GuardSet(null, { now: this.#now, random });
    this.#stats = opts.stats ?? new CircuitStatsRecorder();
    this.#status = opts.status ?? new RelayStatus({ now: this.#now, random });
    this.#consensus = opts.consensus;
    this.#timeouts = opts.timeouts ?? new BuildTimeoutEstimator();
    this.#isolation = opts.isolation ?? {};
    this.#streamTimeoutMs = opts.streamTimeoutMs ?? STREAM_TIMEOUT_MS;
    this.#attemptTimeoutMs = opts.streamAttemptTimeoutMs ?? STREAM_ATTEMPT_TIMEOUT_MS;
    this.#onBuildFailed = opts.onBuildFailed ?? (() => {});
    this.#predicted = new PredictedPorts({ now: this.#now });
    this.#builder = new CircuitBuilder({
      consensus: opts.consensus,
      guards: this.#guards,
      status: this.#status,
      timeouts: this.#timeouts,
      ...(opts.fixedBuildTimeoutMs !== undefined ? { fixedTimeoutMs: opts.fixedBuildTimeoutMs } : {}),
      ...(opts.preferIPv6 === true ? { preferIPv6: true } : {}),
      stats: this.#stats,
      ...(opts.transport !== undefined ? { transport: opts.transport } : {}),
      random,
      now: this.#now,
      ...(opts.onBuildTime !== undefined ? { onBuildTime: opts.onBuildTime } : {}),
    });
    this.#pool = new CircuitPool({
      now: this.#now,
      ...(opts.maxDirtinessMs !== undefined ? { maxDirtinessMs: opts.maxDirtinessMs } : {}),
      onRemoved: () => this.#ahead.schedule(),
    });
    this.#ahead = new BuildAhead({
      options: { ...DEFAULT_PREEMPTIVE, ...opts.preemptive },
      pool: this.#pool,
      predicted: this.#predicted,
      now: this.#now,
      sync: () => this.#builder.sync(),
      build: (request) => this.#build(request),
      add: (built) => this.#add(built),
      onDemand: () => this.#onDemand.size,
      maxCircuits: MAX_CIRCUITS,
      closed: () => this.#closed,
    });
    this.ready = new Promise<void>((resolve) => (this.#resolveReady = resolve));
  }

  /** Start building circuits ahead (and so the first circuit) and keep the pool tidy, until close(). */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const tick = () => {
      this.#ahead.maintain();
      if (!this.#closed) this.#timer = setTimeout(tick, this.#pool.size > 0 ? TICK_MS : TICK_STARTING_MS);
    };
    tick();
  }

  /** The build timeout in force, ms (learned, or fixed by configuration). */
  get buildTimeoutMs(): number {
    return this.#builder.timeoutMs;
  }

  /**
   * Open a stream to host:port (hostnames resolved at the exit); see the
   * module comment. Rejects with StreamEndedError (the END reason that ended
   * the last try, or EXITPOLICY when no exit accepts the target), AlliumError
   * ERR_TIMEOUT when `streamTimeoutMs` ran out, ERR_NO_PATH without a
   * consensus or a usable path, ERR_RESOURCE_LIMIT with too many circuits.
   */
  async openStream(host: string, port: number, opts: OpenStreamOptions = {}): Promise<Duplex> {
    const target: StreamTarget = { host, port };
    const key = isolationKey(opts.isolation ?? '', host, port, this.#isolation, this.#epoch);
    const streamOpts = opts.earlyData !== undefined ? { earlyData: opts.earlyData } : {};
    let resolveFailures = 0;
    return this.#attempt(
      target,
      key,
      'stream',
      async (pc, timeoutMs) => this.#track(pc, await pc.circuit.openStream(host, port, timeoutMs, streamOpts), host, port),
      (error, pc, exit, refused) => {
        if (error instanceof StreamEndedError && error.reason === EndReason.RESOLVEFAILED) resolveFailures++;
        return retryAfterBeginFailure(this.#status, error, pc, exit, target, refused, resolveFailures);
      },
    );
  }

  /**
   * Ask an exit to resolve `hostname` (RESOLVE; an in-addr.arpa / ip6.arpa
   * name asks for a reverse lookup, docs/protocol.md §6.4) on a circuit of
   * `isolation`'s key whose exit allows RESOLVE_PORT. Resolves with the
   * RESOLVED answers (an error answer is an answer). A circuit destroyed
   * before the answer, or no answer within the attempt time, sends the
   * request to another circuit, until `streamTimeoutMs`. Rejects as
   * openStream() does, with AlliumError ERR_CONFIG for a name RESOLVE cannot
   * carry, or StreamEndedError when the exit ends the request.
   */
  async resolve(hostname: string, isolation = ''): Promise<ResolvedAnswer[]> {
    const target: StreamTarget = { host: hostname, port: RESOLVE_PORT };
    // A lookup has no port (Tor's port 0): IsolateDestPort keeps it apart from streams.
    const key = isolationKey(isolation, hostname, 0, this.#isolation, this.#epoch);
    return this.#attempt(
      target,
      key,
      'lookup',
      (pc, timeoutMs) => pc.circuit.resolve(hostname, timeoutMs),
      retryAfterResolveFailure,
    );
  }

  /**
   * Run `request` on a circuit for `target` and `key` (#circuitFor), on
   * another circuit after each failure `retry` allows (it may add the exit to
   * `refused`), within `streamTimeoutMs` and MAX_STREAM_ATTEMPTS tries.
   * Rejects with the last failure, or as #noCircuitError says when no
   * circuit could be had.
   */
  async #attempt<T>(
    target: StreamTarget,
    key: string,
    what: string,
    request: (pc: PooledCircuit, timeoutMs: number) => Promise<T>,
    retry: (error: unknown, pc: PooledCircuit, exit: PathRelay, refused: Set<string>) => boolean,
  ): Promise<T> {
    if (this.#closed) throw new AlliumError('ERR_CONFIG', 'client is closed');
    this.#predicted.use(target.port);
    const deadline = this.#now() + this.#streamTimeoutMs;
    const refused = new Set<string>();
    let lastError: unknown = new AlliumError('ERR_TIMEOUT', `${what} got no circuit in time`);
    for (let attempt = 0; attempt < MAX_STREAM_ATTEMPTS && this.#now() < deadline; attempt++) {
      let pc: PooledCircuit;
      try {
        pc = await this.#circuitFor(target, key, refused, deadline);
      } catch (error) {
        if (error instanceof AlliumError && FATAL_BUILD_ERRORS.has(error.code)) throw this.#noCircuitError(error, target, refused, lastError);
        // The builder tried several paths and every one failed: try again while there is time.
        lastError = error;
        continue;
      }
      const exit = pc.path[pc.path.length - 1]!;
      const left = deadline - this.#now();
      if (left <= 0) break;
      try {
        return await request(pc, Math.min(this.#attemptTimeoutMs, left));
      } catch (error) {
        lastError = error;
        if (!retry(error, pc, exit, refused)) throw error;
        debug('%s attempt %d failed (%s); trying another circuit', what, attempt + 1, (error as Error).message);
      }
    }
    throw lastError;
  }

  /** Every new stream from now on uses a circuit no earlier stream used (NEWNYM). */
  newnym(): void {
    this.#epoch++;
    const n = this.#pool.retireDirty();
    debug('newnym: %d circuits take no new streams', n);
    this.#ahead.schedule();
  }

  /**
   * Build a clean circuit now (exit accepting `port`, default 80) and add it
   * to the pool, e.g. for a controller's EXTENDCIRCUIT. Rejects as the builder does.
   */
  async buildCircuit(port = 80): Promise<CircuitInfo> {
    const built = await this.#build({ target: { port } });
    return this.#info(this.#add(built));
  }

  /** The built circuits, oldest first. */
  circuitStatus(): CircuitInfo[] {
    return this.#pool.all().filter((pc) => !pc.circuit.closed).map((pc) => this.#info(pc));
  }

  /** The open streams, oldest first. */
  streamStatus(): StreamInfo[] {
    return [...this.#streams.values()].map((s) => ({ ...s }));
  }

  /** What the manager knows of a stream openStream() returned (its circuit), while it is open. */
  streamInfo(stream: Duplex): StreamInfo | undefined {
    const info = this.#streamOf.get(stream);
    return info !== undefined && this.#streams.has(info.id) ? { ...info } : undefined;
  }

  /** The sampled guards and what the client knows about each. */
  guardStatus(): GuardStatus[] {
    this.#builder.sync();
    return this.#guards.status();
  }

  /** Completed build times remembered by the timeout estimator, ms, oldest first. */
  buildTimes(): number[] {
    return this.#timeouts.samples();
  }

  /** The client's links (to its guards): a read-only snapshot. */
  linkStats(): LinkStats {
    return this.#builder.linkStats();
  }

  /** A snapshot of this client's circuit and stream counters. */
  stats(): CircuitStats {
    return this.#stats.snapshot();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#pool.closeAll();
    this.#builder.close();
  }

  // ---- circuits for streams ----

  /**
   * Whether `exit` may carry a new stream to `target` that has not been
   * refused by it. As in Tor, a circuit whose exit the current consensus no
   * longer lists (it left, e.g. hibernating) takes no new streams.
   */
  #accepts(target: StreamTarget, refused: ReadonlySet<string>): (exit: PathRelay) => boolean {
    return (exit) => canExitTo(exit, target) && !refused.has(hex(exit.identity)) && !this.#status.exitRejects(exit, target) && this.#listed(exit);
  }

  /** Whether the current consensus lists `relay` (true while there is none). */
  #listed(relay: PathRelay): boolean {
    const consensus = this.#consensus();
    if (consensus === null) return true;
    if (this.#listedIn?.consensus !== consensus) this.#listedIn = { consensus, identities: new Set(consensus.relays.map((r) => hex(r.identity))) };
    return this.#listedIn.identities.has(hex(relay.identity));
  }

  async #circuitFor(target: StreamTarget, key: string, refused: ReadonlySet<string>, deadline: number): Promise<PooledCircuit> {
    const accepts = this.#accepts(target, refused);
    const dirty = this.#pool.findDirty(key, accepts);
    if (dirty !== undefined) return dirty;
    const clean = this.#pool.findClean(accepts);
    if (clean !== undefined) {
      this.#pool.claim(clean, key);
      this.#ahead.claimed();
      return clean;
    }
    // Requests alike (same key and port, nothing refused yet) share one build.
    const shareKey = refused.size === 0 ? `${key}\u0000${target.port}` : null;
    const shared = shareKey === null ? undefined : this.#onDemand.get(shareKey);
    if (shared !== undefined) {
      const pc = await shared;
      if (this.#pool.takesStreams(pc) && pc.isolation === key && accepts(pc.path[pc.path.length - 1]!)) return pc;
    }
    this.#makeRoom();
    const pending = this.#build({ target, refuseExit: (r) => !accepts(r), deadline })
      .then((built) => {
        const pc = this.#add(built);
        this.#pool.claim(pc, key);
        return pc;
      });
    if (shareKey !== null) {
      this.#onDemand.set(shareKey, pending);
      void pending.finally(() => this.#onDemand.delete(shareKey)).catch(() => {});
    }
    this.#ahead.schedule();
    return pending;
  }

  /** Stay within MAX_CIRCUITS: close idle dirty circuits, else refuse. */
  #makeRoom(): void {
    const limit = MAX_CIRCUITS - this.#ahead.building - this.#onDemand.size;
    if (this.#pool.size >= limit) this.#pool.trimIdle(limit - 1);
    if (this.#pool.size >= limit) throw new AlliumError('ERR_RESOURCE_LIMIT', `already ${MAX_CIRCUITS} circuits`);
  }

  /** The error a stream gets when no circuit could be had for it. */
  #noCircuitError(error: unknown, target: StreamTarget, refused: ReadonlySet<string>, lastError: unknown): unknown {
    if (error instanceof AlliumError && error.code === 'ERR_NO_PATH') {
      // Exits refused it one by one: report the last refusal.
      if (refused.size > 0) return lastError;
      const consensus = this.#builder.sync();
      if (consensus !== null && !consensus.relays.some((r) => isUsable(r) && canExitTo(r, target))) {
        return new StreamEndedError(EndReason.EXITPOLICY, `no exit relay allows port ${target.port}`);
      }
    }
    return error;
  }

  #track(pc: PooledCircuit, stream: Duplex, host: string, port: number): Duplex {
    const info: StreamInfo = { id: nextStreamInfoId++, circuitId: pc.id, host, port, openedAt: this.#now() };
    this.#streams.set(info.id, info);
    this.#streamOf.set(stream, info);
    pc.streams++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      this.#streams.delete(info.id);
      pc.streams--;
      if (!this.#pool.takesStreams(pc)) this.#ahead.schedule();
    };
    stream.once('close', finish);
    if (stream.destroyed) finish();
    return stream;
  }

  /** Every build goes through here, so that a failure reaches onBuildFailed. */
  #build(request: BuildRequest): Promise<BuiltCircuit> {
    return this.#builder.build(request).catch((error: unknown) => {
      if (!this.#closed) this.#onBuildFailed(error instanceof Error ? error : new Error(String(error)));
      throw error;
    });
  }

  #add(built: BuiltCircuit): PooledCircuit {
    const pc = this.#pool.add(built);
    this.#resolveReady();
    return pc;
  }

  #info(pc: PooledCircuit): CircuitInfo {
    return {
      id: pc.id,
      purpose: pc.isolation === null ? 'clean' : this.#pool.takesStreams(pc) ? 'dirty' : 'retired',
      path: pc.path.map((r) => ({ nickname: r.nickname, identity: hex(r.identity) })),
      builtAt: pc.builtAt,
      buildMs: pc.buildMs,
      dirtySince: pc.dirtySince,
      streams: pc.streams,
    };
  }
}
