/**
 * CryptoBackend over node:crypto (OpenSSL). Raw 32-byte keys move in and out
 * as JWK: DER import costs ~79 µs against ~6 µs for JWK, and exporting keys made
 * by generateKeyPairSync('x25519') as JWK can deadlock Node 20, so private keys
 * are always made from random bytes (see ../shared/research/crypto-bench.md).
 */
import * as nc from 'node:crypto';
import type { CryptoBackend, RunningDigest, StreamCipher } from './backend.js';
import { HandshakeError } from '../errors.js';
import { abytes } from '../bytes.js';
import { Sha1RunningDigest } from './sha1.js';

const ZERO_IV = new Uint8Array(16);

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function u8(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Small bounded caches of imported KeyObjects, keyed by the raw key bytes. */
class KeyCache {
  readonly #map = new Map<string, nc.KeyObject>();
  readonly #limit: number;
  constructor(limit: number) {
    this.#limit = limit;
  }
  get(raw: Uint8Array, make: () => nc.KeyObject): nc.KeyObject {
    const id = b64u(raw);
    let key = this.#map.get(id);
    if (key === undefined) {
      key = make();
      if (this.#map.size >= this.#limit) this.#map.delete(this.#map.keys().next().value as string);
      this.#map.set(id, key);
    }
    return key;
  }
}

const edPrivate = new KeyCache(64);
const edPublic = new KeyCache(1024);

function x25519Private(d: Uint8Array): nc.KeyObject {
  // Node wants an `x` member; OpenSSL derives the real public key from `d`.
  return nc.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(d), x: b64u(d) }, format: 'jwk' });
}

function ed25519Private(seed: Uint8Array): nc.KeyObject {
  return edPrivate.get(seed, () => {
    const x = nodeCrypto.ed25519PublicKey(seed);
    return nc.createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(seed), x: b64u(x) }, format: 'jwk' });
  });
}

function rawPublic(key: nc.KeyObject): Uint8Array {
  const jwk = nc.createPublicKey(key).export({ format: 'jwk' });
  return u8(Buffer.from(jwk.x as string, 'base64url'));
}

/**
 * A running SHA-1 over node:crypto's Hash (`peek` = `hash.copy().digest()`).
 * Not the backend's runningSha1 any more (see there); bench/onion-layer
 * measures the two against each other.
 */
export function nodeHashRunningSha1(seed?: Uint8Array): RunningDigest {
  const hash = nc.createHash('sha1');
  if (seed !== undefined) hash.update(seed);
  return new NodeRunningDigest(hash);
}

class NodeRunningDigest implements RunningDigest {
  readonly #hash: nc.Hash;
  constructor(hash: nc.Hash) {
    this.#hash = hash;
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  peek(): Uint8Array {
    return u8(this.#hash.copy().digest());
  }
  peekInto(out: Uint8Array, offset = 0): void {
    if (out.length < offset + 20) throw new RangeError('peekInto: output shorter than 20 bytes');
    out.set(this.peek(), offset);
  }
  clone(): RunningDigest {
    return new NodeRunningDigest(this.#hash.copy());
  }
  finish(): Uint8Array {
    return u8(this.#hash.digest());
  }
}

export const nodeCrypto: CryptoBackend = {
  name: 'node:crypto',

  randomBytes(length) {
    return u8(nc.randomBytes(length));
  },

  sha1: (data) => u8(nc.createHash('sha1').update(data).digest()),
  sha256: (data) => u8(nc.createHash('sha256').update(data).digest()),
  sha3_256: (data) => u8(nc.createHash('sha3-256').update(data).digest()),
  shake256: (data, outputLength) => u8(nc.createHash('shake256', { outputLength }).update(data).digest()),
  hmacSha256: (key, data) => u8(nc.createHmac('sha256', key).update(data).digest()),

  runningSha1(seed) {
    // Our own SHA-1 (sha1.ts), not node:crypto's: tor1 reads the value after
    // every cell, which the Hash API can only give through a native state copy
    // (nodeHashRunningSha1 below, kept for bench/onion-layer to compare).
    const digest = new Sha1RunningDigest();
    if (seed !== undefined) digest.update(seed);
    return digest;
  },

  aesCtr(key, iv = ZERO_IV): StreamCipher {
    abytes(iv, 'aesCtr iv', 16);
    const algorithm = key.length === 16 ? 'aes-128-ctr' : key.length === 32 ? 'aes-256-ctr' : null;
    if (algorithm === null) throw new RangeError(`aesCtr key: expected 16 or 32 bytes, got ${key.length}`);
    const cipher = nc.createCipheriv(algorithm, key, iv);
    return { update: (data) => u8(cipher.update(data)) };
  },

  chachaPolySeal(key, nonce, ad, plaintext) {
    const [body, tag] = nodeCrypto.chachaPolySealDetached(key, nonce, ad, plaintext);
    return u8(Buffer.concat([body, tag]));
  },

  chachaPolySealDetached(key, nonce, ad, plaintext) {
    const c = nc.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    // No AD is the same as empty AD (RFC 8439 §2.8). A link frame has none: one native call fewer per frame.
    if (ad.length > 0) c.setAAD(ad, { plaintextLength: plaintext.length });
    const body = c.update(plaintext);
    c.final();
    return [body, c.getAuthTag()];
  },

  chachaPolyOpen(key, nonce, ad, sealed) {
    if (sealed.length < 16) return null;
    const d = nc.createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    // As in chachaPolySealDetached: no AD call for empty AD.
    if (ad.length > 0) d.setAAD(ad, { plaintextLength: sealed.length - 16 });
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    const body = d.update(sealed.subarray(0, sealed.length - 16));
    try {
      d.final();
    } catch {
      return null;
    }
    return u8(body);
  },

  x25519PublicKey(privateKey) {
    abytes(privateKey, 'x25519 private key', 32);
    return rawPublic(x25519Private(privateKey));
  },

  x25519(privateKey, publicKey) {
    abytes(privateKey, 'x25519 private key', 32);
    abytes(publicKey, 'x25519 public key', 32);
    let shared: Buffer;
    try {
      const pub = nc.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(publicKey) }, format: 'jwk' });
      shared = nc.diffieHellman({ privateKey: x25519Private(privateKey), publicKey: pub });
    } catch (cause) {
      // OpenSSL refuses an all-zero result itself.
      throw new HandshakeError('x25519: degenerate shared secret', { cause });
    }
    if (shared.every((b) => b === 0)) throw new HandshakeError('x25519: degenerate shared secret');
    return u8(shared);
  },

  ed25519PublicKey(seed) {
    abytes(seed, 'ed25519 seed', 32);
    const priv = nc.createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(seed), x: b64u(seed) }, format: 'jwk' });
    return rawPublic(priv);
  },

  ed25519Sign(seed, message) {
    abytes(seed, 'ed25519 seed', 32);
    return u8(nc.sign(null, message, ed25519Private(seed)));
  },

  ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      const key = edPublic.get(publicKey, () =>
        nc.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(publicKey) }, format: 'jwk' }),
      );
      return nc.verify(null, message, key, signature);
    } catch {
      return false;
    }
  },
};
