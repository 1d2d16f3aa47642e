/**
 * The relay's memory cap for queued data, in the spirit of C tor's
 * MaxMemInQueues (docs/protocol.md §3.6): the bytes a relay holds in cell
 * queues (every link's outgoing queue) and in its streams' buffers are
 * accounted; above `capBytes` the relay frees the circuits whose oldest
 * queued cell is oldest — their queued cells are dropped and they are
 * destroyed with RESOURCELIMIT — until it is back under `lowWaterBytes`.
 * Each such event is logged once and counted.
 *
 * A circuit's age is that of its oldest cell still queued on any of its
 * links, or of its streams' held bytes if older: since when they have made
 * no progress (RelayStream.heldSince), so a stream that flows is young
 * however full its buffers, and a stuck one ages. The check runs
 * every `checkIntervalMs` and whenever `check()` is called.
 */
import { totalmem } from 'node:os';
import { debuglog } from 'node:util';
import { DestroyReason } from '../src/cell/reasons.js';
import type { Channel } from '../src/link/channel.js';
import type { LinkManager } from '../src/link/link-manager.js';
import type { RelayCircuit } from './relay-circuit.js';

const log = debuglog('allium:relay');

/** The default cap: an eighth of the machine's memory, between 64 MiB and 4 GiB. */
export function defaultMemoryCap(): number {
  return Math.max(64 * 1024 * 1024, Math.min(4 * 1024 ** 3, Math.floor(totalmem() / 8)));
}

export interface MemoryCapOptions {
  /** Bytes of queued cells and stream buffers above which circuits are freed. Default defaultMemoryCap(). */
  capBytes?: number;
  /** Free circuits until the total is at most this. Default 3/4 of the cap. */
  lowWaterBytes?: number;
  /** How often the total is checked, ms; 0: only when check() is called. Default 250. */
  checkIntervalMs?: number;
}

export interface MemoryCapStats {
  capBytes: number;
  /** Bytes queued at the last check. */
  queuedBytes: number;
  /** Times the cap was exceeded. */
  oomEvents: number;
  /** Circuits freed by the cap. */
  circuitsFreed: number;
  /** Bytes freed by dropping queued cells and stream buffers. */
  bytesFreed: number;
}

interface Victim {
  circuit: RelayCircuit;
  since: number;
  /** Where it has cells queued: link and the circuit id on it. */
  queues: Array<{ link: Channel; id: number }>;
}

export class MemoryCap {
  readonly capBytes: number;
  readonly lowWaterBytes: number;
  readonly #links: LinkManager<RelayCircuit>;
  #timer: NodeJS.Timeout | null = null;
  #stats = { queuedBytes: 0, oomEvents: 0, circuitsFreed: 0, bytesFreed: 0 };

  constructor(links: LinkManager<RelayCircuit>, opts: MemoryCapOptions = {}) {
    this.#links = links;
    this.capBytes = opts.capBytes ?? defaultMemoryCap();
    this.lowWaterBytes = Math.min(this.capBytes, opts.lowWaterBytes ?? Math.floor((this.capBytes * 3) / 4));
    const every = opts.checkIntervalMs ?? 250;
    if (every > 0) {
      this.#timer = setInterval(() => this.check(), every);
      this.#timer.unref();
    }
  }

  /** Bytes held now in link queues and stream buffers. */
  queuedBytes(): number {
    let total = 0;
    for (const link of this.#links.openLinks()) {
      total += link.queuedBytes;
      for (const slot of this.#links.circuitsOf(link).all()) if (slot.side === 'prev') total += slot.circuit.streamBytes();
    }
    return total;
  }

  /** Check the total now; over the cap, free the oldest circuits. Returns the bytes freed. */
  check(): number {
    const total = this.queuedBytes();
    this.#stats.queuedBytes = total;
    if (total <= this.capBytes) return 0;
    this.#stats.oomEvents++;
    let left = total;
    let freed = 0;
    let circuits = 0;
    for (const victim of this.#victims()) {
      if (left <= this.lowWaterBytes) break;
      let bytes = victim.circuit.streamBytes();
      for (const q of victim.queues) bytes += q.link.dropQueuedCells(q.id);
      victim.circuit.destroy(DestroyReason.RESOURCELIMIT, 'out of memory for queued cells');
      left -= bytes;
      freed += bytes;
      circuits++;
    }
    this.#stats.circuitsFreed += circuits;
    this.#stats.bytesFreed += freed;
    log('memory cap: %d bytes queued, over the cap of %d; freed %d circuits holding the oldest data (%d bytes)', total, this.capBytes, circuits, freed);
    return freed;
  }

  stats(): MemoryCapStats {
    return { capBytes: this.capBytes, ...this.#stats };
  }

  /** Stop the periodic check. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Circuits holding queued data, oldest first. */
  #victims(): Victim[] {
    const byCircuit = new Map<RelayCircuit, Victim>();
    const now = performance.now();
    for (const link of this.#links.openLinks()) {
      const table = this.#links.circuitsOf(link);
      for (const [id, q] of link.queuedByCircuit()) {
        const slot = table.get(id);
        if (slot === undefined || slot.circuit.closed) continue;
        let v = byCircuit.get(slot.circuit);
        if (v === undefined) {
          v = { circuit: slot.circuit, since: Math.min(q.since, slot.circuit.streamHeldSince() ?? Infinity), queues: [] };
          byCircuit.set(slot.circuit, v);
        }
        v.since = Math.min(v.since, q.since);
        v.queues.push({ link, id });
      }
      for (const slot of table.all()) {
        if (slot.side !== 'prev' || slot.circuit.closed) continue;
        if (byCircuit.has(slot.circuit) || slot.circuit.streamBytes() === 0) continue;
        byCircuit.set(slot.circuit, { circuit: slot.circuit, since: slot.circuit.streamHeldSince() ?? now, queues: [] });
      }
    }
    return [...byCircuit.values()].sort((a, b) => a.since - b.since);
  }
}
