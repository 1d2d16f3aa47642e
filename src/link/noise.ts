/**
 * A sans-IO Noise implementation limited to what the Allium link needs:
 * Noise_XK_25519_ChaChaPoly_SHA256 (Noise spec revision 34). Everything is
 * fed bytes and returns bytes; no sockets, no timers.
 *
 * - CipherState: ChaChaPoly with a 64-bit counter nonce, plus Rekey().
 * - SymmetricState: chaining key and handshake hash, HKDF over HMAC-SHA256.
 * - XkHandshake: the three XK messages (pre-message <- s; -> e, es; <- e, ee; -> s, se).
 *
 * Every primitive comes from a CryptoBackend so tests can run node:crypto and @noble.
 */
import { crypto, type CryptoBackend } from '../crypto/crypto.js';
import { abytes, concat, utf8 } from '../bytes.js';
import { AlliumError, HandshakeError } from '../errors.js';

export const NOISE_PROTOCOL_NAME = 'Noise_XK_25519_ChaChaPoly_SHA256';
export const DHLEN = 32;
export const HASHLEN = 32;
export const TAGLEN = 16;
/** Largest Noise message (handshake or transport), in bytes. */
export const NOISE_MAX_MESSAGE = 65535;

const EMPTY = new Uint8Array(0);
const ZEROS32 = new Uint8Array(32);
/** Counters stay exact as JS numbers up to 2^53; a link never gets near it. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** The 12-byte ChaChaPoly nonce: 4 zero bytes, then the counter as 64-bit little-endian. */
export function chachaNonce(n: number | bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(n), true);
  return nonce;
}

const REKEY_NONCE = chachaNonce(0xffffffffffffffffn);

export class CipherState {
  readonly #backend: CryptoBackend;
  #k: Uint8Array | null = null;
  #n = 0;
  /**
   * The nonce of the next message, rewritten in place for each (a link seals
   * or opens one frame per 1-127 cells; a fresh array, DataView and BigInt
   * each time was three allocations per frame). Backends read it during the
   * call only.
   */
  readonly #nonce = new Uint8Array(12);

  constructor(key: Uint8Array | null = null, backend: CryptoBackend = crypto) {
    this.#backend = backend;
    if (key !== null) this.initializeKey(key);
  }

  initializeKey(key: Uint8Array): void {
    abytes(key, 'CipherState key', 32);
    this.#k = new Uint8Array(key);
    this.#n = 0;
  }

  hasKey(): boolean {
    return this.#k !== null;
  }

  /** The next nonce value to be used. */
  get nonce(): number {
    return this.#n;
  }

  /** For tests and resumption only: set the next nonce value. */
  setNonce(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError('CipherState: bad nonce');
    this.#n = n;
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.#k === null) return new Uint8Array(plaintext);
    if (this.#n >= MAX_COUNTER) throw new AlliumError('ERR_RESOURCE_LIMIT', 'Noise nonce exhausted');
    const out = this.#backend.chachaPolySeal(this.#k, this.#currentNonce(), ad, plaintext);
    this.#n++;
    return out;
  }

  /** encryptWithAd with the ciphertext and the 16-byte tag apart (no copy to join them); same rules (no key: the plaintext and no tag). */
  encryptWithAdDetached(ad: Uint8Array, plaintext: Uint8Array): [Uint8Array, Uint8Array] {
    if (this.#k === null) return [new Uint8Array(plaintext), new Uint8Array(0)];
    if (this.#n >= MAX_COUNTER) throw new AlliumError('ERR_RESOURCE_LIMIT', 'Noise nonce exhausted');
    const out = this.#backend.chachaPolySealDetached(this.#k, this.#currentNonce(), ad, plaintext);
    this.#n++;
    return out;
  }

  /** The plaintext, or null if authentication failed (the nonce then does not advance). */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
    if (this.#k === null) return new Uint8Array(ciphertext);
    if (this.#n >= MAX_COUNTER) throw new AlliumError('ERR_RESOURCE_LIMIT', 'Noise nonce exhausted');
    const out = this.#backend.chachaPolyOpen(this.#k, this.#currentNonce(), ad, ciphertext);
    if (out === null) return null;
    this.#n++;
    return out;
  }

  /** chachaNonce(this.#n), written into #nonce: 4 zero bytes, the counter as 64-bit little-endian (exact: n < 2^53). */
  #currentNonce(): Uint8Array {
    const nonce = this.#nonce;
    const n = this.#n;
    const low = n % 0x100000000;
    const high = (n - low) / 0x100000000;
    nonce[4] = low & 0xff;
    nonce[5] = (low >>> 8) & 0xff;
    nonce[6] = (low >>> 16) & 0xff;
    nonce[7] = low >>> 24;
    nonce[8] = high & 0xff;
    nonce[9] = (high >>> 8) & 0xff;
    nonce[10] = (high >>> 16) & 0xff;
    nonce[11] = high >>> 24;
    return nonce;
  }

  /** Noise Rekey(): k = the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes). The nonce is kept. */
  rekey(): void {
    if (this.#k === null) throw new AlliumError('ERR_CONFIG', 'CipherState.rekey without a key');
    const sealed = this.#backend.chachaPolySeal(this.#k, REKEY_NONCE, EMPTY, ZEROS32);
    this.#k = sealed.slice(0, 32);
  }
}

/** HKDF of Noise §4.3 with HMAC-SHA256: two or three 32-byte outputs. */
export function hkdf(backend: CryptoBackend, chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const temp = backend.hmacSha256(chainingKey, ikm);
  const o1 = backend.hmacSha256(temp, Uint8Array.of(1));
  const o2 = backend.hmacSha256(temp, concat(o1, Uint8Array.of(2)));
  if (outputs === 2) return [o1, o2];
  const o3 = backend.hmacSha256(temp, concat(o2, Uint8Array.of(3)));
  return [o1, o2, o3];
}

export class SymmetricState {
  readonly #backend: CryptoBackend;
  readonly cipher: CipherState;
  #ck: Uint8Array;
  #h: Uint8Array;

  constructor(protocolName: string, backend: CryptoBackend = crypto) {
    this.#backend = backend;
    const name = utf8(protocolName);
    if (name.length <= HASHLEN) {
      this.#h = new Uint8Array(HASHLEN);
      this.#h.set(name);
    } else {
      this.#h = backend.sha256(name);
    }
    this.#ck = new Uint8Array(this.#h);
    this.cipher = new CipherState(null, backend);
  }

  get handshakeHash(): Uint8Array {
    return new Uint8Array(this.#h);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.#backend, this.#ck, ikm, 2);
    this.#ck = ck!;
    this.cipher.initializeKey(k!);
  }

  mixHash(data: Uint8Array): void {
    this.#h = this.#backend.sha256(concat(this.#h, data));
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipher.encryptWithAd(this.#h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cipher.decryptWithAd(this.#h, ciphertext);
    if (plaintext === null) throw new HandshakeError('Noise handshake message failed authentication');
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** The two transport CipherStates: the first for initiator→responder, the second for responder→initiator. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.#backend, this.#ck, EMPTY, 2);
    return [new CipherState(k1!, this.#backend), new CipherState(k2!, this.#backend)];
  }
}

export interface KeyPair {
  secret: Uint8Array;
  public: Uint8Array;
}

export interface XkOptions {
  initiator: boolean;
  prologue: Uint8Array;
  /** Our static key pair (the responder's is its link key). */
  s: KeyPair;
  /** The responder's static public key; required for the initiator (XK pre-message). */
  rs?: Uint8Array;
  /** A fixed ephemeral private key (tests and vectors only); fresh random otherwise. */
  ephemeral?: Uint8Array;
  backend?: CryptoBackend;
}

export interface TransportKeys {
  /** Encrypts what we send. */
  send: CipherState;
  /** Decrypts what we receive. */
  recv: CipherState;
  handshakeHash: Uint8Array;
  /** The peer's static public key. */
  remoteStatic: Uint8Array;
}

/**
 * The XK handshake state machine. The initiator calls write, read, write; the
 * responder read, write, read. After the third message `finish()` gives the
 * transport keys. Any failure throws HandshakeError and leaves the state unusable.
 */
export class XkHandshake {
  readonly initiator: boolean;
  readonly #backend: CryptoBackend;
  readonly #ss: SymmetricState;
  readonly #s: KeyPair;
  #e: KeyPair | null = null;
  #rs: Uint8Array | null;
  #re: Uint8Array | null = null;
  readonly #fixedEphemeral: Uint8Array | undefined;
  #step = 0;
  #failed = false;

  constructor(opts: XkOptions) {
    this.initiator = opts.initiator;
    this.#backend = opts.backend ?? crypto;
    abytes(opts.s.secret, 's.secret', DHLEN);
    abytes(opts.s.public, 's.public', DHLEN);
    this.#s = opts.s;
    this.#fixedEphemeral = opts.ephemeral;
    this.#ss = new SymmetricState(NOISE_PROTOCOL_NAME, this.#backend);
    this.#ss.mixHash(opts.prologue);
    if (opts.initiator) {
      if (opts.rs === undefined) throw new AlliumError('ERR_CONFIG', 'XK initiator needs the responder static key');
      abytes(opts.rs, 'rs', DHLEN);
      this.#rs = new Uint8Array(opts.rs);
      this.#ss.mixHash(this.#rs);
    } else {
      this.#rs = null;
      this.#ss.mixHash(this.#s.public);
    }
  }

  /** Whose turn: 'write', 'read' or 'done'. */
  get next(): 'write' | 'read' | 'done' {
    if (this.#step >= 3) return 'done';
    const initiatorWrites = this.#step % 2 === 0;
    return initiatorWrites === this.initiator ? 'write' : 'read';
  }

  get handshakeHash(): Uint8Array {
    return this.#ss.handshakeHash;
  }

  /** The peer's static key, once known (at once for the initiator, after message 3 for the responder). */
  get remoteStatic(): Uint8Array | null {
    return this.#rs === null ? null : new Uint8Array(this.#rs);
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    this.#check('write');
    try {
      let out: Uint8Array;
      const ss = this.#ss;
      if (this.#step === 0) {
        // -> e, es
        const e = this.#newEphemeral();
        ss.mixHash(e.public);
        ss.mixKey(this.#dh(e.secret, this.#rs!));
        out = concat(e.public, ss.encryptAndHash(payload));
      } else if (this.#step === 1) {
        // <- e, ee
        const e = this.#newEphemeral();
        ss.mixHash(e.public);
        ss.mixKey(this.#dh(e.secret, this.#re!));
        out = concat(e.public, ss.encryptAndHash(payload));
      } else {
        // -> s, se
        const encS = ss.encryptAndHash(this.#s.public);
        ss.mixKey(this.#dh(this.#s.secret, this.#re!));
        out = concat(encS, ss.encryptAndHash(payload));
      }
      if (out.length > NOISE_MAX_MESSAGE) throw new HandshakeError('Noise handshake message too long');
      this.#step++;
      return out;
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  readMessage(message: Uint8Array): Uint8Array {
    this.#check('read');
    try {
      if (message.length > NOISE_MAX_MESSAGE) throw new HandshakeError('Noise handshake message too long');
      const ss = this.#ss;
      let payload: Uint8Array;
      if (this.#step === 0 || this.#step === 1) {
        // -> e, es (responder reads) or <- e, ee (initiator reads)
        if (message.length < DHLEN + TAGLEN) throw new HandshakeError('Noise handshake message too short');
        const re = message.slice(0, DHLEN);
        this.#re = re;
        ss.mixHash(re);
        if (this.#step === 0) ss.mixKey(this.#dh(this.#s.secret, re));
        else ss.mixKey(this.#dh(this.#e!.secret, re));
        payload = ss.decryptAndHash(message.subarray(DHLEN));
      } else {
        // -> s, se (responder reads)
        if (message.length < DHLEN + 2 * TAGLEN) throw new HandshakeError('Noise handshake message too short');
        const rs = ss.decryptAndHash(message.subarray(0, DHLEN + TAGLEN));
        this.#rs = rs;
        ss.mixKey(this.#dh(this.#e!.secret, rs));
        payload = ss.decryptAndHash(message.subarray(DHLEN + TAGLEN));
      }
      this.#step++;
      return payload;
    } catch (err) {
      this.#failed = true;
      if (err instanceof AlliumError) throw err;
      throw new HandshakeError('Noise handshake failed', { cause: err });
    }
  }

  /** The transport keys; only after all three messages. */
  finish(): TransportKeys {
    if (this.#failed || this.#step < 3) throw new AlliumError('ERR_CONFIG', 'XK handshake not complete');
    const [c1, c2] = this.#ss.split();
    return {
      send: this.initiator ? c1 : c2,
      recv: this.initiator ? c2 : c1,
      handshakeHash: this.#ss.handshakeHash,
      remoteStatic: new Uint8Array(this.#rs!),
    };
  }

  #check(want: 'write' | 'read'): void {
    if (this.#failed) throw new HandshakeError('XK handshake already failed');
    if (this.next !== want) throw new AlliumError('ERR_CONFIG', `XK handshake: not our turn to ${want}`);
  }

  #newEphemeral(): KeyPair {
    const secret = this.#fixedEphemeral ?? this.#backend.randomBytes(DHLEN);
    const e = { secret, public: this.#backend.x25519PublicKey(secret) };
    this.#e = e;
    return e;
  }

  #dh(secret: Uint8Array, pub: Uint8Array): Uint8Array {
    return this.#backend.x25519(secret, pub);
  }
}

/** A fresh X25519 key pair. */
export function generateKeyPair(backend: CryptoBackend = crypto): KeyPair {
  const secret = backend.randomBytes(DHLEN);
  return { secret, public: backend.x25519PublicKey(secret) };
}
