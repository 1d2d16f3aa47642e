/**
 * Seeded random sources for tests: the same sequence on every run, so tests
 * that draw many random choices are exact. No side effects at import.
 */
import type { RandomSource } from '../../client/path-selection.js';

/** sfc32 (Chris Doty-Humphrey's small fast counting generator): uniform floats in [0, 1). */
export function sfc32(seed: number): RandomSource {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

/** A seeded xorshift32 generator (Marsaglia): `int(n)` gives an integer in [0, n), `bytes(n)` n bytes. Seed 0 counts as 1. */
export interface Xorshift32 {
  int(n: number): number;
  bytes(n: number): Uint8Array;
}

/** xorshift32 from `seed`: the same sequence on every run, for test cases drawn at random. */
export function xorshift32(seed: number): Xorshift32 {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    int: (n) => next() % n,
    bytes: (n) => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) out[i] = next() & 0xff;
      return out;
    },
  };
}
