/**
 * Small byte helpers shared by every codec: hex, concatenation, constant-time
 * comparison, and a bounds-checked big-endian reader.
 */
import { truncated } from './errors.js';

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(text: string): Uint8Array {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new TypeError(`fromHex: not a hex string of even length`);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Constant-time equality for equal-length inputs; false for different lengths. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function u16(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 0xff, n & 0xff]);
}

export function u64(n: bigint | number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** Copy a view into a fresh, unshared Uint8Array (socket Buffers share memory). */
export function copyBytes(view: Uint8Array): Uint8Array {
  return new Uint8Array(view);
}

/** Validate a byte-array argument at an API boundary. */
export function abytes(value: unknown, name: string, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${name}: expected ${length} bytes, got ${value.length}`);
  }
}

/**
 * A bounds-checked big-endian cursor. Running past the end throws
 * `ERR_TRUNCATED` naming `what`.
 */
export class Reader {
  readonly #bytes: Uint8Array;
  readonly #what: string;
  #at = 0;

  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#what = what;
  }

  get remaining(): number {
    return this.#bytes.length - this.#at;
  }

  get offset(): number {
    return this.#at;
  }

  u8(): number {
    this.#need(1);
    return this.#bytes[this.#at++]!;
  }

  u16(): number {
    this.#need(2);
    const v = (this.#bytes[this.#at]! << 8) | this.#bytes[this.#at + 1]!;
    this.#at += 2;
    return v;
  }

  u32(): number {
    this.#need(4);
    const b = this.#bytes;
    const v = ((b[this.#at]! << 24) | (b[this.#at + 1]! << 16) | (b[this.#at + 2]! << 8) | b[this.#at + 3]!) >>> 0;
    this.#at += 4;
    return v;
  }

  /** A view (not a copy) of the next `n` bytes. */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const v = this.#bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return v;
  }

  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  #need(n: number): void {
    if (this.#at + n > this.#bytes.length) throw truncated(this.#what);
  }
}
