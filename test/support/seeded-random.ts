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
