/**
 * Shared pieces of the decoder fuzz tests: a seeded PRNG (so every run sees
 * the same inputs), byte and text mutators, and the one property every
 * decoder must have — return a value or throw an AlliumError, nothing else.
 *
 * A failure message carries the input (hex, or JSON for text), so a failing
 * case can be copied into a named regression test.
 */
import assert from 'node:assert/strict';
import { AlliumError } from '../../src/errors.js';

/** sfc32: small, fast, good enough for test inputs, and fully deterministic. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  bool(p = 0.5): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A length skewed towards small values but reaching `max`. */
  length(max: number): number {
    const r = this.int(4);
    if (r === 0) return this.int(Math.min(max, 16) + 1);
    if (r === 1) return this.int(Math.min(max, 64) + 1);
    return this.int(max + 1);
  }
}

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x7f, 0x80, 0xfe, 0xff];

/** One random structural change to a byte string. */
export function mutateOnce(rng: Rng, input: Uint8Array): Uint8Array {
  const b = new Uint8Array(input);
  const n = b.length;
  switch (rng.int(8)) {
    case 0: // bit flip
      if (n === 0) return rng.bytes(1);
      b[rng.int(n)]! ^= 1 << rng.int(8);
      return b;
    case 1: // random byte
      if (n === 0) return rng.bytes(1);
      b[rng.int(n)] = rng.u32() & 0xff;
      return b;
    case 2: // interesting byte
      if (n === 0) return Uint8Array.of(rng.pick(INTERESTING_BYTES));
      b[rng.int(n)] = rng.pick(INTERESTING_BYTES);
      return b;
    case 3: {
      // insert 1..4 bytes
      const at = rng.int(n + 1);
      const ins = rng.bytes(rng.range(1, 4));
      const out = new Uint8Array(n + ins.length);
      out.set(b.subarray(0, at));
      out.set(ins, at);
      out.set(b.subarray(at), at + ins.length);
      return out;
    }
    case 4: {
      // delete 1..4 bytes
      if (n === 0) return b;
      const at = rng.int(n);
      const len = Math.min(rng.range(1, 4), n - at);
      const out = new Uint8Array(n - len);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + len), at);
      return out;
    }
    case 5: // truncate
      return b.slice(0, rng.int(n + 1));
    case 6: {
      // duplicate a slice in place
      if (n === 0) return b;
      const at = rng.int(n);
      const len = rng.range(1, Math.min(16, n - at));
      const out = new Uint8Array(n + len);
      out.set(b.subarray(0, at + len));
      out.set(b.subarray(at, at + len), at + len);
      out.set(b.subarray(at + len), at + 2 * len);
      return out;
    }
    default: {
      // big-endian u16 field set to an edge value
      if (n < 2) return b;
      const at = rng.int(n - 1);
      const v = rng.pick([0, 1, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff, n, n - at, n - at - 2]);
      b[at] = (v >>> 8) & 0xff;
      b[at + 1] = v & 0xff;
      return b;
    }
  }
}

/** 1..4 mutations. */
export function mutate(rng: Rng, input: Uint8Array): Uint8Array {
  let out = input;
  const k = rng.range(1, 4);
  for (let i = 0; i < k; i++) out = mutateOnce(rng, out);
  return out;
}

const TEXT_CHARS = [' ', '  ', '\n', '\n\n', '\r', '\t', '\0', '=', ':', '-', '/', '.', ',', '[', ']', '*', 'é', '\u2028', 'x', '0', '9', 'A'];
const NUMBER_EDGES = [
  '0', '00', '01', '1', '255', '256', '65535', '65536', '99999', '4294967296', '9007199254740993',
  '99999999999999999999', '-1', '1e3', '0x10', '', '1099511627776', '1099511627777',
];
const TIME_EDGES = [
  '9999-12-31 23:59:59', '9999-12-31 23:59:60', '9999-99-99 99:99:99', '0000-00-00 00:00:00', '1969-12-31 23:59:59',
  '1970-01-01 00:00:00', '2030-02-30 00:00:00', '2030-01-02 24:00:00', '0099-01-01 00:00:00',
];

/** One random change to a line-oriented document. */
export function mutateTextOnce(rng: Rng, text: string): string {
  const lines = text.split('\n');
  const li = rng.int(lines.length);
  switch (rng.int(10)) {
    case 0: // duplicate a line
      lines.splice(li, 0, lines[li]!);
      return lines.join('\n');
    case 1: // remove a line
      lines.splice(li, 1);
      return lines.join('\n');
    case 2: {
      // swap two lines
      const lj = rng.int(lines.length);
      [lines[li], lines[lj]] = [lines[lj]!, lines[li]!];
      return lines.join('\n');
    }
    case 3: // truncate anywhere
      return text.slice(0, rng.int(text.length + 1));
    case 4: {
      // replace, insert or delete one character
      const at = rng.int(text.length + 1);
      const c = rng.pick(TEXT_CHARS);
      const op = rng.int(3);
      if (op === 0) return text.slice(0, at) + c + text.slice(at + 1);
      if (op === 1) return text.slice(0, at) + c + text.slice(at);
      return text.slice(0, at) + text.slice(at + 1);
    }
    case 5: {
      // a number token becomes an edge value
      const tokens = lines[li]!.split(/([0-9]+)/);
      const nums = tokens.map((t, i) => (/^[0-9]+$/.test(t) ? i : -1)).filter((i) => i >= 0);
      if (nums.length === 0) return text;
      tokens[rng.pick(nums)] = rng.pick(NUMBER_EDGES);
      lines[li] = tokens.join('');
      return lines.join('\n');
    }
    case 6: {
      // a time becomes an edge value
      const replaced = lines[li]!.replace(/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}/, rng.pick(TIME_EDGES));
      lines[li] = replaced;
      return lines.join('\n');
    }
    case 7: {
      // an argument (space-separated word) is removed, repeated or cut
      const words = lines[li]!.split(' ');
      const wi = rng.int(words.length);
      const op = rng.int(3);
      if (op === 0) words.splice(wi, 1);
      else if (op === 1) words.splice(wi, 0, words[wi]!);
      else words[wi] = words[wi]!.slice(0, rng.int(words[wi]!.length + 1));
      lines[li] = words.join(' ');
      return lines.join('\n');
    }
    case 8: {
      // a line from elsewhere in the document overwrites this one
      lines[li] = lines[rng.int(lines.length)]!;
      return lines.join('\n');
    }
    default: {
      // bit flip in one character (stays a string; may leave ASCII)
      if (text.length === 0) return 'x';
      const at = rng.int(text.length);
      const c = String.fromCharCode(text.charCodeAt(at) ^ (1 << rng.int(8)));
      return text.slice(0, at) + c + text.slice(at + 1);
    }
  }
}

export function mutateText(rng: Rng, text: string): string {
  let out = text;
  const k = rng.range(1, 3);
  for (let i = 0; i < k; i++) out = mutateTextOnce(rng, out);
  return out;
}

/** A random string of printable ASCII and LF (the document alphabet), sometimes with junk. */
export function randomText(rng: Rng, maxLength: number): string {
  const n = rng.length(maxLength);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rng.int(20);
    s += r === 0 ? '\n' : r === 1 ? String.fromCharCode(rng.int(256)) : String.fromCharCode(0x20 + rng.int(95));
  }
  return rng.bool(0.7) ? `${s}\n` : s;
}

/** Split `input` into random chunks (some empty, some one byte). */
export function chunkings(rng: Rng, input: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < input.length) {
    const r = rng.int(5);
    const len = r === 0 ? 0 : r === 1 ? 1 : r === 2 ? rng.range(1, 8) : rng.range(1, Math.max(1, input.length));
    out.push(input.subarray(at, Math.min(input.length, at + len)));
    at += len;
  }
  if (rng.bool(0.2)) out.push(new Uint8Array(0));
  return out;
}

export function describeBytes(b: Uint8Array, max = 600): string {
  const h = Buffer.from(b).toString('hex');
  return h.length > max ? `${h.slice(0, max)}… (${b.length} bytes)` : `${h} (${b.length} bytes)`;
}

export function describeText(t: string, max = 1500): string {
  const j = JSON.stringify(t);
  return j.length > max ? `${j.slice(0, max)}… (${t.length} chars)` : j;
}

/** Counts of outcomes, so a test can check both paths were exercised. */
export interface Outcomes {
  ok: number;
  rejected: number;
}

export function outcomes(): Outcomes {
  return { ok: 0, rejected: 0 };
}

/**
 * Runs `fn`: a return is fine, an AlliumError is fine, anything else fails
 * the test with `what()` (which should name the input). Returns the value, or
 * undefined when the input was rejected.
 */
export function expectTyped<T>(fn: () => T, what: () => string, tally?: Outcomes): T | undefined {
  try {
    const value = fn();
    if (tally) tally.ok++;
    return value;
  } catch (err) {
    if (err instanceof AlliumError) {
      if (tally) tally.rejected++;
      return undefined;
    }
    const e = err as { constructor?: { name?: string }; message?: string; stack?: string };
    assert.fail(`${what()}\n  threw ${e?.constructor?.name ?? typeof err} (not an AlliumError): ${e?.message ?? String(err)}\n${e?.stack ?? ''}`);
  }
}

export interface ByteFuzzOptions {
  /** Random byte strings of random lengths up to `maxRandomLength`. */
  random: number;
  maxRandomLength: number;
  /** Mutations of the valid samples. */
  mutated: number;
  /** How many samples are also cut at every length. */
  truncateSamples?: number;
}

/**
 * The standard byte-decoder campaign: random inputs, mutated valid samples,
 * and every prefix of the first few samples. `decode` may return anything
 * (including null for "need more bytes") or throw an AlliumError.
 * Returns the tally so callers can check both outcomes happened.
 */
export function fuzzBytes(
  name: string,
  rng: Rng,
  decode: (input: Uint8Array) => unknown,
  samples: readonly Uint8Array[],
  opts: ByteFuzzOptions,
): Outcomes {
  const tally = outcomes();
  const run = (input: Uint8Array, kind: string) =>
    expectTyped(() => decode(input), () => `${name} on ${kind} input ${describeBytes(input)}`, tally);
  for (let i = 0; i < opts.random; i++) run(rng.bytes(rng.length(opts.maxRandomLength)), 'random');
  for (let i = 0; i < opts.mutated && samples.length > 0; i++) run(mutate(rng, rng.pick(samples)), 'mutated');
  const t = Math.min(opts.truncateSamples ?? 3, samples.length);
  for (let s = 0; s < t; s++) {
    const sample = samples[s]!;
    for (let n = 0; n < sample.length; n++) run(sample.subarray(0, n), 'truncated');
  }
  return tally;
}

export function concatAll(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
