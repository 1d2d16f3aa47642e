/**
 * SHA-1 (FIPS 180-4 §6.1) over a state kept in typed arrays, for tor1's
 * running digests (docs/protocol.md §4.3), which need the digest value after
 * every relay cell without ending the hash.
 *
 * node:crypto can only do that with a native state copy per cell
 * (`hash.copy().digest()`), whose call overhead is larger than the hashing.
 * Here the state is five 32-bit words plus at most 63 buffered bytes: taking
 * the value is padding the tail in place and compressing it (one or two
 * compressions) into a copy of the five words, and saving or restoring the
 * whole state is copying 5 words and at most 63 bytes.
 *
 * SHA-1 is used here only as tor1 prescribes (a running integrity check of
 * relay cells between two ends sharing keys), not as a collision-resistant hash.
 */
import type { RunningDigest } from './backend.js';

const BLOCK = 64;
const INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0] as const;

/**
 * Compress `blocks` 64-byte blocks of `data` starting at byte `at` into the
 * five words `h` (big-endian words, FIPS 180-4 §6.1.2). The message words
 * are read with DataView.getInt32 (big-endian by default), which optimized
 * code turns into one load and a byte swap: compress costs about 60 % of
 * what four byte loads, shifts and ors per word cost.
 */
function compress(h: Int32Array, data: DataView, at: number, blocks: number): void {
  let h0 = h[0]!, h1 = h[1]!, h2 = h[2]!, h3 = h[3]!, h4 = h[4]!;
  for (let n = 0; n < blocks; n++, at += BLOCK) {
    // Generated: the 80 rounds unrolled, the schedule in 16 rolling locals, the
    // five working variables renamed each round instead of moved.
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    let w0 = data.getInt32(at + 0);
    let w1 = data.getInt32(at + 4);
    let w2 = data.getInt32(at + 8);
    let w3 = data.getInt32(at + 12);
    let w4 = data.getInt32(at + 16);
    let w5 = data.getInt32(at + 20);
    let w6 = data.getInt32(at + 24);
    let w7 = data.getInt32(at + 28);
    let w8 = data.getInt32(at + 32);
    let w9 = data.getInt32(at + 36);
    let w10 = data.getInt32(at + 40);
    let w11 = data.getInt32(at + 44);
    let w12 = data.getInt32(at + 48);
    let w13 = data.getInt32(at + 52);
    let w14 = data.getInt32(at + 56);
    let w15 = data.getInt32(at + 60);
    e = (((a << 5) | (a >>> 27)) + (d ^ (b & (c ^ d))) + e + w0 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
    d = (((e << 5) | (e >>> 27)) + (c ^ (a & (b ^ c))) + d + w1 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
    c = (((d << 5) | (d >>> 27)) + (b ^ (e & (a ^ b))) + c + w2 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
    b = (((c << 5) | (c >>> 27)) + (a ^ (d & (e ^ a))) + b + w3 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
    a = (((b << 5) | (b >>> 27)) + (e ^ (c & (d ^ e))) + a + w4 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
    e = (((a << 5) | (a >>> 27)) + (d ^ (b & (c ^ d))) + e + w5 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
    d = (((e << 5) | (e >>> 27)) + (c ^ (a & (b ^ c))) + d + w6 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
    c = (((d << 5) | (d >>> 27)) + (b ^ (e & (a ^ b))) + c + w7 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
    b = (((c << 5) | (c >>> 27)) + (a ^ (d & (e ^ a))) + b + w8 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
    a = (((b << 5) | (b >>> 27)) + (e ^ (c & (d ^ e))) + a + w9 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
    e = (((a << 5) | (a >>> 27)) + (d ^ (b & (c ^ d))) + e + w10 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
    d = (((e << 5) | (e >>> 27)) + (c ^ (a & (b ^ c))) + d + w11 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
    c = (((d << 5) | (d >>> 27)) + (b ^ (e & (a ^ b))) + c + w12 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
    b = (((c << 5) | (c >>> 27)) + (a ^ (d & (e ^ a))) + b + w13 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
    a = (((b << 5) | (b >>> 27)) + (e ^ (c & (d ^ e))) + a + w14 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
    e = (((a << 5) | (a >>> 27)) + (d ^ (b & (c ^ d))) + e + w15 + 0x5a827999) | 0; b = (b << 30) | (b >>> 2);
    w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (c ^ (a & (b ^ c))) + d + w0 + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
    w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (b ^ (e & (a ^ b))) + c + w1 + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
    w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (a ^ (d & (e ^ a))) + b + w2 + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
    w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (e ^ (c & (d ^ e))) + a + w3 + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
    w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w4 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
    w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w5 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
    w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w6 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
    w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w7 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
    w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w8 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
    w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w9 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
    w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w10 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
    w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w11 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
    w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w12 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
    w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w13 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
    w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w14 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
    w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w15 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
    w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w0 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
    w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w1 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
    w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w2 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
    w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w3 + 0x6ed9eba1) | 0; b = (b << 30) | (b >>> 2);
    w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w4 + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
    w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w5 + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
    w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w6 + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
    w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w7 + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
    w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
    e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w8 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
    w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
    d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w9 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
    w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
    c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w10 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
    w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
    b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w11 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
    w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
    a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w12 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
    w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
    e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w13 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
    w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
    d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w14 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
    w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
    c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w15 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
    w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
    b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w0 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
    w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
    a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w1 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
    w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
    e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w2 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
    w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
    d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w3 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
    w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
    c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w4 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
    w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
    b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w5 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
    w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
    a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w6 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
    w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
    e = (((a << 5) | (a >>> 27)) + ((b & c) | (d & (b | c))) + e + w7 + 0x8f1bbcdc) | 0; b = (b << 30) | (b >>> 2);
    w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
    d = (((e << 5) | (e >>> 27)) + ((a & b) | (c & (a | b))) + d + w8 + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
    w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
    c = (((d << 5) | (d >>> 27)) + ((e & a) | (b & (e | a))) + c + w9 + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
    w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
    b = (((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + b + w10 + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
    w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
    a = (((b << 5) | (b >>> 27)) + ((c & d) | (e & (c | d))) + a + w11 + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
    w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w12 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
    w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w13 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
    w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w14 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
    w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w15 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
    w0 ^= w13 ^ w8 ^ w2; w0 = (w0 << 1) | (w0 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w0 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
    w1 ^= w14 ^ w9 ^ w3; w1 = (w1 << 1) | (w1 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w1 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
    w2 ^= w15 ^ w10 ^ w4; w2 = (w2 << 1) | (w2 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w2 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
    w3 ^= w0 ^ w11 ^ w5; w3 = (w3 << 1) | (w3 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w3 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
    w4 ^= w1 ^ w12 ^ w6; w4 = (w4 << 1) | (w4 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w4 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
    w5 ^= w2 ^ w13 ^ w7; w5 = (w5 << 1) | (w5 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w5 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
    w6 ^= w3 ^ w14 ^ w8; w6 = (w6 << 1) | (w6 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w6 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
    w7 ^= w4 ^ w15 ^ w9; w7 = (w7 << 1) | (w7 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w7 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
    w8 ^= w5 ^ w0 ^ w10; w8 = (w8 << 1) | (w8 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w8 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
    w9 ^= w6 ^ w1 ^ w11; w9 = (w9 << 1) | (w9 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w9 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
    w10 ^= w7 ^ w2 ^ w12; w10 = (w10 << 1) | (w10 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w10 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
    w11 ^= w8 ^ w3 ^ w13; w11 = (w11 << 1) | (w11 >>> 31);
    e = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + w11 + 0xca62c1d6) | 0; b = (b << 30) | (b >>> 2);
    w12 ^= w9 ^ w4 ^ w14; w12 = (w12 << 1) | (w12 >>> 31);
    d = (((e << 5) | (e >>> 27)) + (a ^ b ^ c) + d + w12 + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
    w13 ^= w10 ^ w5 ^ w15; w13 = (w13 << 1) | (w13 >>> 31);
    c = (((d << 5) | (d >>> 27)) + (e ^ a ^ b) + c + w13 + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
    w14 ^= w11 ^ w6 ^ w0; w14 = (w14 << 1) | (w14 >>> 31);
    b = (((c << 5) | (c >>> 27)) + (d ^ e ^ a) + b + w14 + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
    w15 ^= w12 ^ w7 ^ w1; w15 = (w15 << 1) | (w15 >>> 31);
    a = (((b << 5) | (b >>> 27)) + (c ^ d ^ e) + a + w15 + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
    h0 = (h0 + a) | 0; h1 = (h1 + b) | 0; h2 = (h2 + c) | 0; h3 = (h3 + d) | 0; h4 = (h4 + e) | 0;

  }
  h[0] = h0; h[1] = h1; h[2] = h2; h[3] = h3; h[4] = h4;
}

/** Scratch for digestInto: the five chaining words. One per thread. */
const scratchH = new Int32Array(5);

/**
 * A DataView over the whole of `buffer`. The last one is kept: the cells a
 * caller hashes one after another are mostly views into one buffer (a
 * cipher output, a frame), so most calls make no DataView.
 */
let lastBuffer: ArrayBufferLike | null = null;
let lastView: DataView | null = null;
function viewOf(buffer: ArrayBufferLike): DataView {
  if (buffer !== lastBuffer || lastView === null) {
    lastView = new DataView(buffer);
    lastBuffer = buffer;
  }
  return lastView;
}

/**
 * Copy `n` bytes from `src` at `s` to `dst` at `d`, four at a time (a
 * big-endian load and store keep the byte order; neither side need be
 * aligned), the last 0-3 one by one. For the tail (at most 63 bytes), about
 * a third of the instructions of a byte loop.
 */
function copyBytes(dst: DataView, d: number, src: DataView, s: number, n: number): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) dst.setInt32(d + i, src.getInt32(s + i));
  for (; i < n; i++) dst.setUint8(d + i, src.getUint8(s + i));
}

/**
 * A running SHA-1: `update` absorbs bytes, `digestInto` writes the value of
 * everything absorbed so far and leaves the state as it was, `copyFrom`
 * makes this state equal to another's (no allocation).
 */
export class Sha1State {
  /** The five chaining words (signed int32 view of the big-endian words). */
  readonly h = new Int32Array(INIT);
  /**
   * Bytes absorbed but not yet compressed: tail[0 .. tailLength), at most 63.
   * Two blocks long: digestInto pads in place after them (what lies past
   * tailLength is scratch).
   */
  readonly tail = new Uint8Array(2 * BLOCK);
  readonly #tailView = new DataView(this.tail.buffer);
  tailLength = 0;
  /** Total bytes absorbed (exact up to 2^53). */
  length = 0;

  /** Absorb `data` (any length). */
  update(data: Uint8Array): void {
    const length = data.length;
    if (length === 0) return;
    this.length += length;
    const tailView = this.#tailView;
    let t = this.tailLength;
    // The message words are read through a DataView over data's buffer, and the
    // tail moves four bytes at a time (copyBytes): cheaper per 509-byte cell
    // than byte loops or a subarray and a set.
    const src = viewOf(data.buffer);
    let at = data.byteOffset;
    const end = at + length;
    if (t > 0) {
      const take = Math.min(BLOCK - t, length);
      copyBytes(tailView, t, src, at, take);
      t += take;
      at += take;
      if (t < BLOCK) {
        this.tailLength = t;
        return;
      }
      compress(this.h, tailView, 0, 1);
    }
    const blocks = (end - at) >>> 6;
    if (blocks > 0) {
      compress(this.h, src, at, blocks);
      at += blocks * BLOCK;
    }
    copyBytes(tailView, 0, src, at, end - at);
    this.tailLength = end - at;
  }

  /**
   * Write the 20-byte SHA-1 of everything absorbed so far at `out[offset..offset+20)`;
   * the state is unchanged. Throws RangeError if `out` is too short.
   */
  digestInto(out: Uint8Array, offset = 0): void {
    if (out.length < offset + 20) throw new RangeError('Sha1State.digestInto: output shorter than 20 bytes');
    const h = scratchH;
    const own = this.h;
    h[0] = own[0]!; h[1] = own[1]!; h[2] = own[2]!; h[3] = own[3]!; h[4] = own[4]!;
    // Pad in place after the buffered bytes: 0x80, zeros, the 64-bit bit length.
    const n = this.tailLength;
    const tail = this.tail;
    const tailView = this.#tailView;
    tail[n] = 0x80;
    const blocks = n < BLOCK - 8 ? 1 : 2;
    const lengthAt = blocks * BLOCK - 8; // a multiple of 4
    let i = n + 1;
    for (; (i & 3) !== 0 && i < lengthAt; i++) tail[i] = 0;
    for (; i < lengthAt; i += 4) tailView.setInt32(i, 0);
    const bits = this.length * 8;
    tailView.setUint32(lengthAt, Math.floor(bits / 0x100000000));
    tailView.setUint32(lengthAt + 4, bits >>> 0);
    compress(h, tailView, 0, blocks);
    for (let w = 0; w < 5; w++) {
      const v = h[w]!;
      out[offset + 4 * w] = v >>> 24;
      out[offset + 4 * w + 1] = v >>> 16;
      out[offset + 4 * w + 2] = v >>> 8;
      out[offset + 4 * w + 3] = v;
    }
  }

  /** Make this state equal to `other`'s (copies 5 words and the buffered tail). */
  copyFrom(other: Sha1State): void {
    this.h.set(other.h);
    this.tail.set(other.tail.subarray(0, other.tailLength), 0);
    this.tailLength = other.tailLength;
    this.length = other.length;
  }
}

/** One-shot SHA-1 of `data` through Sha1State (for tests against node:crypto). */
export function sha1Ts(data: Uint8Array): Uint8Array {
  const s = new Sha1State();
  s.update(data);
  const out = new Uint8Array(20);
  s.digestInto(out);
  return out;
}

/**
 * The RunningDigest (backend.ts) over Sha1State: `peek` costs one or two
 * compressions on a copy of the tail and a 20-byte array, no native call and
 * no state copy.
 */
export class Sha1RunningDigest implements RunningDigest {
  readonly #state: Sha1State;
  constructor(state: Sha1State = new Sha1State()) {
    this.#state = state;
  }
  update(data: Uint8Array): void {
    this.#state.update(data);
  }
  peek(): Uint8Array {
    const out = new Uint8Array(20);
    this.#state.digestInto(out);
    return out;
  }
  peekInto(out: Uint8Array, offset = 0): void {
    this.#state.digestInto(out, offset);
  }
  clone(): RunningDigest {
    const copy = new Sha1State();
    copy.copyFrom(this.#state);
    return new Sha1RunningDigest(copy);
  }
  finish(): Uint8Array {
    return this.peek();
  }
}
