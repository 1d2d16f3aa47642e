/**
 * Fuzz targets for the cell codecs (src/cell/): channel cells and the
 * CREATE2 / CREATED2 / DESTROY payloads they carry, relay cells (the
 * 11-byte header and the message inside), relay message bodies, and ntor-v3
 * extension lists.
 */
import fc from 'fast-check';
import { CELL_PAYLOAD_LENGTH, RELAY_DATA_LENGTH } from '../../src/constants.js';
import { ChannelCommand, decodeChannelCell, encodeChannelCell, encodeDestroy } from '../../src/cell/channel-cell.js';
import { decodeCreate2, decodeCreated2, encodeCreate2, encodeCreated2 } from '../../src/cell/create2.js';
import { decodeRelayCell, encodeRelayCell } from '../../src/cell/relay-cell.js';
import { decodeRelayMsg, encodeRelayMsg, writeRelayMsg } from '../../src/cell/relay-msg.js';
import { decodeNtorExtensions, encodeNtorExtensions } from '../../src/cell/ntor-extensions.js';
import { truncated } from '../../src/errors.js';
import { loadCorpus } from '../corpus.js';
import { check, law, sameBytes, sameValue, type FuzzTarget } from '../engine.js';
import { byte, bytes, relayMsg, relayMsgBytes, u16, u32 } from './arbitraries.js';

const CHANNEL_COMMANDS = [ChannelCommand.PADDING, ChannelCommand.RELAY, ChannelCommand.DESTROY, ChannelCommand.RELAY_EARLY, ChannelCommand.CREATE2, ChannelCommand.CREATED2];

/** Decode the payload a channel cell's command implies, and check its round trip. */
function checkChannelPayload(command: number, payload: Uint8Array): void {
  if (command === ChannelCommand.CREATE2) {
    const body = decodeCreate2(payload);
    law('CREATE2 round trip', () => sameValue('CREATE2', decodeCreate2(encodeCreate2(body)), body));
  } else if (command === ChannelCommand.CREATED2) {
    const data = decodeCreated2(payload);
    law('CREATED2 round trip', () => sameBytes('CREATED2', decodeCreated2(encodeCreated2(data)), data));
  } else if (command === ChannelCommand.RELAY || command === ChannelCommand.RELAY_EARLY) {
    // Encrypted at every relay but the last: only the header shape is checked.
    decodeRelayCell(payload);
  }
}

export const channelCellTarget: FuzzTarget<Uint8Array> = {
  name: 'channel-cell',
  description: 'decodeChannelCell and the CREATE2 / CREATED2 / RELAY payloads it carries; canonical round trip',
  kind: 'bytes',
  modules: ['src/cell/channel-cell.ts', 'src/cell/create2.ts'],
  maxRandomLength: 600,
  arbitrary: () =>
    fc.oneof(
      fc.record({ id: u32, command: fc.oneof(fc.constantFrom(...CHANNEL_COMMANDS), byte), payload: bytes(CELL_PAYLOAD_LENGTH) }).map((c) => encodeChannelCell(c.id, c.command, c.payload)),
      fc.record({ id: u32, type: fc.oneof(fc.constant(3), u16), data: bytes(CELL_PAYLOAD_LENGTH - 4) }).map((c) => encodeChannelCell(c.id, ChannelCommand.CREATE2, encodeCreate2({ handshakeType: c.type, handshakeData: c.data }))),
      fc.record({ id: u32, data: bytes(CELL_PAYLOAD_LENGTH - 2) }).map((c) => encodeChannelCell(c.id, ChannelCommand.CREATED2, encodeCreated2(c.data))),
      fc.record({ id: u32, reason: byte }).map((c) => encodeDestroy(c.id, c.reason)),
    ),
  corpus: () => loadCorpus('channel-cell', 'bytes'),
  run(input) {
    const cell = decodeChannelCell(input);
    law('channel cell round trip', () => sameBytes('channel cell', encodeChannelCell(cell.circuitId, cell.command, cell.payload), input));
    checkChannelPayload(cell.command, cell.payload);
  },
};

export const relayCellTarget: FuzzTarget<Uint8Array> = {
  name: 'relay-cell',
  description: 'decodeRelayCell (the 11-byte header) then decodeRelayMsg on its data; re-sealing the message gives the same header and data',
  kind: 'bytes',
  modules: ['src/cell/relay-cell.ts'],
  maxRandomLength: 600,
  arbitrary: () =>
    fc.record({ msg: relayMsg, streamId: fc.oneof(fc.constant(0), u16), recognized: fc.oneof(fc.constant(0), u16), digest: bytes(4, 4) }).map(({ msg, streamId, recognized, digest }) => {
      const m = relayMsgBytes(msg);
      const payload = encodeRelayCell({ command: m[0]!, streamId, data: m.subarray(1) });
      payload[1] = recognized >>> 8;
      payload[2] = recognized & 0xff;
      payload.set(digest, 5);
      return payload;
    }),
  corpus: () => loadCorpus('relay-cell', 'bytes'),
  run(input) {
    const cell = decodeRelayCell(input);
    const msg = decodeRelayMsg(cell.command, cell.data);
    law('relay cell round trip', () => {
      const again = new Uint8Array(CELL_PAYLOAD_LENGTH);
      writeRelayMsg(again, cell.streamId, msg);
      const back = decodeRelayCell(again);
      check(back.command === cell.command && back.streamId === cell.streamId, () => 'relay cell header changed in the round trip');
      sameValue('relay cell message', decodeRelayMsg(back.command, back.data), msg);
    });
  },
};

export const relayMsgTarget: FuzzTarget<Uint8Array> = {
  name: 'relay-msg',
  description: 'decodeRelayMsg on every command (input: command byte, then the body); encodeRelayMsg of the result decodes to the same message',
  kind: 'bytes',
  modules: ['src/cell/relay-msg.ts', 'src/cell/stream-messages.ts', 'src/cell/extend2.ts', 'src/cell/sendme.ts'],
  maxRandomLength: RELAY_DATA_LENGTH + 20,
  arbitrary: () => relayMsg.map(relayMsgBytes),
  corpus: () => loadCorpus('relay-msg', 'bytes'),
  run(input) {
    if (input.length === 0) throw truncated('relay message command');
    const msg = decodeRelayMsg(input[0]!, input.subarray(1));
    law('relay message round trip', () => {
      const { command, body } = encodeRelayMsg(msg);
      check(command === input[0], () => `command ${input[0]} re-encoded as ${command}`);
      sameValue('relay message', decodeRelayMsg(command, body), msg);
    });
  },
};

export const ntorExtensionsTarget: FuzzTarget<Uint8Array> = {
  name: 'ntor-extensions',
  description: 'decodeNtorExtensions (the ntor-v3 client and server message lists); canonical round trip',
  kind: 'bytes',
  modules: ['src/cell/ntor-extensions.ts', 'src/bytes.ts'],
  maxRandomLength: 400,
  arbitrary: () => fc.array(fc.record({ type: byte, body: bytes(60) }), { maxLength: 8 }).map(encodeNtorExtensions),
  corpus: () => loadCorpus('ntor-extensions', 'bytes'),
  run(input) {
    const list = decodeNtorExtensions(input);
    law('ntor extensions round trip', () => sameBytes('ntor extensions', encodeNtorExtensions(list), input));
  },
};

/** Valid cells for the committed corpus. */
export function makeCellCorpus(): Record<string, Uint8Array[]> {
  const msgs = fc.sample(relayMsg, { seed: 11, numRuns: 40 }).map(relayMsgBytes);
  return {
    'channel-cell': [
      encodeDestroy(0x80000001, 3),
      encodeChannelCell(5, ChannelCommand.CREATE2, encodeCreate2({ handshakeType: 3, handshakeData: new Uint8Array(200).fill(7) })),
      encodeChannelCell(0x80000005, ChannelCommand.CREATED2, encodeCreated2(new Uint8Array(80).fill(9))),
      encodeChannelCell(9, ChannelCommand.RELAY, encodeRelayCell({ command: 2, streamId: 1, data: new Uint8Array(498).fill(1) })),
      encodeChannelCell(9, ChannelCommand.PADDING),
      ...fc.sample(channelCellTarget.arbitrary(), { seed: 12, numRuns: 10 }),
    ],
    'relay-cell': msgs.slice(0, 20).map((m, i) => encodeRelayCell({ command: m[0]!, streamId: i % 3, data: m.subarray(1) })),
    'relay-msg': msgs,
    'ntor-extensions': [encodeNtorExtensions([]), encodeNtorExtensions([{ type: 2, body: Uint8Array.of(1, 0) }]), ...fc.sample(ntorExtensionsTarget.arbitrary(), { seed: 13, numRuns: 8 })],
  };
}

