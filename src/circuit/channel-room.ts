/**
 * Write-side backpressure for one link, shared by every circuit on it:
 * remembers that the link said "stop" (sendCell returned false) until it
 * drains, and wakes whoever waited for room.
 */
import type { Channel } from '../link/channel.js';

const rooms = new WeakMap<Channel, ChannelRoom>();

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

  /** Queue a cell; cells are never dropped here, the flag tells senders to hold off. */
  send(cell: Uint8Array): void {
    if (this.channel.closed) return;
    if (!this.channel.sendCell(cell)) this.#congested = true;
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
