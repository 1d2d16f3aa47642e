/**
 * Which circuits use a link, by circuit id, and picking fresh ids: the
 * initiator of a link takes ids with the high bit set, the responder ids with
 * it clear (docs/protocol.md §3.5).
 */
import type { Channel } from '../link/channel.js';
import { crypto } from '../crypto/crypto.js';
import { AlliumError } from '../errors.js';

export type Side = 'prev' | 'next';

export interface CircuitSlot<C> {
  circuit: C;
  side: Side;
}

export const MAX_CIRCUITS_PER_CHANNEL = 8192;

export class ChannelCircuits<C> {
  readonly #slots = new Map<number, CircuitSlot<C>>();

  get size(): number {
    return this.#slots.size;
  }

  get(id: number): CircuitSlot<C> | undefined {
    return this.#slots.get(id);
  }

  set(id: number, slot: CircuitSlot<C>): void {
    this.#slots.set(id, slot);
  }

  delete(id: number): void {
    this.#slots.delete(id);
  }

  all(): CircuitSlot<C>[] {
    return [...this.#slots.values()];
  }

  /** A fresh id from our half of the id space on `channel`. */
  allocate(channel: Channel): number {
    for (let tries = 0; tries < 64; tries++) {
      const r = crypto.randomBytes(4);
      const low = (((r[0]! & 0x7f) << 24) | (r[1]! << 16) | (r[2]! << 8) | r[3]!) >>> 0;
      const id = channel.isInitiator ? (low | 0x80000000) >>> 0 : low;
      if (low !== 0 && !this.#slots.has(id)) return id;
    }
    throw new AlliumError('ERR_RESOURCE_LIMIT', 'no free circuit id');
  }
}
