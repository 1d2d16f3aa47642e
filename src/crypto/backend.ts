/**
 * The one small crypto interface of Allium. Everything that needs a primitive
 * takes it from here; only src/crypto/ imports node:crypto or @noble/*.
 *
 * Two implementations share this shape:
 * - `nodeCrypto` (node-backend.ts): OpenSSL through node:crypto, used at run time;
 * - `nobleCrypto` (noble-backend.ts): the @noble packages, an independent
 *   implementation the tests cross-check against.
 */

/** A keystream cipher with long-lived state (AES-CTR): `update` xors the next bytes of keystream. */
export interface StreamCipher {
  /** Returns a new array holding `data` xor keystream; advances the stream by data.length. */
  update(data: Uint8Array): Uint8Array;
}

/** A running hash whose current value can be read without ending it (tor1's SHA-1 digests). */
export interface RunningDigest {
  update(data: Uint8Array): void;
  /** The digest of everything so far; the running state is unchanged. */
  peek(): Uint8Array;
  /** peek() written at `out[offset .. offset+20)` instead of a new array. Throws RangeError if `out` is too short. */
  peekInto(out: Uint8Array, offset?: number): void;
  /** An independent copy of the running state. */
  clone(): RunningDigest;
  /** The digest of everything so far, ending this object (cheaper than peek(): no copy). */
  finish(): Uint8Array;
}

export interface CryptoBackend {
  readonly name: string;
  randomBytes(length: number): Uint8Array;

  sha1(data: Uint8Array): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  sha3_256(data: Uint8Array): Uint8Array;
  shake256(data: Uint8Array, outputLength: number): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** A running SHA-1, optionally seeded with `seed` as its first input. */
  runningSha1(seed?: Uint8Array): RunningDigest;

  /** AES-CTR with a 16-byte (AES-128) or 32-byte (AES-256) key and a 16-byte initial counter block (default zero). */
  aesCtr(key: Uint8Array, iv?: Uint8Array): StreamCipher;

  /** ChaCha20-Poly1305 (RFC 8439). Returns ciphertext || 16-byte tag. */
  chachaPolySeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** chachaPolySeal with the two parts apart, [ciphertext, 16-byte tag], so a large frame is not copied to join them. */
  chachaPolySealDetached(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): [Uint8Array, Uint8Array];
  /** Returns the plaintext, or null if the tag does not verify. */
  chachaPolyOpen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | null;

  /** X25519 public key of a 32-byte private key (clamped as RFC 7748 says). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /** X25519 shared secret. Throws HandshakeError if the result is all zeros (a small-order peer key). */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;

  /** Ed25519 public key of a 32-byte seed (RFC 8032 private key). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}
