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
import type { NetworkParams } from '../src/netdoc/params.js';
import { summaryAllowsPort } from '../src/netdoc/exit-policy.js';
import { DestroyReason, EndReason } from '../src/cell/reasons.js';
import { AlliumError, StreamEndedError } from '../src/errors.js';
import { choosePath, exitsForPort, type RandomSource } from './path-selection.js';
import { OriginCircuit } from './origin-circuit.js';
import { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import type { CircuitStats, LinkStats } from '../src/events.js';

const log = debuglog('allium:client');

export const LINK_TIMEOUT_MS = 10_000;
export const STREAM_CONNECT_TIMEOUT_MS = 30_000;
const BUILD_ATTEMPTS = 3;
/** A circuit takes no new streams after this long, as Tor's MaxCircuitDirtiness. */
const MAX_CIRCUIT_DIRTINESS_MS = 10 * 60_000;

interface Entry {
  circuit: OriginCircuit;
  exit: ConsensusRelay;
  builtAt: number;
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

  /** Open a stream to host:port through a circuit for `isolation`. */
  async openStream(host: string, port: number, isolation = ''): Promise<Duplex> {
    const entry = await this.circuitFor(port, isolation);
    return entry.circuit.openStream(host, port, STREAM_CONNECT_TIMEOUT_MS);
  }

  /** A built circuit for `isolation` whose exit allows `port`: reuse one or build one. */
  async circuitFor(port: number, isolation: string): Promise<Entry> {
    if (this.#closed) throw new AlliumError('ERR_CONFIG', 'client is closed');
    const now = Date.now();
    const usable = (this.#circuits.get(isolation) ?? []).find(
      (e) => !e.circuit.closed && now - e.builtAt < MAX_CIRCUIT_DIRTINESS_MS && summaryAllowsPort(e.exit.exitSummary, port),
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
        const circuit = await this.#build(path, consensus.params);
        const entry: Entry = { circuit, exit: path[2]!, builtAt: Date.now() };
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

  /** Build through `path`; `params` (the consensus's) decide whether each hop is asked for congestion control. */
  async #build(path: ConsensusRelay[], params: NetworkParams): Promise<OriginCircuit> {
    const guard = path[0]!;
    const channel = await this.#links.get({ address: guard.address, port: guard.orPort, identity: guard.identity, linkKey: guard.linkKey });
    return OriginCircuit.build(channel, this.#links.circuitsOf(channel), path, this.#buildTimeoutMs, { stats: this.#stats, params });
  }
}
