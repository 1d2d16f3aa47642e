import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelCommand, decodeChannelCell, encodeChannelCell, setCellCircuitId, circuitIdBelongsTo } from '../../src/cell/channel-cell.js';
import { RelayCommand, decodeRelayCell, encodeRelayCell, relayCellCommand, relayCellData, relayCellStreamId } from '../../src/cell/relay-cell.js';
import { decodeCreate2, decodeCreated2, encodeCreate2, encodeCreated2 } from '../../src/cell/create2.js';
import { decodeExtend2, decodeExtended2, encodeExtend2, encodeExtended2, specifiersToTarget, targetToSpecifiers } from '../../src/cell/extend2.js';
import { decodeBegin, decodeConnected, decodeEnd, encodeBegin, encodeConnected, encodeEnd } from '../../src/cell/stream-messages.js';
import { decodeSendme, encodeSendmeV1 } from '../../src/cell/sendme.js';
import { CELL_LENGTH, CELL_PAYLOAD_LENGTH, RELAY_DATA_LENGTH } from '../../src/constants.js';
import { DecodeError } from '../../src/errors.js';
import { fromHex, hex } from '../../src/bytes.js';

const code = (c: string) => (e: unknown) => e instanceof DecodeError && e.code === c;

test('channel cell: layout, round trip, truncated and oversized', () => {
  const cell = encodeChannelCell(0x80000001, ChannelCommand.CREATE2, new Uint8Array([1, 2, 3]));
  assert.equal(cell.length, CELL_LENGTH);
  assert.equal(hex(cell.subarray(0, 8)), '800000010a010203');
  const decoded = decodeChannelCell(cell);
  assert.equal(decoded.circuitId, 0x80000001);
  assert.equal(decoded.command, 10);
  assert.equal(decoded.payload.length, CELL_PAYLOAD_LENGTH);
  setCellCircuitId(cell, 7);
  assert.equal(decodeChannelCell(cell).circuitId, 7);
  assert.throws(() => decodeChannelCell(cell.subarray(0, 513)), code('ERR_TRUNCATED'));
  assert.throws(() => decodeChannelCell(new Uint8Array(515)), code('ERR_OVERSIZED'));
  assert.throws(() => encodeChannelCell(1, 3, new Uint8Array(510)), code('ERR_OVERSIZED'));
  assert.throws(() => encodeChannelCell(-1, 3), RangeError);
  assert.equal(circuitIdBelongsTo(0x80000000, true), true);
  assert.equal(circuitIdBelongsTo(0x7fffffff, true), false);
  assert.equal(circuitIdBelongsTo(5, false), true);
  assert.equal(circuitIdBelongsTo(0, false), false);
});

test('relay cell: Tor layout and round trip', () => {
  const data = new Uint8Array([0xaa, 0xbb]);
  const zeroPad = (n: number) => new Uint8Array(n).fill(0xee);
  const payload = encodeRelayCell({ command: RelayCommand.DATA, streamId: 0x1234, data }, zeroPad);
  assert.equal(payload.length, CELL_PAYLOAD_LENGTH);
  // command | recognized | stream id | digest | length | data | 4 zero bytes | padding
  assert.equal(hex(payload.subarray(0, 19)), '02' + '0000' + '1234' + '00000000' + '0002' + 'aabb' + '00000000' + 'eeee');
  const d = decodeRelayCell(payload);
  assert.equal(d.command, 2);
  assert.equal(d.streamId, 0x1234);
  assert.equal(d.recognized, 0);
  assert.deepEqual([...d.data], [0xaa, 0xbb]);
  const full = encodeRelayCell({ command: 2, streamId: 1, data: new Uint8Array(RELAY_DATA_LENGTH).fill(7) });
  assert.equal(decodeRelayCell(full).data.length, RELAY_DATA_LENGTH);
});

test('relay cell: the per-cell readers give what decodeRelayCell gives, and refuse what it refuses', () => {
  for (const [command, streamId, length] of [[2, 0x1234, 2], [4, 0, 0], [0xff, 0xffff, RELAY_DATA_LENGTH], [12, 0x8001, 497]] as const) {
    const payload = encodeRelayCell({ command, streamId, data: new Uint8Array(length).map((_, i) => i * 7 + 1) });
    const d = decodeRelayCell(payload);
    assert.equal(relayCellCommand(payload), d.command);
    assert.equal(relayCellStreamId(payload), d.streamId);
    assert.deepEqual(relayCellData(payload), d.data);
    // A view, as decodeRelayCell's.
    assert.equal(relayCellData(payload).buffer, payload.buffer);
  }
  assert.throws(() => relayCellData(new Uint8Array(508)), code('ERR_TRUNCATED'));
  assert.throws(() => relayCellData(new Uint8Array(510)), code('ERR_OVERSIZED'));
  const bad = encodeRelayCell({ command: 2, streamId: 1, data: new Uint8Array(0) });
  bad[9] = 0x01;
  bad[10] = 0xf3; // 499
  assert.throws(() => relayCellData(bad), code('ERR_MALFORMED'));
});

test('relay cell: truncated, oversized and malformed', () => {
  assert.throws(() => encodeRelayCell({ command: 2, streamId: 1, data: new Uint8Array(499) }), code('ERR_OVERSIZED'));
  assert.throws(() => decodeRelayCell(new Uint8Array(508)), code('ERR_TRUNCATED'));
  assert.throws(() => decodeRelayCell(new Uint8Array(510)), code('ERR_OVERSIZED'));
  const bad = encodeRelayCell({ command: 2, streamId: 1, data: new Uint8Array(0) });
  bad[9] = 0x01;
  bad[10] = 0xf3; // 499
  assert.throws(() => decodeRelayCell(bad), code('ERR_MALFORMED'));
});

test('CREATE2 / CREATED2 round trip and bad lengths', () => {
  const hs = fromHex('00112233');
  const body = new Uint8Array(CELL_PAYLOAD_LENGTH);
  body.set(encodeCreate2({ handshakeType: 3, handshakeData: hs }));
  assert.deepEqual(decodeCreate2(body), { handshakeType: 3, handshakeData: hs });
  const created = new Uint8Array(CELL_PAYLOAD_LENGTH);
  created.set(encodeCreated2(hs));
  assert.deepEqual(decodeCreated2(created), hs);
  assert.throws(() => decodeCreate2(new Uint8Array([0, 3, 0])), code('ERR_TRUNCATED'));
  assert.throws(() => decodeCreate2(new Uint8Array([0, 3, 0xff, 0xff, 1])), code('ERR_MALFORMED'));
  assert.throws(() => decodeCreated2(new Uint8Array([0x02, 0x00])), code('ERR_MALFORMED'));
  assert.throws(() => encodeCreate2({ handshakeType: 3, handshakeData: new Uint8Array(506) }), code('ERR_OVERSIZED'));
});

test('EXTEND2 / EXTENDED2 round trip, link specifiers, malformed', () => {
  const target = { address: '127.3.0.1', port: 5001, identity: new Uint8Array(32).fill(1), linkKey: new Uint8Array(32).fill(2) };
  const body = encodeExtend2({ specifiers: targetToSpecifiers(target), handshakeType: 3, handshakeData: new Uint8Array(100).fill(9) });
  const decoded = decodeExtend2(body);
  assert.deepEqual(specifiersToTarget(decoded.specifiers), target);
  assert.equal(decoded.handshakeData.length, 100);
  for (let cut = 0; cut < body.length; cut++) assert.throws(() => decodeExtend2(body.subarray(0, cut)), code('ERR_TRUNCATED'));
  assert.throws(() => decodeExtend2(new Uint8Array([...body, 0])), code('ERR_MALFORMED'));
  // Missing the link key, duplicated identity, wrong specifier length.
  const specs = targetToSpecifiers(target);
  assert.throws(() => specifiersToTarget(specs.slice(0, 2)), code('ERR_MALFORMED'));
  assert.throws(() => specifiersToTarget([...specs, specs[1]!]), code('ERR_MALFORMED'));
  assert.throws(() => specifiersToTarget([{ type: 0, body: new Uint8Array(5) }, ...specs.slice(1)]), code('ERR_MALFORMED'));
  assert.deepEqual(decodeExtended2(encodeExtended2(fromHex('abcd'))), fromHex('abcd'));
  assert.throws(() => decodeExtended2(new Uint8Array([0, 5, 1])), code('ERR_TRUNCATED'));
});

test('BEGIN / CONNECTED / END round trip and malformed input', () => {
  for (const host of ['example.com', '127.0.0.1', '::1', 'a-b_c.d']) {
    assert.deepEqual(decodeBegin(encodeBegin({ host, port: 443, flags: 0 })), { host, port: 443, flags: 0 });
  }
  const enc = new TextEncoder();
  for (const bad of ['example.com:80', 'example.com\0', 'example.com:0\0', 'example.com:65536\0', 'exa mple.com:80\0', ':80\0', '[zz]:80\0', 'host:8o\0']) {
    assert.throws(() => decodeBegin(enc.encode(bad)), code('ERR_MALFORMED'), bad);
  }
  assert.throws(() => decodeBegin(new Uint8Array([...enc.encode('a:1\0'), 0, 0])), code('ERR_MALFORMED'));
  assert.deepEqual(decodeConnected(encodeConnected('127.1.0.1')), { address: '127.1.0.1', ttl: 300 });
  assert.deepEqual(decodeConnected(new Uint8Array(0)), { address: null, ttl: 0 });
  assert.throws(() => decodeConnected(new Uint8Array([1, 2])), code('ERR_TRUNCATED'));
  assert.throws(() => decodeConnected(new Uint8Array([0, 0, 0, 0, 9])), code('ERR_MALFORMED'));
  assert.equal(decodeEnd(encodeEnd(4)), 4);
  assert.equal(decodeEnd(new Uint8Array(0)), 1);
});

test('SENDME v0 / v1 and malformed', () => {
  const digest = new Uint8Array(20).fill(5);
  assert.deepEqual(decodeSendme(encodeSendmeV1(digest)), digest);
  assert.equal(decodeSendme(new Uint8Array(0)), null);
  assert.equal(decodeSendme(new Uint8Array([0, 0, 0])), null);
  assert.throws(() => decodeSendme(new Uint8Array([1, 0, 20, 1])), code('ERR_TRUNCATED'));
  assert.throws(() => decodeSendme(new Uint8Array([2, 0, 0])), code('ERR_MALFORMED'));
  assert.throws(() => decodeSendme(new Uint8Array([1, 0, 1, 9])), code('ERR_MALFORMED'));
});

test('random bytes never crash the decoders (typed errors only)', () => {
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const decoders = [decodeRelayCell, decodeCreate2, decodeCreated2, decodeExtend2, decodeExtended2, decodeBegin, decodeConnected, decodeSendme, decodeChannelCell];
  for (let i = 0; i < 3000; i++) {
    const length = next() % 600;
    const bytes = new Uint8Array(length);
    for (let j = 0; j < length; j++) bytes[j] = next() & 0xff;
    for (const decode of decoders) {
      try {
        decode(bytes);
      } catch (error) {
        assert.ok(error instanceof DecodeError, `${decode.name} threw ${(error as Error).name}`);
      }
    }
  }
});
