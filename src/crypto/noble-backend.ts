/**
 * CryptoBackend over the @noble packages: pure JavaScript, audited, and
 * independent of OpenSSL. Tests run every vector through both backends and
 * check that they agree on random inputs.
 */
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { sha3_256, shake256 } from '@noble/hashes/sha3.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { hmac } from '@noble/hashes/hmac.js';
import { randomBytes } from '@noble/hashes/utils.js';
import { ctr } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import type { CryptoBackend, RunningDigest, StreamCipher } from './backend.js';
import { HandshakeError } from '../errors.js';
import { abytes } from '../bytes.js';

type Sha1State = ReturnType<typeof sha1.create>;

class NobleRunningDigest implements RunningDigest {
  readonly #hash: Sha1State;
  constructor(hash: Sha1State) {
    this.#hash = hash;
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  peek(): Uint8Array {
    return this.#hash.clone().digest();
  }
  peekInto(out: Uint8Array, offset = 0): void {
    if (out.length < offset + 20) throw new RangeError('peekInto: output shorter than 20 bytes');
    out.set(this.peek(), offset);
  }
  clone(): RunningDigest {
    return new NobleRunningDigest(this.#hash.clone());
  }
  finish(): Uint8Array {
    return this.#hash.digest();
  }
}

/** Add `blocks` to a 16-byte big-endian counter block. */
function counterAt(iv: Uint8Array, blocks: number): Uint8Array {
  const out = new Uint8Array(iv);
  let carry = blocks;
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const sum = out[i]! + (carry % 256);
    out[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
  return out;
}

/** Streaming AES-CTR over noble's one-shot ctr(): recompute from the current block. */
function nobleAesCtr(key: Uint8Array, iv: Uint8Array): StreamCipher {
  let position = 0;
  return {
    update(data) {
      const skip = position % 16;
      const block = Math.floor(position / 16);
      const padded = new Uint8Array(skip + data.length);
      padded.set(data, skip);
      const out = ctr(key, counterAt(iv, block)).encrypt(padded).subarray(skip);
      position += data.length;
      return out;
    },
  };
}

export const nobleCrypto: CryptoBackend = {
  name: '@noble',
  randomBytes: (length) => randomBytes(length),
  sha1: (data) => sha1(data),
  sha256: (data) => sha256(data),
  sha3_256: (data) => sha3_256(data),
  shake256: (data, outputLength) => shake256(data, { dkLen: outputLength }),
  hmacSha256: (key, data) => hmac(sha256, key, data),
  runningSha1(seed) {
    const h = sha1.create();
    if (seed !== undefined) h.update(seed);
    return new NobleRunningDigest(h);
  },
  aesCtr(key, iv = new Uint8Array(16)) {
    abytes(iv, 'aesCtr iv', 16);
    if (key.length !== 16 && key.length !== 32) throw new RangeError(`aesCtr key: expected 16 or 32 bytes, got ${key.length}`);
    return nobleAesCtr(new Uint8Array(key), new Uint8Array(iv));
  },
  chachaPolySeal: (key, nonce, ad, plaintext) => chacha20poly1305(key, nonce, ad).encrypt(plaintext),
  chachaPolySealDetached(key, nonce, ad, plaintext) {
    const sealed = chacha20poly1305(key, nonce, ad).encrypt(plaintext);
    return [sealed.subarray(0, sealed.length - 16), sealed.subarray(sealed.length - 16)];
  },
  chachaPolyOpen(key, nonce, ad, sealed) {
    try {
      return chacha20poly1305(key, nonce, ad).decrypt(sealed);
    } catch {
      return null;
    }
  },
  x25519PublicKey(privateKey) {
    abytes(privateKey, 'x25519 private key', 32);
    return x25519.getPublicKey(privateKey);
  },
  x25519(privateKey, publicKey) {
    abytes(privateKey, 'x25519 private key', 32);
    abytes(publicKey, 'x25519 public key', 32);
    let shared: Uint8Array;
    try {
      shared = x25519.getSharedSecret(privateKey, publicKey);
    } catch (cause) {
      throw new HandshakeError('x25519: degenerate shared secret', { cause });
    }
    if (shared.every((b) => b === 0)) throw new HandshakeError('x25519: degenerate shared secret');
    return shared;
  },
  ed25519PublicKey(seed) {
    abytes(seed, 'ed25519 seed', 32);
    return ed25519.getPublicKey(seed);
  },
  ed25519Sign(seed, message) {
    abytes(seed, 'ed25519 seed', 32);
    return ed25519.sign(message, seed);
  },
  ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  },
};
