/**
 * What a node's dashboard shows, as the JSON of GET /api/status: who it is
 * (role, nickname, identity, version), its flags in the current consensus,
 * links, circuits, streams, bandwidth over the last hour and recent notices.
 * Public facts only: no destination, no client address, no key but the
 * node's own public identity; notices are always address-scrubbed.
 */
import { hex } from '../../src/bytes.js';
import { CELL_LENGTH } from '../../src/constants.js';
import { subscribe, type CircuitStats, type LinkStats } from '../../src/events.js';
import type { VerifiedConsensus } from '../../src/netdoc/consensus.js';
import { equalBytes } from '../../src/bytes.js';
import { BandwidthHistory, type BandwidthPoint } from './history.js';

export const MAX_NOTICES = 30;
/** Most circuit paths a status lists. */
export const MAX_CIRCUIT_PATHS = 50;

export interface Notice {
  /** ms since the epoch. */
  time: number;
  level: string;
  message: string;
}

export interface NodeStatus {
  role: 'relay' | 'authority' | 'client';
  nickname: string | null;
  /** Ed25519 identity, hex (public: it is in the consensus). */
  identity: string | null;
  version: string;
  startedAt: number;
  now: number;
  links: { initiated: number; received: number } | null;
  circuits: number | null;
  streams: number | null;
  consensus: {
    validAfter: number;
    relays: number;
    /** This relay's flags, or null when it is not listed (or is not a relay). */
    flags: string[] | null;
    /** Every relay's nickname and flags (the authority's view). */
    entries?: { nickname: string; flags: string[]; bandwidth: number }[];
  } | null;
  /** [t (s), read bytes/s, written bytes/s] over the last hour. */
  bandwidth: BandwidthPoint[];
  /**
   * A client's open circuits: each one's relays by nickname, guard first
   * (relays are public; the circuit's streams and their destinations are not
   * shown). Absent on other roles.
   */
  circuitPaths?: string[][];
  notices: Notice[];
}

export interface StatusSources {
  role: NodeStatus['role'];
  nickname?: string;
  identity?: Uint8Array;
  version: string;
  linkStats?: () => LinkStats | undefined;
  circuitStats?: () => CircuitStats | undefined;
  /** Recent notices, already address-scrubbed (the node's log). */
  notices?: () => Notice[];
  /** A client's open circuits as nickname paths, guard first. */
  circuitPaths?: () => string[][];
}

/** Keeps what /api/status needs between requests: link directions, bandwidth history, notices, consensus. */
export class StatusBoard {
  readonly #sources: StatusSources;
  readonly #startedAt = Date.now();
  readonly #history: BandwidthHistory;
  readonly #open = { initiated: 0, received: 0 };
  readonly #directions = new Map<number, 'initiated' | 'received'>();
  readonly #off: (() => void)[];
  #consensus: NodeStatus['consensus'] = null;
  /** Set once setConsensus() has been called: the poll, not the event, says what the consensus is. */
  #polled = false;

  constructor(sources: StatusSources) {
    this.#sources = sources;
    this.#history = new BandwidthHistory(() => {
      const s = sources.linkStats?.();
      return { read: (s?.cellsIn ?? 0) * CELL_LENGTH, written: (s?.cellsOut ?? 0) * CELL_LENGTH };
    });
    this.#history.start();
    this.#off = [
      subscribe('allium:link:open', (e) => {
        const d = e.initiator ? 'initiated' : 'received';
        this.#directions.set(e.linkId, d);
        this.#open[d]++;
      }),
      subscribe('allium:consensus', (e) => {
        // A client learns its consensus here; a relay's or authority's own poll (setConsensus) says
        // more (its flags), and another fetch's event in the same process must not undo that.
        if (this.#polled) return;
        if (this.#consensus === null || this.#consensus.validAfter < e.validAfter) this.#consensus = { validAfter: e.validAfter, relays: e.relays, flags: null };
      }),
      subscribe('allium:link:close', (e) => {
        const d = this.#directions.get(e.linkId);
        if (d === undefined) return;
        this.#directions.delete(e.linkId);
        this.#open[d]--;
      }),
    ];
  }

  /** The consensus this node knows now: its own flags in it, and (at an authority) every entry. */
  setConsensus(c: VerifiedConsensus): void {
    this.#polled = true;
    const id = this.#sources.identity;
    const me = id !== undefined ? c.relays.find((r) => equalBytes(r.identity, id)) : undefined;
    this.#consensus = {
      validAfter: c.validAfter,
      relays: c.relays.length,
      flags: me?.flags ?? null,
      ...(this.#sources.role === 'authority' ? { entries: c.relays.map((r) => ({ nickname: r.nickname, flags: r.flags, bandwidth: r.bandwidth })) } : {}),
    };
  }

  status(): NodeStatus {
    const s = this.#sources;
    const circuits = s.circuitStats?.();
    return {
      role: s.role,
      nickname: s.nickname ?? null,
      identity: s.identity !== undefined ? hex(s.identity) : null,
      version: s.version,
      startedAt: this.#startedAt,
      now: Date.now(),
      links: s.linkStats !== undefined ? { ...this.#open } : null,
      circuits: circuits?.open ?? null,
      streams: circuits?.streams ?? null,
      consensus: this.#consensus,
      bandwidth: this.#history.points(),
      notices: (s.notices?.() ?? []).slice(-MAX_NOTICES),
      ...(s.circuitPaths !== undefined ? { circuitPaths: s.circuitPaths().slice(0, MAX_CIRCUIT_PATHS) } : {}),
    };
  }

  close(): void {
    this.#history.stop();
    for (const off of this.#off) off();
  }
}
