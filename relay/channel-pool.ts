/**
 * Links from this relay to other relays, by identity (docs/protocol.md §3):
 * reuse an open authenticated link (ours or one the peer opened to us), share
 * one connection attempt among concurrent EXTEND2s, and forget links that close.
 */
import { connect } from 'node:net';
import { hex } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import { Channel, type LinkIdentity, type StaticKey } from '../src/link/channel.js';
import type { ExtendTarget } from '../src/cell/extend2.js';
import { equalBytes } from '../src/bytes.js';

export const LINK_HANDSHAKE_TIMEOUT_MS = 10_000;

export class ChannelPool {
  readonly #open = new Map<string, Channel>();
  readonly #connecting = new Map<string, Promise<Channel>>();
  readonly #linkKey: StaticKey;
  readonly #identity: LinkIdentity;
  readonly #localAddress: string;
  readonly #onChannel: (channel: Channel) => void;

  constructor(opts: { linkKey: StaticKey; identity: LinkIdentity; localAddress: string; onChannel: (channel: Channel) => void }) {
    this.#linkKey = opts.linkKey;
    this.#identity = opts.identity;
    this.#localAddress = opts.localAddress;
    this.#onChannel = opts.onChannel;
  }

  /** Remember an authenticated relay link (inbound or outbound) for reuse. */
  add(channel: Channel): void {
    const identity = channel.peer.identity;
    if (identity === null) return;
    const key = hex(identity);
    if (!this.#open.has(key)) {
      this.#open.set(key, channel);
      channel.once('close', () => {
        if (this.#open.get(key) === channel) this.#open.delete(key);
      });
    }
  }

  get(target: ExtendTarget): Promise<Channel> {
    const key = hex(target.identity);
    const existing = this.#open.get(key);
    if (existing !== undefined && !existing.closed && equalBytes(existing.peer.linkKey, target.linkKey)) {
      return Promise.resolve(existing);
    }
    let pending = this.#connecting.get(key);
    if (pending === undefined) {
      pending = this.#connect(target).finally(() => this.#connecting.delete(key));
      this.#connecting.set(key, pending);
    }
    return pending;
  }

  closeAll(): void {
    for (const channel of this.#open.values()) channel.close();
    this.#open.clear();
  }

  async #connect(target: ExtendTarget): Promise<Channel> {
    const socket = connect({ host: target.address, port: target.port, localAddress: this.#localAddress });
    socket.on('error', () => {}); // surfaced through the handshake
    try {
      const channel = await Channel.connect(socket, {
        peerLinkKey: target.linkKey,
        peerIdentity: target.identity,
        linkKey: this.#linkKey,
        identity: this.#identity,
        timeoutMs: LINK_HANDSHAKE_TIMEOUT_MS,
      });
      this.#onChannel(channel);
      this.add(channel);
      return channel;
    } catch (cause) {
      socket.destroy();
      throw new AlliumError('ERR_LINK_CLOSED', 'could not open a link to the next relay', { cause });
    }
  }
}
