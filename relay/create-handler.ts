/**
 * A relay answering CREATE2 on a new circuit id (docs/protocol.md §2, §5):
 * the id must be in the sender's half, the link under its circuit limit and
 * the sender's address under its circuit-creation rate (relay/dos.ts);
 * an ntor-v3 handshake makes the circuit's layers and the CREATED2 reply, and
 * agrees on the hop's congestion control (src/circuit/cc-negotiation.ts).
 * Anything wrong is answered with DESTROY (PROTOCOL or RESOURCELIMIT), and
 * every CREATE2 while the relay hibernates with DESTROY HIBERNATING; the link
 * lives on.
 */
import { debuglog } from 'node:util';
import { ChannelCommand, cellPayload, circuitIdBelongsTo, encodeChannelCell, encodeDestroy, cellCircuitId } from '../src/cell/channel-cell.js';
import { decodeCreate2, encodeCreated2 } from '../src/cell/create2.js';
import { DestroyReason } from '../src/cell/reasons.js';
import { HANDSHAKE_TYPE_NTOR_V3, TOR1_KEY_MATERIAL_LENGTH } from '../src/constants.js';
import { ntorV3ServerHandshake, type NtorV3RelaySecret } from '../src/crypto/ntor-v3.js';
import { tor1Layers } from '../src/crypto/onion-layer.js';
import { CIRCUIT_VERIFICATION } from '../src/circuit/handshake-params.js';
import { answerClientMessage, hopFlow, type HopCongestion } from '../src/circuit/cc-negotiation.js';
import { DEFAULT_NETWORK_PARAMS } from '../src/netdoc/params.js';
import { ChannelRoom } from '../src/circuit/channel-room.js';
import { MAX_CIRCUITS_PER_CHANNEL, type ChannelCircuits } from '../src/circuit/circuit-ids.js';
import type { Channel } from '../src/link/channel.js';
import { ProtocolError } from '../src/errors.js';
import { RelayCircuit, type RelayContext } from './relay-circuit.js';
import type { OnionKeySource } from './onion-keys.js';

const log = debuglog('allium:relay');

/** Handle a CREATE2 `cell` for an id no circuit on `link` uses (`circuits` is the link's table). */
export function answerCreate2(ctx: RelayContext, ntorKeys: NtorV3RelaySecret | OnionKeySource, link: Channel, circuits: ChannelCircuits<RelayCircuit>, cell: Uint8Array): void {
  const id = cellCircuitId(cell);
  const room = ChannelRoom.of(link);
  if (!circuitIdBelongsTo(id, !link.isInitiator)) {
    room.send(encodeDestroy(id, DestroyReason.PROTOCOL));
    return;
  }
  if (ctx.hibernating?.() === true) {
    room.send(encodeDestroy(id, DestroyReason.HIBERNATING));
    return;
  }
  if (circuits.size >= MAX_CIRCUITS_PER_CHANNEL || (ctx.admitCreate !== undefined && !ctx.admitCreate(link))) {
    room.send(encodeDestroy(id, DestroyReason.RESOURCELIMIT));
    return;
  }
  try {
    const body = decodeCreate2(cellPayload(cell));
    if (body.handshakeType !== HANDSHAKE_TYPE_NTOR_V3) throw new ProtocolError(`unsupported handshake type ${body.handshakeType}`);
    // The onionskin names the onion key it was made for (KEYID(B), bytes 32..64): the current or, within its grace, the previous.
    const keys = 'find' in ntorKeys ? ntorKeys.find(body.handshakeData.subarray(32, 64)) : ntorKeys;
    if (keys === undefined) throw new ProtocolError('CREATE2 for an onion key this relay does not hold (rotated out)');
    let agreed: HopCongestion = null;
    const reply = (clientMessage: Uint8Array): Uint8Array => {
      const answer = answerClientMessage(clientMessage, ctx.params ?? DEFAULT_NETWORK_PARAMS);
      agreed = answer.agreed;
      return answer.serverMessage;
    };
    const result = ntorV3ServerHandshake(keys, body.handshakeData, CIRCUIT_VERIFICATION, reply, TOR1_KEY_MATERIAL_LENGTH);
    new RelayCircuit(ctx, link, id, tor1Layers(result.keyMaterial), hopFlow(agreed, 'relay'));
    room.send(encodeChannelCell(id, ChannelCommand.CREATED2, encodeCreated2(result.reply)));
  } catch (error) {
    log('CREATE2 refused: %s', (error as Error).message);
    room.send(encodeDestroy(id, DestroyReason.PROTOCOL));
  }
}
