/**
 * src/bytes.ts: the Writer pairs with the Reader, and the length-prefixed and
 * TLV-list combinators read what they write (the shape of EXTEND2 link
 * specifiers and ntor-v3 extensions).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Reader,
  Writer,
  expectEnd,
  fromHex,
  hex,
  readLengthPrefixed,
  readTlvList,
  tlvListLength,
  writeLengthPrefixed,
  writeTlvList,
} from '../../src/bytes.js';
import { DecodeError } from '../../src/errors.js';
import { encodeExtend2 } from '../../src/cell/extend2.js';
import { encodeNtorExtensions } from '../../src/cell/ntor-extensions.js';

const code = (c: string) => (err: unknown) => err instanceof DecodeError && err.code === c;

test('Writer: big-endian integers and bytes, read back by Reader', () => {
  const w = new Writer(4);
  w.u8(0xab).u16(0x0102).u32(0xdeadbeef).bytes(fromHex('cafe')).u32(0);
  assert.equal(w.length, 13);
  const out = w.finish();
  assert.equal(hex(out), 'ab0102deadbeefcafe00000000');
  const r = new Reader(out, 'test');
  assert.deepEqual([r.u8(), r.u16(), r.u32(), hex(r.bytes(2)), r.u32(), r.remaining], [0xab, 0x0102, 0xdeadbeef, 'cafe', 0, 0]);
});

test('Writer: grows past its capacity without losing bytes; starts empty', () => {
  assert.equal(new Writer(0).finish().length, 0);
  const w = new Writer(1);
  const big = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  w.u8(7).bytes(big).u16(0xffff);
  const out = w.finish();
  assert.equal(out.length, 1003);
  assert.equal(out[0], 7);
  assert.deepEqual(out.subarray(1, 1001), big);
  assert.equal(hex(out.subarray(1001)), 'ffff');
});

test('Writer: finish() is a view, not a copy, when the capacity fits', () => {
  const w = new Writer(8).u32(1);
  const a = w.finish();
  assert.equal(a.byteLength, 4);
  assert.equal(a.buffer.byteLength, 8);
});

test('Writer: out-of-range integers and non-bytes are rejected at the call', () => {
  const w = new Writer();
  for (const bad of [-1, 256, 1.5, Number.NaN]) assert.throws(() => w.u8(bad), RangeError, String(bad));
  for (const bad of [-1, 0x10000, 0.5]) assert.throws(() => w.u16(bad), RangeError, String(bad));
  for (const bad of [-1, 2 ** 32, 1e-3]) assert.throws(() => w.u32(bad), RangeError, String(bad));
  assert.throws(() => w.bytes([1, 2] as unknown as Uint8Array), TypeError);
  assert.equal(w.length, 0, 'nothing written by a rejected call');
  w.u32(2 ** 32 - 1);
  assert.equal(hex(w.finish()), 'ffffffff');
});

test('length-prefixed fields: 1- and 2-byte prefixes round-trip; too long to encode is a RangeError; short input is ERR_TRUNCATED', () => {
  const w = new Writer();
  writeLengthPrefixed(w, 1, fromHex('0102'));
  writeLengthPrefixed(w, 2, fromHex('030405'));
  writeLengthPrefixed(w, 1, new Uint8Array(0));
  const out = w.finish();
  assert.equal(hex(out), '020102000303040500');
  const r = new Reader(out, 'fields');
  assert.equal(hex(readLengthPrefixed(r, 1)), '0102');
  assert.equal(hex(readLengthPrefixed(r, 2)), '030405');
  assert.equal(readLengthPrefixed(r, 1).length, 0);
  expectEnd(r, 'fields');
  assert.throws(() => writeLengthPrefixed(new Writer(), 1, new Uint8Array(256)), RangeError);
  assert.throws(() => writeLengthPrefixed(new Writer(), 2, new Uint8Array(0x10000)), RangeError);
  writeLengthPrefixed(new Writer(), 2, new Uint8Array(0xffff));
  assert.throws(() => readLengthPrefixed(new Reader(fromHex('0301'), 'x'), 1), code('ERR_TRUNCATED'));
  assert.throws(() => readLengthPrefixed(new Reader(fromHex('00'), 'x'), 2), code('ERR_TRUNCATED'));
});

test('TLV lists: count, then type / length / body; round trip and exact length', () => {
  const list = [
    { type: 0, body: fromHex('7f0000011388') },
    { type: 255, body: new Uint8Array(0) },
    { type: 128, body: new Uint8Array(255).fill(3) },
  ];
  const w = new Writer(tlvListLength(list));
  writeTlvList(w, list, 'test entry');
  const out = w.finish();
  assert.equal(out.length, tlvListLength(list));
  assert.equal(out.buffer.byteLength, out.length, 'sized exactly: no regrowth');
  assert.equal(hex(out.subarray(0, 9)), '0300067f0000011388');
  const r = new Reader(out, 'list');
  assert.deepEqual(readTlvList(r), list);
  expectEnd(r, 'list');
  // The empty list is one zero byte.
  const e = new Writer();
  writeTlvList(e, [], 'test entry');
  assert.equal(hex(e.finish()), '00');
});

test('TLV lists: encode limits are RangeErrors; short input is ERR_TRUNCATED; what follows is the caller’s', () => {
  const write = (list: Array<{ type: number; body: Uint8Array }>) => writeTlvList(new Writer(), list, 'test entry');
  assert.throws(() => write(Array.from({ length: 256 }, () => ({ type: 1, body: new Uint8Array(0) }))), RangeError);
  assert.throws(() => write([{ type: 256, body: new Uint8Array(0) }]), RangeError);
  assert.throws(() => write([{ type: -1, body: new Uint8Array(0) }]), RangeError);
  assert.throws(() => write([{ type: 1, body: new Uint8Array(256) }]), RangeError);
  assert.throws(() => write([{ type: 1, body: 'ab' as unknown as Uint8Array }]), TypeError);
  write(Array.from({ length: 255 }, () => ({ type: 1, body: new Uint8Array(0) })));
  for (const bad of ['', '01', '0101', '010102aa', '02010100']) {
    assert.throws(() => readTlvList(new Reader(fromHex(bad), 'list')), code('ERR_TRUNCATED'), bad);
  }
  const r = new Reader(fromHex('0001ff'), 'list');
  assert.deepEqual(readTlvList(r), []);
  assert.equal(r.remaining, 2);
  assert.throws(() => expectEnd(r, 'list'), code('ERR_MALFORMED'));
});

test('EXTEND2 link specifiers and ntor-v3 extensions are the same TLV list on the wire', () => {
  const list = [
    { type: 3, body: new Uint8Array(32).fill(1) },
    { type: 9, body: fromHex('abcd') },
  ];
  const ext = encodeNtorExtensions(list);
  const extend2 = encodeExtend2({ specifiers: list, handshakeType: 3, handshakeData: new Uint8Array(0) });
  assert.equal(hex(extend2.subarray(0, ext.length)), hex(ext));
  assert.equal(hex(extend2.subarray(ext.length)), '00030000');
});
