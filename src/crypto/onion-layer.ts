/**
 * tor1 relay cell crypto (docs/protocol.md): one `OnionLayer` per
 * hop and direction, shared by the client and the relay that hold the same keys.
 *
 * A layer is an AES-128-CTR stream (zero IV, never reset) plus a running SHA-1
 * seeded with Df or Db. The cipher removes or adds one layer of encryption; the
 * digest lets the endpoint of that layer recognize and authenticate cells.
 *
 * This is the per-cell hot path: no allocation per cell (the digest values
 * go into arrays made once; the backend's `clone` allocates, on the rare
 * open that needs it), no copies of the 509-byte payload. Cells
 * that travel together (one link read, one burst of originated cells) go
 * through `cryptCells`: one keystream call for all of them, exact because the
 * counter-mode keystream runs on contiguously from one cell to the next.
 */
import type { CryptoBackend, RunningDigest, StreamCipher } from './backend.js';
import { crypto } from './crypto.js';
import { AlliumError } from '../errors.js';
import { abytes } from '../bytes.js';
import { CELL_PAYLOAD_LENGTH, TOR1_KEY_MATERIAL_LENGTH } from '../constants.js';
import { cellPayload } from '../cell/channel-cell.js';
import {
  RELAY_DIGEST_OFFSET as DIGEST_OFFSET,
  RELAY_RECOGNIZED_OFFSET as RECOGNIZED_OFFSET,
} from '../cell/relay-cell.js';

/** Bytes of a tor1 running digest value (SHA-1). */
export const TOR1_DIGEST_LENGTH = 20;
const TOR1_KEY_LENGTH = 16;
/** Where the 509-byte payload starts in a 514-byte channel cell (docs/protocol.md §2). */
const CELL_PAYLOAD_OFFSET = 5;
/** Payloads gathered per keystream call by cryptCells (64 KiB of payload). */
const GATHER_CELLS = 128;

/**
 * cryptCells' and peelBackward's gather buffer: GATHER_OFFSET spare bytes,
 * then up to GATHER_CELLS payloads end to end. One per thread (module
 * state), used only inside one synchronous call, so layers can share it.
 */
const gather = new Uint8Array(CELL_PAYLOAD_OFFSET + GATHER_CELLS * CELL_PAYLOAD_LENGTH);
/** Where the first payload starts in `gather`. */
const GATHER_OFFSET = CELL_PAYLOAD_OFFSET;
/** Where openDigest takes a candidate digest value before it knows whether the cell matches (module state, one synchronous call). */
const candidateValue = new Uint8Array(TOR1_DIGEST_LENGTH);
/** Views of `gather`, made once: cellWindows[i] is slot i's payload with the 5 bytes before it (a whole cell's shape); payloadWindows[i] is the payload alone. */
const cellWindows: Uint8Array[] = [];
const payloadWindows: Uint8Array[] = [];
for (let i = 0; i < GATHER_CELLS; i++) {
  const at = GATHER_OFFSET + i * CELL_PAYLOAD_LENGTH;
  cellWindows.push(gather.subarray(at - CELL_PAYLOAD_OFFSET, at + CELL_PAYLOAD_LENGTH));
  payloadWindows.push(gather.subarray(at, at + CELL_PAYLOAD_LENGTH));
}

/**
 * The inverse of gatherPayload, after the payloads in `gather` were replaced
 * (crypted): copy slot `slot` back into `cell` at `payloadOffset`. Callers go
 * from the first slot to the last: a whole 514-byte cell takes a premade
 * window (no view per cell), after its own header was written into the 5
 * bytes before the slot, the end of the slot before, which is already copied
 * out.
 */
function scatterPayload(cell: Uint8Array, payloadOffset: number, slot: number): void {
  if (payloadOffset === CELL_PAYLOAD_OFFSET && cell.length === CELL_PAYLOAD_OFFSET + CELL_PAYLOAD_LENGTH) {
    const at = GATHER_OFFSET + slot * CELL_PAYLOAD_LENGTH - CELL_PAYLOAD_OFFSET;
    gather[at] = cell[0]!;
    gather[at + 1] = cell[1]!;
    gather[at + 2] = cell[2]!;
    gather[at + 3] = cell[3]!;
    gather[at + 4] = cell[4]!;
    cell.set(cellWindows[slot]!);
  } else {
    cell.set(payloadWindows[slot]!, payloadOffset);
  }
}

/**
 * Copy the payload of `cell` (at `payloadOffset`, 509 bytes) to payload slot
 * `slot` of `gather`. Callers fill the slots from the last to the first: a
 * cell that is exactly its header and payload is copied whole, without a
 * view (a subarray per cell costs about as much as the copy), so its header
 * lands on the last bytes of the slot before, which the next call
 * overwrites. Throws RangeError for a cell shorter than payloadOffset + 509.
 */
function gatherPayload(cell: Uint8Array, payloadOffset: number, slot: number, index: number, what: string): void {
  const end = payloadOffset + CELL_PAYLOAD_LENGTH;
  if (!(cell instanceof Uint8Array) || cell.length < end) throw new RangeError(`${what}: cell ${index} is shorter than ${end} bytes`);
  const at = GATHER_OFFSET + slot * CELL_PAYLOAD_LENGTH;
  if (cell.length === end && payloadOffset <= GATHER_OFFSET) gather.set(cell, at - payloadOffset);
  else gather.set(cell.subarray(payloadOffset, end), at);
}

function checkPayload(payload: Uint8Array): void {
  if (!(payload instanceof Uint8Array) || payload.length !== CELL_PAYLOAD_LENGTH) {
    throw new RangeError(`OnionLayer: payload must be a ${CELL_PAYLOAD_LENGTH}-byte Uint8Array`);
  }
}

function destroyed(): never {
  throw new AlliumError('ERR_CONFIG', 'OnionLayer: used after destroy()');
}

/** One hop, one direction of tor1 relay crypto. */
export class OnionLayer {
  #cipher: StreamCipher | null;
  #digest: RunningDigest | null;
  /** A final open failed (openDigest): the running digest holds a cell it should not. */
  #spoiled = false;
  /**
   * The full 20-byte running digest after the last seal() or successful
   * open(); zeros before. One array for the layer's life, overwritten in
   * place: sealDigest and openDigest return it.
   */
  readonly #last: Uint8Array = new Uint8Array(TOR1_DIGEST_LENGTH);

  /**
   * @param key        Kf or Kb, 16 bytes (AES-128-CTR, counter block starting at zero).
   * @param digestSeed Df or Db, 20 bytes: the first input of the running SHA-1.
   */
  constructor(key: Uint8Array, digestSeed: Uint8Array, backend: CryptoBackend = crypto) {
    abytes(key, 'OnionLayer key', TOR1_KEY_LENGTH);
    abytes(digestSeed, 'OnionLayer digest seed', TOR1_DIGEST_LENGTH);
    this.#cipher = backend.aesCtr(key);
    this.#digest = backend.runningSha1(digestSeed);
  }

  /** Xor the next 509 bytes of keystream into `payload`, in place (encrypt and decrypt are the same). */
  crypt(payload: Uint8Array): void {
    const cipher = this.#cipher ?? destroyed();
    checkPayload(payload);
    payload.set(cipher.update(payload));
  }

  /**
   * crypt() the payloads of `cells[0..count)` in that order, with one
   * keystream call per up to 128 cells: byte for byte what crypt() on each
   * payload in turn gives. Each element is a 514-byte channel cell (payload at
   * byte 5), or with `payloadOffset` 0 a bare 509-byte payload.
   */
  cryptCells(cells: readonly Uint8Array[], count: number = cells.length, payloadOffset: number = CELL_PAYLOAD_OFFSET): void {
    const cipher = this.#cipher ?? destroyed();
    if (!Number.isInteger(count) || count < 0 || count > cells.length) throw new RangeError(`OnionLayer.cryptCells: bad count ${count}`);
    for (let first = 0; first < count; first += GATHER_CELLS) {
      const n = Math.min(GATHER_CELLS, count - first);
      // Last to first: see gatherPayload.
      for (let i = n - 1; i >= 0; i--) gatherPayload(cells[first + i]!, payloadOffset, i, first + i, 'OnionLayer.cryptCells');
      const out = cipher.update(gather.subarray(GATHER_OFFSET, GATHER_OFFSET + n * CELL_PAYLOAD_LENGTH));
      // Back into gather with one copy, then out to the cells, first to last: see scatterPayload.
      gather.set(out, GATHER_OFFSET);
      for (let i = 0; i < n; i++) scatterPayload(cells[first + i]!, payloadOffset, i);
    }
  }

  /**
   * crypt() over `run`, payloads of 509 bytes laid end to end, with one
   * keystream call; returns the result in a new array and leaves `run` as it was.
   */
  cryptRun(run: Uint8Array): Uint8Array {
    const cipher = this.#cipher ?? destroyed();
    if (run.length % CELL_PAYLOAD_LENGTH !== 0) throw new RangeError(`OnionLayer.cryptRun: ${run.length} bytes is not whole payloads`);
    return cipher.update(run);
  }

  /**
   * The first half of seal(), for a cell crypted later: zero `recognized` and
   * the digest field, take the payload into the running digest, write the
   * first four bytes of the new digest in the digest field. The caller must
   * then crypt the payload (crypt() or cryptCells()) in its turn among this
   * layer's cells; seal() is exactly sealDigest() then crypt(). Returns the
   * new running digest value (20 bytes) in the layer's own array, which its
   * next seal or successful open overwrites: copy it to keep it (flow
   * control keeps one in sendme_inc, docs/protocol.md §7).
   */
  sealDigest(payload: Uint8Array): Uint8Array {
    const digest = this.#digest ?? destroyed();
    checkPayload(payload);
    payload[RECOGNIZED_OFFSET] = 0;
    payload[RECOGNIZED_OFFSET + 1] = 0;
    // Four stores: cheaper per cell than a TypedArray fill call.
    payload[DIGEST_OFFSET] = 0;
    payload[DIGEST_OFFSET + 1] = 0;
    payload[DIGEST_OFFSET + 2] = 0;
    payload[DIGEST_OFFSET + 3] = 0;
    digest.update(payload);
    const value = this.#last;
    digest.peekInto(value);
    payload[DIGEST_OFFSET] = value[0]!;
    payload[DIGEST_OFFSET + 1] = value[1]!;
    payload[DIGEST_OFFSET + 2] = value[2]!;
    payload[DIGEST_OFFSET + 3] = value[3]!;
    return value;
  }

  /**
   * Originate a cell at this layer: zero `recognized` and the digest field,
   * feed the whole payload to the running digest, put the first four bytes of
   * the new digest value in the digest field, then crypt().
   */
  seal(payload: Uint8Array): void {
    this.sealDigest(payload);
    this.crypt(payload);
  }

  /**
   * After crypt(): is this cell for the endpoint of this layer? True iff
   * `recognized` is zero and the digest field equals the first four bytes of
   * the running digest over the payload with that field zeroed; only then does
   * the running digest take the cell in. On false nothing changes. The payload
   * is left exactly as it came in either way.
   */
  open(payload: Uint8Array): boolean {
    return this.openDigest(payload) !== null;
  }

  /**
   * open(), giving the new running digest value for a recognized cell (null
   * otherwise) in the layer's own array, as sealDigest does: valid until the
   * layer's next seal or successful open; copy it to keep it.
   *
   * `final`: the caller destroys the circuit if this cell is not recognized
   * (this layer is the last place it can be for, §4.3-§4.5). The check then
   * takes the cell into the running digest first and compares afterwards,
   * one state copy fewer; a cell that fails spoils the layer: every later
   * open gives null and every other use throws ERR_CONFIG, as after destroy().
   */
  openDigest(payload: Uint8Array, final = false): Uint8Array | null {
    if (this.#spoiled) return null;
    const digest = this.#digest ?? destroyed();
    checkPayload(payload);
    if ((payload[RECOGNIZED_OFFSET]! | payload[RECOGNIZED_OFFSET + 1]!) !== 0) return null;

    const r0 = payload[DIGEST_OFFSET]!;
    const r1 = payload[DIGEST_OFFSET + 1]!;
    const r2 = payload[DIGEST_OFFSET + 2]!;
    const r3 = payload[DIGEST_OFFSET + 3]!;
    payload[DIGEST_OFFSET] = 0;
    payload[DIGEST_OFFSET + 1] = 0;
    payload[DIGEST_OFFSET + 2] = 0;
    payload[DIGEST_OFFSET + 3] = 0;
    const value = candidateValue;
    let candidate: RunningDigest | null = null;
    if (final) {
      digest.update(payload);
      digest.peekInto(value);
    } else {
      // A copy of the state takes the cell; on a match it becomes the live
      // digest, so the payload is hashed once either way.
      candidate = digest.clone();
      candidate.update(payload);
      candidate.peekInto(value);
    }
    // Compare all four bytes without an early exit.
    const diff = (value[0]! ^ r0) | (value[1]! ^ r1) | (value[2]! ^ r2) | (value[3]! ^ r3);
    if (diff === 0) {
      if (candidate !== null) this.#digest = candidate;
      const last = this.#last;
      for (let i = 0; i < TOR1_DIGEST_LENGTH; i++) last[i] = value[i]!;
    } else if (final) {
      this.#spoiled = true;
      this.#cipher = null;
      this.#digest = null;
    }
    payload[DIGEST_OFFSET] = r0;
    payload[DIGEST_OFFSET + 1] = r1;
    payload[DIGEST_OFFSET + 2] = r2;
    payload[DIGEST_OFFSET + 3] = r3;
    return diff === 0 ? this.#last : null;
  }

  /** A copy of the 20-byte running digest value after the last seal() or successful open() (zeros before any). */
  get lastDigest(): Uint8Array {
    if (this.#digest === null) destroyed();
    return new Uint8Array(this.#last);
  }

  /**
   * Best-effort wipe: drops the cipher and digest states (their memory belongs
   * to the backend and cannot be cleared from here) and zeroes the last digest.
   * Any further use throws `ERR_CONFIG`. Calling it twice is harmless.
   */
  destroy(): void {
    this.#last.fill(0);
    this.#cipher = null;
    this.#digest = null;
  }
}

/** The two layers one hop shares with the client. */
export interface HopLayers {
  /** Client → relay (away from the client): Kf, Df. */
  forward: OnionLayer;
  /** Relay → client (toward the client): Kb, Db. */
  backward: OnionLayer;
}

/**
 * Split 72 bytes of tor1 key material, Df (20) | Db (20) | Kf (16) | Kb (16),
 * into the forward and backward layers. The client and the relay call this
 * with the same bytes and get matching layers.
 */
export function tor1Layers(keyMaterial: Uint8Array, backend: CryptoBackend = crypto): HopLayers {
  abytes(keyMaterial, 'tor1 key material', TOR1_KEY_MATERIAL_LENGTH);
  const df = keyMaterial.subarray(0, 20);
  const db = keyMaterial.subarray(20, 40);
  const kf = keyMaterial.subarray(40, 56);
  const kb = keyMaterial.subarray(56, 72);
  return {
    forward: new OnionLayer(kf, df, backend),
    backward: new OnionLayer(kb, db, backend),
  };
}

/**
 * The client's half of docs/protocol.md §4.4 for backward cells that arrived
 * together: take the backward layers `layers[0], layers[1], …` off each cell
 * until one recognizes it, with one cryptCells call per layer, leaving every
 * layer, payload and digest exactly as receiving the cells one at a time
 * would. For cell i, `hops[i]` is the index of the layer that recognized it,
 * or -1 if none did (then every layer was taken off), and
 * `digests[20*i .. 20*i+20)` that layer's running digest after the cell
 * (openDigest; left as it was for a cell no layer recognized). Each cell is
 * a 514-byte channel cell (payload at byte 5); `hops` is overwritten from
 * index 0; `digests` must hold 20 bytes per cell (RangeError otherwise), so
 * a caller can keep one array for every batch. `lastIsFinal`: a cell the last layer does not
 * recognize destroys the circuit (a built circuit), so that layer opens
 * with `final` (openDigest), and cells more than one chunk (128 cells) after
 * the first unrecognized one are marked -1 without being touched.
 *
 * `payloads`, if given, is overwritten from index 0 with each touched cell's
 * peeled payload (509 bytes): for a cell the last layer recognized, a view
 * into that layer's keystream output, and the cell itself is then left as
 * it arrived; for any other cell, the cell's own payload, peeled in place as
 * without `payloads`. At a client nearly every cell is for the last hop, so
 * this saves a 509-byte copy and a view per cell.
 */
export function peelBackward(
  layers: readonly OnionLayer[],
  cells: readonly Uint8Array[],
  hops: number[],
  digests: Uint8Array,
  lastIsFinal = false,
  payloads?: Uint8Array[],
): void {
  if (digests.length < TOR1_DIGEST_LENGTH * cells.length) throw new RangeError(`peelBackward: digests holds ${digests.length} bytes, ${cells.length} cells need ${TOR1_DIGEST_LENGTH * cells.length}`);
  hops.length = cells.length;
  if (payloads !== undefined) payloads.length = cells.length;
  // Chunk by chunk, each through every layer: each layer still meets its cells in arrival order.
  for (let first = 0; first < cells.length; first += GATHER_CELLS) {
    const count = Math.min(GATHER_CELLS, cells.length - first);
    peelChunk(layers, cells, first, count, hops, digests, lastIsFinal, payloads);
    if (lastIsFinal && hops.slice(first, first + count).includes(-1)) {
      // The circuit ends at that cell (the last layer may be spoiled): leave the rest as they are.
      hops.fill(-1, first + count);
      return;
    }
  }
}

/**
 * peelBackward for cells[first .. first+count), count <= GATHER_CELLS. The
 * payloads are gathered once; each layer but the last crypts the run of those
 * still unrecognized in one call and the run is compacted in place
 * (copyWithin), so a cell costs one copy in, one copy out (none for a cell the
 * last layer recognizes, with `payloads`), and byte checks in between. The
 * last layer's output is not compacted: views of it may have been handed out.
 */
function peelChunk(
  layers: readonly OnionLayer[],
  cells: readonly Uint8Array[],
  first: number,
  count: number,
  hops: number[],
  digests: Uint8Array,
  lastIsFinal: boolean,
  payloads: Uint8Array[] | undefined,
): void {
  const P = CELL_PAYLOAD_LENGTH;
  const index: number[] = [];
  // Last to first: see gatherPayload.
  for (let j = count - 1; j >= 0; j--) gatherPayload(cells[first + j]!, CELL_PAYLOAD_OFFSET, j, first + j, 'peelBackward');
  for (let j = 0; j < count; j++) index.push(first + j);
  let run: Uint8Array = gather.subarray(GATHER_OFFSET, GATHER_OFFSET + count * P);
  let pending = count;
  const last = layers.length - 1;
  for (let h = 0; h <= last && pending > 0; h++) {
    const layer = layers[h]!;
    const final = lastIsFinal && h === last;
    const out = layer.cryptRun(run.subarray(0, pending * P));
    let kept = 0;
    for (let j = 0; j < pending; j++) {
      const at = j * P;
      const i = index[j]!;
      // Only a zero `recognized` needs a look at the digest (openDigest checks it again).
      if ((out[at + RECOGNIZED_OFFSET]! | out[at + RECOGNIZED_OFFSET + 1]!) === 0) {
        const payload = out.subarray(at, at + P);
        const value = layer.openDigest(payload, final);
        if (value !== null) {
          hops[i] = h;
          digests.set(value, TOR1_DIGEST_LENGTH * i);
          if (h === last && payloads !== undefined) payloads[i] = payload;
          else settle(cells[i]!, payload, i, payloads);
          continue;
        }
      }
      if (h === last) {
        // Recognized by no layer: every layer was taken off.
        hops[i] = -1;
        settle(cells[i]!, out.subarray(at, at + P), i, payloads);
        continue;
      }
      if (kept !== j) {
        out.copyWithin(kept * P, at, at + P);
        index[kept] = i;
      }
      kept++;
    }
    run = out;
    pending = kept;
  }
  // No layers at all: nothing was taken off, no cell recognized.
  for (let j = 0; j < pending; j++) {
    const i = index[j]!;
    hops[i] = -1;
    settle(cells[i]!, run.subarray(j * P, (j + 1) * P), i, payloads);
  }
}

/** Put the peeled `payload` back into `cell` and, with `payloads`, a view of it at `payloads[i]`. */
function settle(cell: Uint8Array, payload: Uint8Array, i: number, payloads: Uint8Array[] | undefined): void {
  cell.set(payload, CELL_PAYLOAD_OFFSET);
  if (payloads !== undefined) payloads[i] = cellPayload(cell);
}
