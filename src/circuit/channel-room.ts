/**
 * Write-side backpressure for one link, shared by every circuit on it:
 * remembers that the link said "stop" (sendCell returned false) until it
 * drains, and wakes whoever waited for room.
 */
import { CELL_LENGTH } from '../constants.js';
import { CHANNEL_HIGH_WATER, type Channel } from '../link/channel.js';

const rooms = new WeakMap<Channel, ChannelRoom>();
const congestionListeners = new Set<() => void>();

/**
 * Call `listener` whenever any link of this process (thread) becomes
 * congested: a step of about CHANNEL_HIGH_WATER more queued bytes, when the
 * relay's memory cap looks at its total at once rather than at its next
 * timer (relay/mem-cap.ts). Not called per cell. Returns the function that
 * removes it.
 */
export function onLinkCongested(listener: () => void): () => void {
  congestionListeners.add(listener);
  return () => {
    congestionListeners.delete(listener);
  };
}

export class ChannelRoom {
  readonly channel: Channel;
  #congested = false;
  #waiters: Array<() => void> = [];

  private constructor(channel: Channel) {
    this.channel = channel;
    channel.on('drain', () => this.#drained());
    channel.on('close', () => this.#drained());
  }

  static of(channel: Channel): ChannelRoom {
    let room = rooms.get(channel);
    if (room === undefined) {
      room = new ChannelRoom(channel);
      rooms.set(channel, room);
    }
    return room;
  }

  get congested(): boolean {
    return this.#congested;
  }

  /**
   * Cells the link takes before it says "stop" (its high-water mark,
   * CHANNEL_HIGH_WATER): at least 1 while not congested, 0 while it is. An
   * estimate shared by every circuit on the link, for sizing an exit's reads
   * (src/stream/pooled-read.ts).
   */
  get roomCells(): number {
    if (this.#congested) return 0;
    return Math.max(1, Math.ceil((CHANNEL_HIGH_WATER - this.channel.queuedBytes) / CELL_LENGTH));
  }

  /** Queue a cell; cells are never dropped here, the flag tells senders to hold off. */
  send(cell: Uint8Array): void {
    if (this.channel.closed) return;
    if (!this.channel.sendCell(cell) && !this.#congested) {
      this.#congested = true;
      for (const listener of congestionListeners) listener();
    }
  }

  /** Call `wake` once the link has room (at once if it has room now). */
  onRoom(wake: () => void): void {
    if (!this.#congested) {
      queueMicrotask(wake);
      return;
    }
    this.#waiters.push(wake);
  }

  #drained(): void {
    this.#congested = false;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
