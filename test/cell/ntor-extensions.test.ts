import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNtorExtensions, encodeNtorExtensions } from '../../src/cell/ntor-extensions.js';
import { DecodeError } from '../../src/errors.js';
import { hex } from '../../src/bytes.js';

const isDecode = (code: string) => (err: unknown) => err instanceof DecodeError && err.code === code;

test('the empty list is one zero byte', () => {
  assert.equal(hex(encodeNtorExtensions([])), '00');
  assert.deepEqual(decodeNtorExtensions(new Uint8Array([0])), []);
});

test('round trip', () => {
  const list = [
    { type: 1, body: new Uint8Array([0x01, 0x02]) },
    { type: 2, body: new Uint8Array(0) },
    { type: 0xff, body: new Uint8Array(255).fill(7) },
  ];
  const bytes = encodeNtorExtensions(list);
  assert.equal(bytes.length, 1 + 4 + 2 + 257);
  assert.equal(hex(bytes.subarray(0, 7)), '03010201020200');
  assert.deepEqual(decodeNtorExtensions(bytes), list);
  // Order and repeats are kept as sent; interpreting them is the caller's job.
  const repeated = [
    { type: 5, body: new Uint8Array([1]) },
    { type: 5, body: new Uint8Array([2]) },
  ];
  assert.deepEqual(decodeNtorExtensions(encodeNtorExtensions(repeated)), repeated);
  const many = Array.from({ length: 255 }, (_, i) => ({ type: i, body: new Uint8Array([i]) }));
  assert.deepEqual(decodeNtorExtensions(encodeNtorExtensions(many)), many);
});

test('decoded bodies do not alias the input', () => {
  const bytes = encodeNtorExtensions([{ type: 1, body: new Uint8Array([9]) }]);
  const [ext] = decodeNtorExtensions(bytes);
  bytes[3] = 0;
  assert.equal(ext!.body[0], 9);
});

test('truncated input is ERR_TRUNCATED', () => {
  const bytes = encodeNtorExtensions([
    { type: 1, body: new Uint8Array([1, 2, 3]) },
    { type: 2, body: new Uint8Array([4]) },
  ]);
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeNtorExtensions(bytes.subarray(0, n)), isDecode('ERR_TRUNCATED'), `length ${n}`);
  }
  assert.throws(() => decodeNtorExtensions(new Uint8Array([1, 7, 5, 0])), isDecode('ERR_TRUNCATED'));
});

test('trailing bytes are ERR_MALFORMED', () => {
  assert.throws(() => decodeNtorExtensions(new Uint8Array([0, 0])), isDecode('ERR_MALFORMED'));
  assert.throws(() => decodeNtorExtensions(new Uint8Array([1, 1, 1, 9, 0xaa])), isDecode('ERR_MALFORMED'));
});

test('oversized lists and bodies are a RangeError on encode', () => {
  const tooMany = Array.from({ length: 256 }, () => ({ type: 1, body: new Uint8Array(0) }));
  assert.throws(() => encodeNtorExtensions(tooMany), RangeError);
  assert.throws(() => encodeNtorExtensions([{ type: 1, body: new Uint8Array(256) }]), RangeError);
  assert.throws(() => encodeNtorExtensions([{ type: 256, body: new Uint8Array(0) }]), RangeError);
  assert.throws(() => encodeNtorExtensions([{ type: -1, body: new Uint8Array(0) }]), RangeError);
});
