/**
 * The client's circuits (docs/protocol.md §11): one link per guard (a link
 * manager, dialling through a transport, plain TCP by default), circuits
 * kept per isolation key (SOCKS credentials, as in Tor) and reused for every
 * stream whose port their exit allows, new circuits built on demand with a
 * fresh path, and a failed build retried a bounded number of times.
 */
import { debuglog } from 'node:util';
import type { Duplex } from 'node:stream';
import { LinkManager } from '../src/link/link-manager.js';
import { TcpTransport, type Transport } from '../src/link/transport.js';
import type { Consensus, ConsensusRelay } from '../src/netdoc/consensus.js';
import { summaryAllowsPort } from '../src/netdoc/exit-policy.js';
import { DestroyReason, EndReason } from '../src/cell/reasons.js';
import { AlliumError, StreamEndedError } from '../src/errors.js';
import { choosePath, exitsForPort, type RandomSource } from './path-selection.js';
import { OriginCircuit } from './origin-circuit.js';
import { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import type { CircuitStats, LinkStats } from '../src/events.js';
import type { ResolvedAnswer } from '../src/cell/stream-messages.js';
import { hex } from '../src/bytes.js';

const log = debuglog('allium:client');

export const LINK_TIMEOUT_MS = 10_000;
export const STREAM_CONNECT_TIMEOUT_MS = 30_000;
const BUILD_ATTEMPTS = 3;
/** A circuit takes no new streams after this long, as Tor's MaxCircuitDirtiness. */
const MAX_CIRCUIT_DIRTINESS_MS = 10 * 60_000;
/** A RESOLVE waits at most this long for RESOLVED, ms. */
export const RESOLVE_TIMEOUT_MS = 30_000;
/** RESOLVE requests take a circuit whose exit allows this port (any exit answers RESOLVE). */
const RESOLVE_PORT = 80;

interface Entry {
  circuit: OriginCircuit;
  path: ConsensusRelay[];
  exit: ConsensusRelay;
  builtAt: number;
  buildMs: number;
  /** When the first stream used it; null while clean. */
  dirtySince: number | null;
  /** NEWNYM retired it: it takes no new streams. */
  retired: boolean;
}

/** A built circuit as status output shows it (no isolation keys, no destinations). */
export interface CircuitInfo {
  /** The circuit's process-unique event id (src/events.ts). */
  id: number;
  /** clean: built, unused; dirty: carrying streams; retired: takes no new streams. */
  purpose: 'clean' | 'dirty' | 'retired';
  path: { nickname: string; identity: string }[];
  /** ms since the epoch. */
  builtAt: number;
  buildMs: number;
  dirtySince: number | null;
  streams: number;
}

export class CircuitManager {
  readonly #getConsensus: () => Consensus | null;
  readonly #buildTimeoutMs: number;
  readonly #random: RandomSource;
  readonly #links: LinkManager<OriginCircuit>;
  readonly #circuits = new Map<string, Entry[]>();
  readonly #building = new Map<string, Promise<Entry>>();
  readonly #stats = new CircuitStatsRecorder();
  #closed = false;

  /** `transport`: how links to guards are dialled; default plain TCP. */
  constructor(opts: { consensus: () => Consensus | null; buildTimeoutMs: number; random?: RandomSource; transport?: Transport }) {
    this.#getConsensus = opts.consensus;
    this.#buildTimeoutMs = opts.buildTimeoutMs;
    this.#random = opts.random ?? Math.random;
    this.#links = new LinkManager<OriginCircuit>({
      transport: opts.transport ?? new TcpTransport(),
      handler: {
        onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
        onLinkClosed: (slot) => slot.circuit.linkClosed(),
      },
      dialTimeoutMs: LINK_TIMEOUT_MS,
    });
  }

  /** The client's links (to its guards): a read-only snapshot. */
  linkStats(): LinkStats {
    return this.#links.stats();
  }

  /**
   * Open a stream to host:port through a circuit for `isolation`;
   * `earlyData` goes out as optimistic data right after BEGIN.
   */
  async openStream(host: string, port: number, isolation = '', earlyData?: Uint8Array): Promise<Duplex> {
    const entry = await this.circuitFor(port, isolation);
    entry.dirtySince ??= Date.now();
    return entry.circuit.openStream(host, port, STREAM_CONNECT_TIMEOUT_MS, earlyData !== undefined ? { earlyData } : {});
  }

  /**
   * Resolve `hostname` at the exit of a circuit for `isolation` (RESOLVE; an
   * in-addr.arpa / ip6.arpa name asks for a reverse lookup). Resolves with
   * the RESOLVED answers; rejects as circuitFor() and OriginCircuit.resolve() do.
   */
  async resolve(hostname: string, isolation = ''): Promise<ResolvedAnswer[]> {
    const entry = await this.circuitFor(RESOLVE_PORT, isolation);
    entry.dirtySince ??= Date.now();
    return entry.circuit.resolve(hostname, RESOLVE_TIMEOUT_MS);
  }

  /** Every new stream from now on uses a circuit no earlier stream used (NEWNYM): every current circuit retires. */
  newnym(): void {
    for (const entries of this.#circuits.values()) for (const e of entries) e.retired = true;
    log('newnym: every circuit retired');
  }

  /** Build a new circuit now (exit allowing `port`, default 80) for the default isolation key, and report it. */
  async buildCircuit(port = 80): Promise<CircuitInfo> {
    return this.#info(await this.#buildWithRetries(port, ''));
  }

  /** The built circuits, oldest first. */
  circuitStatus(): CircuitInfo[] {
    const all = [...this.#circuits.values()].flat().filter((e) => !e.circuit.closed);
    return all.sort((a, b) => a.builtAt - b.builtAt).map((e) => this.#info(e));
  }

  #info(e: Entry): CircuitInfo {
    const retired = e.retired || Date.now() - e.builtAt >= MAX_CIRCUIT_DIRTINESS_MS;
    return {
      id: e.circuit.eventId,
      purpose: retired ? 'retired' : e.dirtySince === null ? 'clean' : 'dirty',
      path: e.path.map((r) => ({ nickname: r.nickname, identity: hex(r.identity) })),
      builtAt: e.builtAt,
      buildMs: e.buildMs,
      dirtySince: e.dirtySince,
      streams: e.circuit.streamCount,
    };
  }

  /** A built circuit for `isolation` whose exit allows `port`: reuse one or build one. */
  async circuitFor(port: number, isolation: string): Promise<Entry> {
    if (this.#closed) throw new AlliumError('ERR_CONFIG', 'client is closed');
    const now = Date.now();
    const usable = (this.#circuits.get(isolation) ?? []).find(
      (e) => !e.circuit.closed && !e.retired && now - e.builtAt < MAX_CIRCUIT_DIRTINESS_MS && summaryAllowsPort(e.exit.exitSummary, port),
    );
    if (usable !== undefined) return usable;
    const key = `${isolation}\u0000${port}`;
    let pending = this.#building.get(key);
    if (pending === undefined) {
      pending = this.#buildWithRetries(port, isolation).finally(() => this.#building.delete(key));
      this.#building.set(key, pending);
    }
    return pending;
  }

  /** A snapshot of this client's circuit and stream counters. */
  stats(): CircuitStats {
    return this.#stats.snapshot();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const entries of this.#circuits.values()) for (const e of entries) e.circuit.destroy(DestroyReason.FINISHED, 'client closing');
    this.#circuits.clear();
    this.#links.close();
  }

  async #buildWithRetries(port: number, isolation: string): Promise<Entry> {
    let lastError: unknown;
    for (let attempt = 0; attempt < BUILD_ATTEMPTS; attempt++) {
      const consensus = this.#getConsensus();
      if (consensus === null) throw new AlliumError('ERR_NO_PATH', 'no consensus yet');
      if (exitsForPort(consensus.relays, port).length === 0) {
        throw new StreamEndedError(EndReason.EXITPOLICY, `no exit relay allows port ${port}`);
      }
      const path = choosePath(consensus.relays, port, this.#random);
      try {
        const started = Date.now();
        const circuit = await this.#build(path);
        const builtAt = Date.now();
        const entry: Entry = { circuit, path, exit: path[2]!, builtAt, buildMs: builtAt - started, dirtySince: null, retired: false };
        const list = this.#circuits.get(isolation) ?? [];
        list.push(entry);
        this.#circuits.set(isolation, list);
        circuit.onClose(() => {
          const current = this.#circuits.get(isolation);
          if (current === undefined) return;
          const rest = current.filter((e) => e !== entry);
          if (rest.length === 0) this.#circuits.delete(isolation);
          else this.#circuits.set(isolation, rest);
        });
        return entry;
      } catch (error) {
        lastError = error;
        log('circuit build failed (attempt %d): %s', attempt + 1, (error as Error).message);
      }
    }
    throw lastError;
  }

  async #build(path: ConsensusRelay[]): Promise<OriginCircuit> {
    const guard = path[0]!;
    const channel = await this.#links.get({ address: guard.address, port: guard.orPort, identity: guard.identity, linkKey: guard.linkKey });
    return OriginCircuit.build(channel, this.#links.circuitsOf(channel), path, this.#buildTimeoutMs, { stats: this.#stats });
  }
}
