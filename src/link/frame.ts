/**
 * The link frame codec (docs/protocol.md §3.4), pure and sans-IO.
 *
 *     length L (2, big-endian) | ciphertext (L bytes)
 *
 * The ciphertext is one Noise transport message whose plaintext is k >= 1
 * whole 514-byte cells; L = 514k + 16 <= 65535, so k <= 127.
 *
 * - `Deframer` cuts a byte stream into ciphertexts (no crypto, bounded memory);
 * - `FrameSealer` / `FrameOpener` wrap a Noise CipherState with the rekey rule;
 * - `splitCells` checks a plaintext is whole cells.
 */
import { CELL_LENGTH } from '../constants.js';
import { ProtocolError, malformed, oversized, truncated } from '../errors.js';
import { TAGLEN, type CipherState } from './noise.js';

export const FRAME_HEADER_LENGTH = 2;
const EMPTY = new Uint8Array(0);
/** Largest ciphertext length a frame header can carry. */
export const MAX_FRAME_CIPHERTEXT = 0xffff;
/** At most 127 cells per frame: 127 * 514 + 16 = 65294 <= 65535. */
export const MAX_CELLS_PER_FRAME = Math.floor((MAX_FRAME_CIPHERTEXT - TAGLEN) / CELL_LENGTH);
export const MIN_FRAME_CIPHERTEXT = CELL_LENGTH + TAGLEN;
export const MAX_FRAME_CIPHERTEXT_USED = MAX_CELLS_PER_FRAME * CELL_LENGTH + TAGLEN;
/** Each direction rekeys after every 2^16 frames. */
export const REKEY_INTERVAL_FRAMES = 0x10000;

/**
 * Whether a receiver accepts L before decrypting: 530 <= L <= 65294. Whether
 * L - 16 is a whole number of cells is checked on the plaintext (FrameOpener).
 */
export function validFrameLength(length: number): boolean {
  return length >= MIN_FRAME_CIPHERTEXT && length <= MAX_FRAME_CIPHERTEXT_USED;
}

/** Prefix a ciphertext with its 2-byte big-endian length. */
export function encodeFrame(ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length > MAX_FRAME_CIPHERTEXT) throw oversized('link frame');
  const out = new Uint8Array(FRAME_HEADER_LENGTH + ciphertext.length);
  out[0] = ciphertext.length >>> 8;
  out[1] = ciphertext.length & 0xff;
  out.set(ciphertext, FRAME_HEADER_LENGTH);
  return out;
}

/** The cells of a decrypted frame, each an unshared copy. ProtocolError unless k >= 1 whole cells. */
export function splitCells(plaintext: Uint8Array): Uint8Array[] {
  if (plaintext.length === 0 || plaintext.length % CELL_LENGTH !== 0) {
    throw new ProtocolError(`link frame plaintext of ${plaintext.length} bytes is not whole cells`);
  }
  const cells: Uint8Array[] = [];
  for (let at = 0; at < plaintext.length; at += CELL_LENGTH) cells.push(plaintext.slice(at, at + CELL_LENGTH));
  return cells;
}

/**
 * Cuts a byte stream into frame ciphertexts. `push` returns every whole frame
 * the bytes complete (a frame that lies whole inside one chunk is a view into
 * that chunk); a partial frame is kept (needing more bytes is not an error). It never holds more than one frame's worth of partial data. A length
 * no valid frame can have throws (the link must then close).
 */
export class Deframer {
  readonly #validLength: (length: number) => boolean;
  /** Partial frame: header bytes plus ciphertext, at most 2 + 65535. */
  #buf: Uint8Array | null = null;
  #have = 0;
  #need = 0; // total length of the frame in #buf (header + body), 0 while the header is incomplete
  #header = new Uint8Array(FRAME_HEADER_LENGTH);
  #headerHave = 0;
  #failed = false;

  constructor(validLength: (length: number) => boolean = validFrameLength) {
    this.#validLength = validLength;
  }

  /** Bytes of a partial frame held. */
  get buffered(): number {
    return this.#buf === null ? this.#headerHave : FRAME_HEADER_LENGTH + this.#have;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw malformed('link frame stream already failed');
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.#buf === null) {
        // Reading the header.
        if (this.#headerHave === 0 && chunk.length - at >= FRAME_HEADER_LENGTH) {
          const length = (chunk[at]! << 8) | chunk[at + 1]!;
          this.#checkLength(length);
          at += FRAME_HEADER_LENGTH;
          if (chunk.length - at >= length) {
            // Whole frame in this chunk: a view, no copy (the chunk must not change while the frame is in use).
            out.push(chunk.subarray(at, at + length));
            at += length;
            continue;
          }
          this.#startBody(length);
          continue;
        }
        this.#header[this.#headerHave++] = chunk[at++]!;
        if (this.#headerHave === FRAME_HEADER_LENGTH) {
          const length = (this.#header[0]! << 8) | this.#header[1]!;
          this.#headerHave = 0;
          this.#checkLength(length);
          this.#startBody(length);
        }
        continue;
      }
      const take = Math.min(this.#need - this.#have, chunk.length - at);
      this.#buf.set(chunk.subarray(at, at + take), this.#have);
      this.#have += take;
      at += take;
      if (this.#have === this.#need) {
        out.push(this.#buf);
        this.#buf = null;
        this.#have = 0;
        this.#need = 0;
      }
    }
    return out;
  }

  /** Call at end of stream: throws ERR_TRUNCATED if a frame was cut off. */
  end(): void {
    if (this.buffered > 0) throw truncated('link frame');
  }

  #startBody(length: number): void {
    // Unzeroed memory (push() fills all `length` bytes before the frame is handed out), seen as a plain Uint8Array.
    const memory = Buffer.allocUnsafe(length);
    this.#buf = new Uint8Array(memory.buffer, memory.byteOffset, length);
    this.#have = 0;
    this.#need = length;
  }

  #checkLength(length: number): void {
    if (!this.#validLength(length)) {
      this.#failed = true;
      if (length > MAX_FRAME_CIPHERTEXT_USED) throw oversized(`link frame of ${length} bytes`);
      throw malformed(`link frame of ${length} bytes is shorter than one cell`);
    }
  }
}

/** Encrypts frames in one direction, rekeying after every `rekeyInterval` frames. */
export class FrameSealer {
  readonly #cipher: CipherState;
  readonly #rekeyInterval: number;
  #frames = 0;

  constructor(cipher: CipherState, rekeyInterval: number = REKEY_INTERVAL_FRAMES) {
    this.#cipher = cipher;
    this.#rekeyInterval = rekeyInterval;
  }

  get framesSent(): number {
    return this.#frames;
  }

  /** One whole frame (header included) carrying `plaintext`: k whole cells, 1 <= k <= 127. */
  seal(plaintext: Uint8Array): Uint8Array {
    const [header, body, tag] = this.sealParts(plaintext);
    const frame = new Uint8Array(header.length + body.length + tag.length);
    frame.set(header);
    frame.set(body, header.length);
    frame.set(tag, header.length + body.length);
    return frame;
  }

  /**
   * seal() in three pieces, for a corked socket that writes them in one
   * writev without joining them: [2-byte length header, ciphertext body,
   * 16-byte tag]. The frame is header || body || tag.
   */
  sealParts(plaintext: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
    const k = plaintext.length / CELL_LENGTH;
    if (!Number.isInteger(k) || k < 1 || k > MAX_CELLS_PER_FRAME) {
      throw new RangeError(`FrameSealer: ${plaintext.length} bytes is not 1..${MAX_CELLS_PER_FRAME} cells`);
    }
    const [body, tag] = this.#cipher.encryptWithAdDetached(EMPTY, plaintext);
    this.#frames++;
    if (this.#frames % this.#rekeyInterval === 0) this.#cipher.rekey();
    const length = body.length + tag.length;
    return [Uint8Array.of(length >>> 8, length & 0xff), body, tag];
  }

  /** Frames for any number of cells (as one concatenated buffer), 127 cells per frame. */
  sealCells(cells: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    const per = MAX_CELLS_PER_FRAME * CELL_LENGTH;
    for (let at = 0; at < cells.length; at += per) frames.push(this.seal(cells.subarray(at, Math.min(at + per, cells.length))));
    return frames;
  }
}

/** Decrypts frames in one direction with the same rekey rule. */
export class FrameOpener {
  readonly #cipher: CipherState;
  readonly #rekeyInterval: number;
  #frames = 0;

  constructor(cipher: CipherState, rekeyInterval: number = REKEY_INTERVAL_FRAMES) {
    this.#cipher = cipher;
    this.#rekeyInterval = rekeyInterval;
  }

  get framesReceived(): number {
    return this.#frames;
  }

  /** The plaintext of one frame ciphertext. ProtocolError if it fails authentication or is not whole cells. */
  open(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.#cipher.decryptWithAd(EMPTY, ciphertext);
    if (plaintext === null) throw new ProtocolError('link frame failed authentication');
    this.#frames++;
    if (this.#frames % this.#rekeyInterval === 0) this.#cipher.rekey();
    if (plaintext.length === 0 || plaintext.length % CELL_LENGTH !== 0) {
      throw new ProtocolError(`link frame plaintext of ${plaintext.length} bytes is not whole cells`);
    }
    return plaintext;
  }
}
