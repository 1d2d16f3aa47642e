/**
 * A fake relay for adversarial tests: it accepts links with real relay keys,
 * answers CREATE2 with a real ntor-v3 handshake and holds each circuit's tor1
 * layers, so a test can make it send any cell, well-formed or not, toward a
 * client or toward the relay that extended to it. Every cell it receives is
 * recorded; relay cells it recognizes are decoded. No side effects at import.
 */
import type { TestContext } from 'node:test';
import type { Duplex } from 'node:stream';
import { Channel } from '../../src/link/channel.js';
import { ChannelCommand, cellCircuitId, encodeChannelCell } from '../../src/cell/channel-cell.js';
import { decodeCreate2, encodeCreated2 } from '../../src/cell/create2.js';
import { decodeRelayCell, encodeRelayCell, type DecodedRelayCell } from '../../src/cell/relay-cell.js';
import { TOR1_KEY_MATERIAL_LENGTH } from '../../src/constants.js';
import { ntorV3ServerHandshake } from '../../src/crypto/ntor-v3.js';
import { tor1Layers, type HopLayers } from '../../src/crypto/onion-layer.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../../src/circuit/handshake-params.js';
import { loadRelayKeys, type RelayKeys } from '../../relay/keys.js';
import type { HopInfo } from '../../client/origin-circuit.js';
import { WAIT_MS, tempDir } from './hostile-peer.js';

export interface FakeCircuit {
  channel: Channel;
  id: number;
  layers: HopLayers;
  /** Relay cells addressed to us (recognized), decoded. */
  messages: DecodedRelayCell[];
}

export class FakeRelay {
  readonly keys: RelayKeys;
  readonly info: HopInfo;
  readonly links: Channel[] = [];
  readonly circuits: FakeCircuit[] = [];
  /** Every cell received on any link. */
  readonly received: Array<{ channel: Channel; cell: Uint8Array }> = [];
  #waiters: Array<() => void> = [];

  constructor(t: TestContext, port = 9999) {
    this.keys = loadRelayKeys(tempDir(t));
    this.info = {
      nickname: 'fake',
      identity: this.keys.identity.identity,
      linkKey: this.keys.linkKey.public,
      ntorOnionKey: this.keys.ntor.onionKey,
      address: '127.0.0.1',
      orPort: port,
    };
    t.after(() => {
      for (const link of this.links) link.destroy();
    });
  }

  /** Accept a link on `socket` (the far side of a duplex pair). */
  async accept(socket: Duplex): Promise<Channel> {
    const channel = await Channel.accept(socket, { linkKey: this.keys.linkKey, identity: this.keys.identity, timeoutMs: WAIT_MS });
    this.links.push(channel);
    channel.on('cell', (cell: Uint8Array) => this.#receive(channel, cell));
    channel.on('close', () => this.#wake());
    return channel;
  }

  /** Seal `command` with the circuit's backward layer and send it toward the client. */
  sendRelay(circ: FakeCircuit, command: number, streamId: number, data: Uint8Array = new Uint8Array(0), channelCommand: number = ChannelCommand.RELAY): void {
    const payload = encodeRelayCell({ command, streamId, data });
    circ.layers.backward.seal(payload);
    circ.channel.sendCell(encodeChannelCell(circ.id, channelCommand, payload));
  }

  /** Wait (bounded) until `cond` holds. */
  async until(cond: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake relay: timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Wait for a DESTROY on `circ`; returns its reason. */
  async destroyed(circ: FakeCircuit, timeoutMs = WAIT_MS): Promise<number> {
    const find = () => this.received.find((r) => r.channel === circ.channel && cellCircuitId(r.cell) === circ.id && r.cell[4] === ChannelCommand.DESTROY);
    await this.until(() => find() !== undefined, `DESTROY on ${circ.id.toString(16)}`, timeoutMs);
    return find()!.cell[5]!;
  }

  #receive(channel: Channel, cell: Uint8Array): void {
    this.received.push({ channel, cell: new Uint8Array(cell) });
    const id = cellCircuitId(cell);
    if (cell[4] === ChannelCommand.CREATE2) {
      const body = decodeCreate2(cell.subarray(5));
      const result = ntorV3ServerHandshake(this.keys.ntor, body.handshakeData, CIRCUIT_VERIFICATION, () => EMPTY_NTOR_MESSAGE, TOR1_KEY_MATERIAL_LENGTH);
      this.circuits.push({ channel, id, layers: tor1Layers(result.keyMaterial), messages: [] });
      channel.sendCell(encodeChannelCell(id, ChannelCommand.CREATED2, encodeCreated2(result.reply)));
    } else if (cell[4] === ChannelCommand.RELAY || cell[4] === ChannelCommand.RELAY_EARLY) {
      const circ = this.circuits.find((c) => c.channel === channel && c.id === id);
      if (circ !== undefined) {
        const payload = cell.subarray(5);
        circ.layers.forward.crypt(payload);
        if (circ.layers.forward.open(payload)) circ.messages.push(decodeRelayCell(new Uint8Array(payload)));
      }
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
