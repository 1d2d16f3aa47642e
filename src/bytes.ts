/**
 * Small byte helpers shared by every codec: hex, concatenation, constant-time
 * comparison, a bounds-checked big-endian `Reader` and its pair `Writer`, and
 * the two field shapes Tor's formats repeat: length-prefixed bytes and
 * TLV lists (count, then type / length / body entries).
 */
import { malformed, truncated } from './errors.js';

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

/**
 * A growable big-endian byte builder, the pair of `Reader`. Writes append;
 * `finish()` returns the bytes written as a view of the internal buffer (no
 * copy), so call it once, when done. The buffer starts at `capacity` bytes
 * and doubles when full; size it to the usual message to avoid any regrowth.
 * Out-of-range integers throw RangeError: an encoder's input is the caller's
 * data, not the peer's.
 */
export class Writer {
  #buf: Uint8Array;
  #at = 0;

  constructor(capacity = 64) {
    this.#buf = new Uint8Array(capacity);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#at;
  }

  u8(n: number): this {
    checkUint(n, 0xff, 'u8');
    this.#room(1);
    this.#buf[this.#at++] = n;
    return this;
  }

  u16(n: number): this {
    checkUint(n, 0xffff, 'u16');
    this.#room(2);
    this.#buf[this.#at++] = n >>> 8;
    this.#buf[this.#at++] = n & 0xff;
    return this;
  }

  u32(n: number): this {
    checkUint(n, 0xffffffff, 'u32');
    this.#room(4);
    const b = this.#buf;
    b[this.#at++] = n >>> 24;
    b[this.#at++] = (n >>> 16) & 0xff;
    b[this.#at++] = (n >>> 8) & 0xff;
    b[this.#at++] = n & 0xff;
    return this;
  }

  /** Append `bytes` (copied). */
  bytes(bytes: Uint8Array): this {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('Writer.bytes: expected Uint8Array');
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#at);
    this.#at += bytes.length;
    return this;
  }

  /** The bytes written: a view of the internal buffer, not a copy. */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#at);
  }

  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    let size = Math.max(this.#buf.length * 2, 16);
    while (size < this.#at + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#at));
    this.#buf = grown;
  }
}

function checkUint(n: number, max: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`Writer.${what}: ${n} is not in 0..${max}`);
}

/** Width of a length prefix in bytes: 1 (u8) or 2 (u16, big-endian). */
export type LengthWidth = 1 | 2;

/**
 * Read `length (width) | body (length)` and return the body, a view.
 * ERR_TRUNCATED (naming the reader's `what`) if the body runs past the end.
 */
export function readLengthPrefixed(r: Reader, width: LengthWidth): Uint8Array {
  const length = width === 1 ? r.u8() : r.u16();
  return r.bytes(length);
}

/** Write `length (width) | body`; RangeError if the body does not fit the prefix. */
export function writeLengthPrefixed(w: Writer, width: LengthWidth, body: Uint8Array): void {
  if (width === 1) w.u8(checkedLength(body, 0xff));
  else w.u16(checkedLength(body, 0xffff));
  w.bytes(body);
}

function checkedLength(body: Uint8Array, max: number): number {
  if (!(body instanceof Uint8Array)) throw new TypeError('length-prefixed body: expected Uint8Array');
  if (body.length > max) throw new RangeError(`length-prefixed body: at most ${max} bytes, got ${body.length}`);
  return body.length;
}

/** One entry of a TLV list: a type byte and a body of at most 255 bytes. */
export interface Tlv {
  type: number;
  body: Uint8Array;
}

/** Most entries in a TLV list, and most bytes in one body (both are one-byte fields). */
export const MAX_TLV_ENTRIES = 255;
export const MAX_TLV_BODY = 255;

/**
 * Read a TLV list as Tor writes EXTEND2 link specifiers and ntor-v3 extensions:
 *   count (1) | count × [ type (1) | length (1) | body (length) ]
 * Bodies are views into the reader's bytes. ERR_TRUNCATED if the list ends
 * early; what follows the list is left to the caller.
 */
export function readTlvList(r: Reader): Tlv[] {
  const count = r.u8();
  const list: Tlv[] = [];
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    list.push({ type, body: readLengthPrefixed(r, 1) });
  }
  return list;
}

/** Bytes `writeTlvList` will write for `list` (no validation). */
export function tlvListLength(list: readonly Tlv[]): number {
  let n = 1;
  for (const e of list) n += 2 + e.body.length;
  return n;
}

/**
 * Write a TLV list (layout at `readTlvList`). RangeError, naming `what`, for
 * more than 255 entries, a type outside 0..255 or a body over 255 bytes;
 * TypeError for a body that is not a Uint8Array.
 */
export function writeTlvList(w: Writer, list: readonly Tlv[], what: string): void {
  if (list.length > MAX_TLV_ENTRIES) throw new RangeError(`${what}: at most ${MAX_TLV_ENTRIES} entries, got ${list.length}`);
  w.u8(list.length);
  for (const e of list) {
    if (!Number.isInteger(e.type) || e.type < 0 || e.type > 0xff) throw new RangeError(`${what} type: expected 0..255, got ${e.type}`);
    if (!(e.body instanceof Uint8Array)) throw new TypeError(`${what} body: expected Uint8Array`);
    if (e.body.length > MAX_TLV_BODY) throw new RangeError(`${what} body: at most ${MAX_TLV_BODY} bytes, got ${e.body.length}`);
    w.u8(e.type);
    writeLengthPrefixed(w, 1, e.body);
  }
}

/** ERR_MALFORMED naming `what` unless the reader is at its end. */
export function expectEnd(r: Reader, what: string): void {
  if (r.remaining !== 0) throw malformed(`${what}: ${r.remaining} trailing bytes`);
}
