/**
 * The relay's memory cap for queued data, in the spirit of C tor's
 * MaxMemInQueues (docs/protocol.md §3.6): the bytes a relay holds to send on
 * its links (Channel.heldBytes: the frame buffers of the outgoing cell queue,
 * and what each link's socket holds unsent in its own write buffer) and in
 * its streams' buffers (with the exit's destination sockets') are accounted;
 * above `capBytes` the relay frees the circuits whose oldest queued cell is
 * oldest — their queued cells are dropped and they are destroyed with
 * RESOURCELIMIT — until it is back under `lowWaterBytes`. Bytes a link's
 * socket holds unsent cannot be recalled, so a client's link (an anonymous
 * peer) whose socket pushes back is a candidate too, as old as its socket
 * has pushed back (Channel.sendBlockedSince), holding those bytes, its queue
 * and its circuits' streams: freeing it closes the link (its circuits go
 * with it). A relay's link is never closed that way, since it carries many
 * clients' circuits: only its circuits are freed, one by one. Any link left
 * without circuits by the freeing whose socket still holds unsent bytes is
 * closed. Each such event is logged once and counted.
 *
 * The state of what holds those bytes is accounted too, at a fixed estimate
 * per open link, circuit (on its previous hop's side) and stream
 * (`stateBytes`, DEFAULT_STATE_BYTES): the objects Node and V8 keep for each
 * (a stream's RelayStream and its destination socket, a circuit's crypto
 * and tables, a link's framing) and the collector's headroom for them. Under
 * many stuck streams that state is as large as their queued bytes, so
 * without it the process could hold twice its cap. Freeing a circuit or
 * link frees its state too; state alone frees nothing: a check over the cap
 * with nothing holding data to free is not an event. Each byte held in
 * buffers counts with the allocator's share on top (`bufferOverhead`,
 * DEFAULT_BUFFER_OVERHEAD): glibc's heap, where Buffers of 40 KiB or less live,
 * keeps and fragments what they free.
 *
 * A circuit's age is that of its oldest cell still queued on any of its
 * links, or of its streams' held bytes if older: since when they have made
 * no progress (RelayStream.heldSince), so a stream that flows is young
 * however full its buffers, and a stuck one ages. The check runs
 * every `checkIntervalMs`, in the event-loop turn after any link of the
 * process becomes congested (a step of about CHANNEL_HIGH_WATER more queued:
 * so a burst of stuck links is seen before the next tick; not with
 * checkIntervalMs 0), and whenever `check()` is called.
 *
 * Bytes dropped, or sent after waiting a while, sit in buffers V8 frees
 * only in a full collection, which it starts by itself only after 64 MiB
 * more. They are memory the process holds all the same, so they count:
 * each check looks at the bytes of live and dead ArrayBuffers the count
 * does not explain (process.memoryUsage().arrayBuffers less the total
 * without its state, which is not held in ArrayBuffers), and what exceeds
 * their lowest level since the last collection is added to the total as
 * garbage not yet collected (MemoryCapStats.garbageBytes). When garbage
 * alone takes the total over the cap, a full collection is requested
 * first (src/collect-garbage.ts, at most once per `gcIntervalMs`) and
 * nothing is freed; circuits are freed only when that cannot help now.
 * Above the low-water mark, a collection is also requested once the
 * garbage reaches `gcMarginBytes`. Below it none is: V8's own schedule is
 * cheaper, and a relay forwarding at full speed has tens of MiB of frames
 * in flight that a fixed margin would mistake for garbage (with an 8 MiB
 * margin, bench/relay-load.bench.ts saw about four full collections a
 * second and 3.50 µs of relay CPU per cell against 2.41 without them).
 */
import { totalmem } from 'node:os';
import { debuglog } from 'node:util';
import { DestroyReason } from '../src/cell/reasons.js';
import { AlliumError } from '../src/errors.js';
import { onLinkCongested } from '../src/circuit/channel-room.js';
import type { Channel } from '../src/link/channel.js';
import type { LinkManager } from '../src/link/link-manager.js';
import { collectGarbage } from '../src/collect-garbage.js';
import type { RelayCircuit } from './relay-circuit.js';

const log = debuglog('allium:relay');

/** The default cap: an eighth of the machine's memory, between 64 MiB and 4 GiB. */
export function defaultMemoryCap(): number {
  return Math.max(64 * 1024 * 1024, Math.min(4 * 1024 ** 3, Math.floor(totalmem() / 8)));
}

/**
 * The accounted memory of each open link, circuit and stream, in bytes
 * (MemoryCapOptions.stateBytes). Measured on Node 20 under
 * bench/mem-cap.bench.ts (2,048 streams on 1,024 circuits on 128 links):
 * the relay's RSS above its idle RSS and its queued bytes was 44 MiB, about
 * 16 KiB per stream with 4 KiB per circuit and 32 KiB per link.
 */
export const DEFAULT_STATE_BYTES: Readonly<StateBytes> = Object.freeze({ link: 32 * 1024, circuit: 4 * 1024, stream: 16 * 1024 });

/**
 * Bytes accounted per byte held in buffers, on top of it (MemoryCapOptions.
 * bufferOverhead): queued cells live in Buffers of 40 KiB or less, which glibc's
 * malloc serves from its heap with a header each and keeps, fragmented, when
 * they are freed. Measured under bench/mem-cap.bench.ts (64 MiB cap): the
 * heap grew to about 45 MiB while the Buffers alive or dead were about 31
 * MiB, and the highest RSS was 0.3 under to 9 MiB over idle + cap with 0,
 * 1.5 under to 0.9 over with 0.25, 2.1 to 5.0 under with 0.5 (4 runs).
 */
export const DEFAULT_BUFFER_OVERHEAD = 0.5;

/** How long the garbage estimate is used again by the checks congested links ask for (ms); the periodic check always reads. */
const GARBAGE_READ_MS = 20;

/** Accounted bytes per open link, circuit (previous hop's side) and stream. */
export interface StateBytes {
  link: number;
  circuit: number;
  stream: number;
}

export interface MemoryCapOptions {
  /** Accounted bytes (queued cells, stream buffers, state: queuedBytes()) above which circuits are freed. Default defaultMemoryCap(). */
  capBytes?: number;
  /** Accounted bytes of each open link, circuit and stream's own state; default DEFAULT_STATE_BYTES (0s: queued bytes only). */
  stateBytes?: Partial<StateBytes>;
  /**
   * Bytes accounted on top of each byte held in buffers, for what holding
   * them costs the allocator (DEFAULT_BUFFER_OVERHEAD); 0: the bytes alone.
   */
  bufferOverhead?: number;
  /** Free circuits until the total is at most this. Default 3/4 of the cap. */
  lowWaterBytes?: number;
  /** How often the total is checked, ms (and after a link becomes congested); 0: only when check() is called. Default 100. */
  checkIntervalMs?: number;
  /**
   * Garbage not yet collected (ArrayBuffer bytes the count does not explain,
   * above their lowest level since the last collection) at which a full
   * collection is requested while the total is above the low-water mark, so
   * dead buffers go back to the system now rather than when V8 gets round to
   * it (src/collect-garbage.ts). Default an eighth of the cap, at least
   * 8 MiB; 0: garbage is neither counted nor collected.
   */
  gcMarginBytes?: number;
  /** At most one collection per this many ms. Default 250. */
  gcIntervalMs?: number;
  /** How a collection is requested; default collectGarbage (src/collect-garbage.ts). */
  collectGarbage?: () => boolean;
  /** Bytes held in ArrayBuffers now; default process.memoryUsage().arrayBuffers. */
  arrayBufferBytes?: () => number;
}

export interface MemoryCapStats {
  capBytes: number;
  /** Bytes accounted at the last check (queuedBytes()), garbage not included. */
  queuedBytes: number;
  /** Garbage not yet collected at the last check, counted toward the cap on top of queuedBytes. */
  garbageBytes: number;
  /** Times the cap was exceeded. */
  oomEvents: number;
  /** Circuits freed by the cap. */
  circuitsFreed: number;
  /** Links closed by the cap: their sockets pushed back longest, or they were left without circuits while holding unsent bytes. */
  linksClosed: number;
  /** Bytes freed by dropping queued cells and stream buffers, with the state of the circuits, streams and links freed (stateBytes). */
  bytesFreed: number;
  /** Full garbage collections requested (gcMarginBytes). */
  collections: number;
}

/** A client's link whose socket pushes back: freeing it closes it. */
interface LinkVictim {
  kind: 'link';
  link: Channel;
  since: number;
}

interface Victim {
  kind: 'circuit';
  circuit: RelayCircuit;
  since: number;
  /** Where it has cells queued: link and the circuit id on it. */
  queues: Array<{ link: Channel; id: number }>;
  /** The links it is on (where it holds cells or streams). */
  links: Set<Channel>;
}

export class MemoryCap {
  readonly capBytes: number;
  readonly lowWaterBytes: number;
  readonly #links: LinkManager<RelayCircuit>;
  readonly #state: StateBytes;
  readonly #overhead: number;
  readonly #gcMarginBytes: number;
  readonly #gcIntervalMs: number;
  readonly #collect: () => boolean;
  readonly #arrayBufferBytes: () => number;
  #timer: NodeJS.Timeout | null = null;
  #stopListening: (() => void) | null = null;
  #checkSoon: NodeJS.Immediate | null = null;
  #stats = { queuedBytes: 0, garbageBytes: 0, oomEvents: 0, circuitsFreed: 0, linksClosed: 0, bytesFreed: 0, collections: 0 };
  /** ArrayBuffer bytes not in the count at the first check after the last collection; null until measured. */
  #untrackedFloor: number | null = null;
  #lastGcAt = -Infinity;
  /** performance.now() of the last ArrayBuffer reading (check), for the checks a congested link asks for. */
  #garbageReadAt = -Infinity;

  constructor(links: LinkManager<RelayCircuit>, opts: MemoryCapOptions = {}) {
    this.#links = links;
    this.capBytes = opts.capBytes ?? defaultMemoryCap();
    this.#state = { ...DEFAULT_STATE_BYTES, ...opts.stateBytes };
    this.#overhead = opts.bufferOverhead ?? DEFAULT_BUFFER_OVERHEAD;
    if (!(this.#overhead >= 0)) throw new RangeError(`MemoryCap: bufferOverhead must be at least 0, not ${this.#overhead}`);
    this.lowWaterBytes = Math.min(this.capBytes, opts.lowWaterBytes ?? Math.floor((this.capBytes * 3) / 4));
    this.#gcMarginBytes = opts.gcMarginBytes ?? Math.max(8 * 1024 * 1024, Math.floor(this.capBytes / 8));
    this.#gcIntervalMs = opts.gcIntervalMs ?? 250;
    this.#collect = opts.collectGarbage ?? collectGarbage;
    this.#arrayBufferBytes = opts.arrayBufferBytes ?? (() => process.memoryUsage().arrayBuffers);
    const every = opts.checkIntervalMs ?? 100;
    if (every > 0) {
      this.#timer = setInterval(() => this.check(), every);
      this.#timer.unref();
      // A link that just became congested took a step of queued bytes: look now, not at the next tick.
      this.#stopListening = onLinkCongested(() => {
        this.#checkSoon ??= setImmediate(() => {
          this.#checkSoon = null;
          this.#check(false);
        });
      });
    }
  }

  /**
   * Bytes accounted now: held to send on links (Channel.heldBytes), in
   * stream buffers, and the state of every open link, circuit and stream
   * (stateBytes).
   */
  queuedBytes(): number {
    return this.#count().total;
  }

  /** The accounted total, and the part of it that is state (stateBytes), not bytes held in buffers. */
  #count(): { total: number; state: number } {
    let total = 0;
    let state = 0;
    for (const link of this.#links.openLinks()) {
      const c = this.#linkCount(link);
      total += c.total;
      state += c.state;
    }
    return { total, state };
  }

  /**
   * What one link accounts for: its held bytes and state, with the stream
   * bytes and state of the circuits whose previous hop it is (a circuit is
   * counted on that side only), and the part of that which is state.
   */
  #linkCount(link: Channel): { total: number; state: number } {
    let total = link.heldBytes;
    let state = this.#state.link;
    for (const slot of this.#links.circuitsOf(link).all()) {
      if (slot.side !== 'prev' || slot.circuit.closed) continue;
      total += slot.circuit.streamBytes();
      state += this.#circuitState(slot.circuit);
    }
    // The allocator's share is not held in ArrayBuffers either: it counts with the state.
    state += this.#overheadOf(total);
    return { total: total + state, state };
  }

  /** What holding `bytes` in buffers costs the allocator on top (bufferOverhead). */
  #overheadOf(bytes: number): number {
    return Math.floor(bytes * this.#overhead);
  }

  /** The accounted state of a circuit and its streams. */
  #circuitState(circuit: RelayCircuit): number {
    return this.#state.circuit + circuit.streamCount() * this.#state.stream;
  }

  /**
   * Check the total now (the count with garbage not yet collected); over the
   * cap, collect garbage if that alone is over, else free the oldest
   * circuits. Returns the bytes freed.
   */
  check(): number {
    return this.#check(true);
  }

  /**
   * check(); `readGarbage` false (the check a congested link asks for, which
   * under load comes thousands of times a second): the garbage estimate of
   * the last check is used again if it is less than GARBAGE_READ_MS old,
   * since reading the ArrayBuffer total (process.memoryUsage(), about
   * 10 µs) cost more than the rest of the check. The count itself is always
   * new: a congested link's step of queued bytes is what the check is for.
   */
  #check(readGarbage: boolean): number {
    const { total, state } = this.#count();
    // Buffers the count explains: the total less the state, which is not held in ArrayBuffers.
    const held = total - state;
    let garbage = 0;
    if (this.#gcMarginBytes > 0) {
      const now = performance.now();
      if (readGarbage || now - this.#garbageReadAt >= GARBAGE_READ_MS) {
        this.#garbageReadAt = now;
        const untracked = this.#arrayBufferBytes() - held;
        if (this.#untrackedFloor === null || untracked < this.#untrackedFloor) this.#untrackedFloor = untracked;
        garbage = untracked - this.#untrackedFloor;
      } else {
        garbage = this.#stats.garbageBytes;
      }
    }
    this.#stats.queuedBytes = total;
    this.#stats.garbageBytes = garbage;
    if (total + garbage <= this.capBytes) {
      if (total + garbage > this.lowWaterBytes && garbage >= this.#gcMarginBytes) this.#collectNow();
      return 0;
    }
    // Over the cap only with what a collection frees: collect, free nothing (the next check sees the result).
    if (total <= this.capBytes && garbage > 0 && this.#collectNow()) return 0;
    const victims = this.#victims();
    // Only state and garbage, nothing holding data: nothing to free.
    if (victims.length === 0) {
      if (garbage >= this.#gcMarginBytes) this.#collectNow();
      return 0;
    }
    this.#stats.oomEvents++;
    let left = total + garbage;
    let freed = 0;
    let stateFreed = 0;
    let circuits = 0;
    let links = 0;
    for (const victim of victims) {
      if (left <= this.lowWaterBytes) break;
      let bytes = 0;
      if (victim.kind === 'link') {
        if (victim.link.closed) continue;
        const c = this.#linkCount(victim.link);
        bytes = c.total;
        stateFreed += c.state;
        victim.link.destroy(new AlliumError('ERR_RESOURCE_LIMIT', 'link closed by the memory cap: its peer does not take what is sent'));
        links++;
        left -= bytes;
        freed += bytes;
        continue;
      }
      // A circuit on a link closed above goes with it (its bytes were counted there): no DESTROY on a dead link.
      if (victim.circuit.closed || [...victim.links].some((link) => link.closed)) continue;
      let data = victim.circuit.streamBytes();
      for (const q of victim.queues) {
        const held = q.link.heldBytes;
        q.link.dropQueuedCells(q.id);
        data += held - q.link.heldBytes;
      }
      const circuitState = this.#circuitState(victim.circuit) + this.#overheadOf(data);
      bytes = data + circuitState;
      stateFreed += circuitState;
      victim.circuit.destroy(DestroyReason.RESOURCELIMIT, 'out of memory for queued cells');
      circuits++;
      for (const link of victim.links) {
        // Nothing left to carry, and bytes its peer does not take: only closing the link frees them.
        if (link.closed || link.unsentSocketBytes === 0 || this.#links.circuitsOf(link).size > 0) continue;
        const linkState = this.#state.link + this.#overheadOf(link.heldBytes);
        bytes += link.heldBytes + linkState;
        stateFreed += linkState;
        link.destroy(new AlliumError('ERR_RESOURCE_LIMIT', 'link closed by the memory cap: unsent bytes and no circuit left'));
        links++;
      }
      left -= bytes;
      freed += bytes;
    }
    this.#stats.circuitsFreed += circuits;
    this.#stats.linksClosed += links;
    this.#stats.bytesFreed += freed;
    log('memory cap: %d bytes queued and %d of garbage, over the cap of %d; freed %d circuits holding the oldest data and closed %d links (%d bytes)', total, garbage, this.capBytes, circuits, links, freed);
    // What was freed is garbage now, still allocated until collected.
    if (garbage + freed - stateFreed >= this.#gcMarginBytes) this.#collectNow();
    return freed;
  }

  /**
   * Request a full collection now unless one was requested in the last
   * gcIntervalMs: buffers that waited in queues were promoted to V8's old
   * generation meanwhile, and only a full collection frees them
   * (src/collect-garbage.ts). The garbage's floor is measured again at the
   * first check after it, so buffers the relay keeps do not ask for more.
   * False if none was requested.
   */
  #collectNow(): boolean {
    if (this.#gcMarginBytes <= 0) return false;
    const now = performance.now();
    if (now - this.#lastGcAt < this.#gcIntervalMs) return false;
    this.#lastGcAt = now;
    if (!this.#collect()) return false;
    this.#stats.collections++;
    this.#untrackedFloor = null;
    // The next check, whoever asks for it, measures what the collection left.
    this.#garbageReadAt = -Infinity;
    return true;
  }

  stats(): MemoryCapStats {
    return { capBytes: this.capBytes, ...this.#stats };
  }

  /** Stop the periodic check. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#stopListening?.();
    this.#stopListening = null;
    if (this.#checkSoon !== null) clearImmediate(this.#checkSoon);
    this.#checkSoon = null;
  }

  /** Circuits holding queued data and clients' links whose sockets push back, oldest first. */
  #victims(): Array<Victim | LinkVictim> {
    const byCircuit = new Map<RelayCircuit, Victim>();
    const links: LinkVictim[] = [];
    const now = performance.now();
    for (const link of this.#links.openLinks()) {
      const blocked = link.sendBlockedSince;
      if (blocked !== null && !link.closed && link.peer.identity === null) links.push({ kind: 'link', link, since: blocked });
      const table = this.#links.circuitsOf(link);
      for (const [id, q] of link.queuedByCircuit()) {
        const slot = table.get(id);
        if (slot === undefined || slot.circuit.closed) continue;
        let v = byCircuit.get(slot.circuit);
        if (v === undefined) {
          v = { kind: 'circuit', circuit: slot.circuit, since: Math.min(q.since, slot.circuit.streamHeldSince() ?? Infinity), queues: [], links: new Set() };
          byCircuit.set(slot.circuit, v);
        }
        v.since = Math.min(v.since, q.since);
        v.queues.push({ link, id });
        v.links.add(link);
      }
      for (const slot of table.all()) {
        if (slot.side !== 'prev' || slot.circuit.closed) continue;
        const v = byCircuit.get(slot.circuit);
        if (v !== undefined) v.links.add(link);
        else if (slot.circuit.streamBytes() > 0) byCircuit.set(slot.circuit, { kind: 'circuit', circuit: slot.circuit, since: slot.circuit.streamHeldSince() ?? now, queues: [], links: new Set([link]) });
      }
    }
    // A client's link is as old as its oldest held data, on it or in its circuits' streams: its socket's
    // push-back restarts at every 'drain', while what it holds may be older. Closing it frees all of that at once.
    const linkVictims = new Map(links.map((lv) => [lv.link, lv]));
    for (const v of byCircuit.values()) {
      for (const link of v.links) {
        const lv = linkVictims.get(link);
        if (lv !== undefined && v.since < lv.since) lv.since = v.since;
      }
    }
    return [...links, ...byCircuit.values()].sort((a, b) => a.since - b.since);
  }
}
