import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeCrypto } from '../../src/crypto/crypto.js';
import { nobleCrypto } from '../../src/crypto/noble-backend.js';
import { Sha1State, sha1Ts } from '../../src/crypto/sha1.js';
import { hex } from '../../src/bytes.js';
import { xorshift32 } from '../support/seeded-random.js';

const ascii = (s: string) => new TextEncoder().encode(s);

test('SHA-1 (sha1.ts): FIPS 180-2 appendix A vectors and the million-a message', () => {
  assert.equal(hex(sha1Ts(ascii('abc'))), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  assert.equal(hex(sha1Ts(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))), '84983e441c3bd26ebaae4aa1f95129e5e54670f1');
  assert.equal(hex(sha1Ts(new Uint8Array(0))), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
  assert.equal(hex(sha1Ts(new Uint8Array(1_000_000).fill(0x61))), '34aa973cd4c4daa4f61eeb2bdbad27316534016f');
});

test('SHA-1 (sha1.ts): every length 0..300 and every split point agree with node:crypto and @noble', () => {
  const data = nodeCrypto.randomBytes(300);
  for (let n = 0; n <= 300; n++) {
    const msg = data.subarray(0, n);
    const want = hex(nodeCrypto.sha1(msg));
    assert.equal(hex(sha1Ts(msg)), want, `length ${n}`);
    assert.equal(hex(nobleCrypto.sha1(msg)), want, `length ${n} (noble)`);
    if (n % 7 === 0) {
      for (let cut = 0; cut <= n; cut++) {
        const s = new Sha1State();
        s.update(msg.subarray(0, cut));
        s.update(msg.subarray(cut));
        const out = new Uint8Array(20);
        s.digestInto(out);
        assert.equal(hex(out), want, `length ${n} split at ${cut}`);
      }
    }
  }
});

test('SHA-1 (sha1.ts): a running digest read after every 509-byte cell, copies independent of the original', () => {
  const seed = nodeCrypto.randomBytes(20);
  const live = new Sha1State();
  live.update(seed);
  const absorbed: Uint8Array[] = [seed];
  const out = new Uint8Array(20);
  for (let i = 0; i < 40; i++) {
    const cell = nodeCrypto.randomBytes(509);
    const saved = new Sha1State();
    saved.copyFrom(live);
    live.update(cell);
    absorbed.push(cell);
    live.digestInto(out);
    assert.equal(hex(out), hex(nodeCrypto.sha1(Buffer.concat(absorbed))), `cell ${i}`);
    // The copy taken before the cell still gives the value before it.
    saved.digestInto(out);
    assert.equal(hex(out), hex(nodeCrypto.sha1(Buffer.concat(absorbed.slice(0, -1)))), `copy before cell ${i}`);
  }
  assert.throws(() => live.digestInto(new Uint8Array(19)), RangeError);
});

test('SHA-1 (sha1.ts): random lengths cut into random pieces at random offsets, read after every piece, agree with node:crypto', () => {
  // Seeded: every case reproducible.
  const { int } = xorshift32(0x9e3779b9);
  const out = new Uint8Array(24);
  for (let round = 0; round < 200; round++) {
    const length = int(4000);
    // The message sits at a random offset in a larger buffer, as a cell payload sits in a frame.
    const offset = int(64);
    const frame = new Uint8Array(offset + length + int(64));
    for (let i = 0; i < frame.length; i++) frame[i] = int(256);
    const message = frame.subarray(offset, offset + length);
    const ours = new Sha1State();
    for (let at = 0; at < length; ) {
      const piece = Math.min(length - at, int(3) === 0 ? int(8) : int(700));
      ours.update(message.subarray(at, at + piece));
      at += piece;
      const where = int(5);
      ours.digestInto(out, where);
      assert.equal(hex(out.subarray(where, where + 20)), hex(nodeCrypto.sha1(message.subarray(0, at))), `round ${round}, after ${at} bytes`);
    }
    ours.digestInto(out);
    assert.equal(hex(out.subarray(0, 20)), hex(nodeCrypto.sha1(message)), `round ${round}, whole`);
  }
});
