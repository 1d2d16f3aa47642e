/**
 * What a relay does with the cells the link manager demultiplexed to it
 * (docs/protocol.md §2, §5): RELAY/RELAY_EARLY/DESTROY/CREATED2 go to the
 * circuit that owns the id, on the side (client "prev" or next hop "next")
 * the id belongs to; CREATE2 on a new id makes a circuit (create-handler.ts);
 * a link that closes destroys every circuit on it toward its other side.
 */
import { ChannelCommand, cellCircuitId, cellCommand, cellPayload, destroyReasonOf, encodeDestroy } from '../src/cell/channel-cell.js';
import { DestroyReason } from '../src/cell/reasons.js';
import { ChannelRoom } from '../src/circuit/channel-room.js';
import type { NtorV3RelaySecret } from '../src/crypto/ntor-v3.js';
import type { OnionKeySource } from './onion-keys.js';
import type { LinkCircuitHandler } from '../src/link/link-manager.js';
import { answerCreate2 } from './create-handler.js';
import type { RelayCircuit, RelayContext } from './relay-circuit.js';

/** The relay's LinkCircuitHandler: `ctx` for new circuits, `ntorKeys` to answer CREATE2. */
export function relayCircuitCells(ctx: RelayContext, ntorKeys: NtorV3RelaySecret | OnionKeySource): LinkCircuitHandler<RelayCircuit> {
  return {
    onCircuitCell(slot, cell) {
      const command = cellCommand(cell);
      switch (command) {
        case ChannelCommand.CREATE2:
          // Our DESTROY for this id ends the circuit on the wire, so it must end here too
          // (and toward its next hop), or the id stays taken for a circuit the peer has forgotten.
          slot.circuit.destroy(DestroyReason.PROTOCOL, 'CREATE2 for a circuit id in use');
          return;
        case ChannelCommand.RELAY:
        case ChannelCommand.RELAY_EARLY:
          if (slot.side === 'prev') slot.circuit.fromPrev(cell);
          else slot.circuit.fromNext(cell);
          return;
        case ChannelCommand.CREATED2:
          if (slot.side !== 'next') slot.circuit.destroy(DestroyReason.PROTOCOL, 'CREATED2 from the client side');
          else slot.circuit.fromNextCreated2(cellPayload(cell));
          return;
        case ChannelCommand.DESTROY:
          slot.circuit.destroyedFrom(slot.side, destroyReasonOf(cell));
          return;
        default:
          slot.circuit.destroy(DestroyReason.PROTOCOL, `unexpected cell command ${command}`);
      }
    },
    onRelayCells(slot, cells) {
      if (slot.side === 'prev') slot.circuit.fromPrevCells(cells);
      else slot.circuit.fromNextCells(cells);
    },
    onUnknownCell(cell, link, circuits) {
      switch (cellCommand(cell)) {
        case ChannelCommand.CREATE2:
          answerCreate2(ctx, ntorKeys, link, circuits, cell);
          return;
        case ChannelCommand.RELAY:
        case ChannelCommand.RELAY_EARLY:
        case ChannelCommand.CREATED2:
        case ChannelCommand.DESTROY:
          // Cells for a circuit we no longer know may still be in flight after a DESTROY: drop them.
          return;
        default:
          ChannelRoom.of(link).send(encodeDestroy(cellCircuitId(cell), DestroyReason.PROTOCOL));
      }
    },
    onLinkClosed(slot) {
      slot.circuit.destroyedFrom(slot.side, DestroyReason.CHANNEL_CLOSED);
    },
  };
}
