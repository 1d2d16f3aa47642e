/**
 * Routes the cells arriving on one link to the relay's circuits (docs/protocol.md
 * §2, §5): CREATE2 makes a circuit, RELAY/RELAY_EARLY/DESTROY/CREATED2 go to the
 * circuit that owns the id, PADDING is dropped. When a link closes, every
 * circuit on it is destroyed toward its other side.
 */
import { debuglog } from 'node:util';
import { ChannelCommand, cellCircuitId, circuitIdBelongsTo, encodeChannelCell, encodeDestroy } from '../src/cell/channel-cell.js';
import { decodeCreate2, encodeCreated2 } from '../src/cell/create2.js';
import { DestroyReason } from '../src/cell/reasons.js';
import { HANDSHAKE_TYPE_NTOR_V3, TOR1_KEY_MATERIAL_LENGTH } from '../src/constants.js';
import { ntorV3ServerHandshake, type NtorV3RelaySecret } from '../src/crypto/ntor-v3.js';
import { tor1Layers } from '../src/crypto/onion-layer.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../src/circuit/handshake-params.js';
import { ChannelRoom } from '../src/circuit/channel-room.js';
import type { Channel } from '../src/link/channel.js';
import { MAX_CIRCUITS_PER_CHANNEL } from '../src/circuit/circuit-ids.js';
import { ProtocolError } from '../src/errors.js';
import { RelayCircuit, type RelayContext } from './relay-circuit.js';

const log = debuglog('allium:relay');

export function routeChannel(ctx: RelayContext, channel: Channel, ntorKeys: NtorV3RelaySecret): void {
  const circuits = ctx.circuitsOf(channel);
  const room = ChannelRoom.of(channel);

  channel.on('cell', (cell: Uint8Array) => {
    const id = cellCircuitId(cell);
    const command = cell[4]!;
    if (command === ChannelCommand.PADDING) return;
    if (id === 0) {
      channel.destroy(new ProtocolError('cell on circuit id 0'));
      return;
    }
    const slot = circuits.get(id);
    switch (command) {
      case ChannelCommand.CREATE2: {
        if (slot !== undefined) {
          // Our DESTROY for this id ends the circuit on the wire, so it must end here too
          // (and toward its next hop), or the id stays taken for a circuit the peer has forgotten.
          slot.circuit.destroy(DestroyReason.PROTOCOL, 'CREATE2 for a circuit id in use');
          return;
        }
        if (!circuitIdBelongsTo(id, !channel.isInitiator)) {
          room.send(encodeDestroy(id, DestroyReason.PROTOCOL));
          return;
        }
        if (circuits.size >= MAX_CIRCUITS_PER_CHANNEL) {
          room.send(encodeDestroy(id, DestroyReason.RESOURCELIMIT));
          return;
        }
        try {
          const body = decodeCreate2(cell.subarray(5));
          if (body.handshakeType !== HANDSHAKE_TYPE_NTOR_V3) throw new ProtocolError(`unsupported handshake type ${body.handshakeType}`);
          const result = ntorV3ServerHandshake(ntorKeys, body.handshakeData, CIRCUIT_VERIFICATION, () => EMPTY_NTOR_MESSAGE, TOR1_KEY_MATERIAL_LENGTH);
          new RelayCircuit(ctx, channel, id, tor1Layers(result.keyMaterial));
          room.send(encodeChannelCell(id, ChannelCommand.CREATED2, encodeCreated2(result.reply)));
        } catch (error) {
          log('CREATE2 refused: %s', (error as Error).message);
          room.send(encodeDestroy(id, DestroyReason.PROTOCOL));
        }
        return;
      }
      case ChannelCommand.RELAY:
      case ChannelCommand.RELAY_EARLY:
        // Cells for a circuit we no longer know may still be in flight after a DESTROY: drop them.
        if (slot === undefined) return;
        if (slot.side === 'prev') slot.circuit.fromPrev(cell);
        else slot.circuit.fromNext(cell);
        return;
      case ChannelCommand.CREATED2:
        if (slot === undefined) return;
        if (slot.side !== 'next') slot.circuit.destroy(DestroyReason.PROTOCOL, 'CREATED2 from the client side');
        else slot.circuit.fromNextCreated2(cell.subarray(5));
        return;
      case ChannelCommand.DESTROY:
        slot?.circuit.destroyedFrom(slot.side, cell[5]!);
        return;
      default:
        if (slot !== undefined) slot.circuit.destroy(DestroyReason.PROTOCOL, `unexpected cell command ${command}`);
        else room.send(encodeDestroy(id, DestroyReason.PROTOCOL));
    }
  });

  channel.on('close', () => {
    for (const slot of circuits.all()) slot.circuit.destroyedFrom(slot.side, DestroyReason.CHANNEL_CLOSED);
  });
}
