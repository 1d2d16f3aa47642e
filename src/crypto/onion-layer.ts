/**
 * tor1 relay cell crypto (docs/protocol.md): one `OnionLayer` per
 * hop and direction, shared by the client and the relay that hold the same keys.
 *
 * A layer is an AES-128-CTR stream (zero IV, never reset) plus a running SHA-1
 * seeded with Df or Db. The cipher removes or adds one layer of encryption; the
 * digest lets the endpoint of that layer recognize and authenticate cells.
 *
 * This is the per-cell hot path: no allocations beyond what the backend's
 * `update`/`peek`/`clone` return, no copies of the 509-byte payload.
 */
import type { CryptoBackend, RunningDigest, StreamCipher } from './backend.js';
import { crypto } from './crypto.js';
import { AlliumError } from '../errors.js';
import { abytes } from '../bytes.js';
import { CELL_PAYLOAD_LENGTH, TOR1_KEY_MATERIAL_LENGTH } from '../constants.js';
import {
  RELAY_DIGEST_FIELD_LENGTH as DIGEST_FIELD_LENGTH,
  RELAY_DIGEST_OFFSET as DIGEST_OFFSET,
  RELAY_RECOGNIZED_OFFSET as RECOGNIZED_OFFSET,
} from '../cell/relay-cell.js';

const TOR1_DIGEST_LENGTH = 20;
const TOR1_KEY_LENGTH = 16;

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
  /** The full 20-byte running digest after the last seal() or successful open(); zeros before. */
  #last: Uint8Array = new Uint8Array(TOR1_DIGEST_LENGTH);

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
   * Originate a cell at this layer: zero `recognized` and the digest field,
   * feed the whole payload to the running digest, put the first four bytes of
   * the new digest value in the digest field, then crypt().
   */
  seal(payload: Uint8Array): void {
    const digest = this.#digest ?? destroyed();
    checkPayload(payload);
    payload[RECOGNIZED_OFFSET] = 0;
    payload[RECOGNIZED_OFFSET + 1] = 0;
    payload.fill(0, DIGEST_OFFSET, DIGEST_OFFSET + DIGEST_FIELD_LENGTH);
    digest.update(payload);
    const value = digest.peek();
    payload[DIGEST_OFFSET] = value[0]!;
    payload[DIGEST_OFFSET + 1] = value[1]!;
    payload[DIGEST_OFFSET + 2] = value[2]!;
    payload[DIGEST_OFFSET + 3] = value[3]!;
    this.#last = value;
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
    const digest = this.#digest ?? destroyed();
    checkPayload(payload);
    if ((payload[RECOGNIZED_OFFSET]! | payload[RECOGNIZED_OFFSET + 1]!) !== 0) return false;

    const r0 = payload[DIGEST_OFFSET]!;
    const r1 = payload[DIGEST_OFFSET + 1]!;
    const r2 = payload[DIGEST_OFFSET + 2]!;
    const r3 = payload[DIGEST_OFFSET + 3]!;
    payload[DIGEST_OFFSET] = 0;
    payload[DIGEST_OFFSET + 1] = 0;
    payload[DIGEST_OFFSET + 2] = 0;
    payload[DIGEST_OFFSET + 3] = 0;
    // One state copy per recognized cell: the copy computes the candidate value
    // and is used up; on a match the live digest takes the same bytes.
    const candidate = digest.clone();
    candidate.update(payload);
    const value = candidate.finish();
    // Compare all four bytes without an early exit.
    const diff = (value[0]! ^ r0) | (value[1]! ^ r1) | (value[2]! ^ r2) | (value[3]! ^ r3);
    if (diff === 0) {
      digest.update(payload);
      this.#last = value;
    }
    payload[DIGEST_OFFSET] = r0;
    payload[DIGEST_OFFSET + 1] = r1;
    payload[DIGEST_OFFSET + 2] = r2;
    payload[DIGEST_OFFSET + 3] = r3;
    return diff === 0;
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
