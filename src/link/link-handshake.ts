/**
 * The Allium link handshake (docs/protocol.md §3), sans-IO: Noise XK with
 * prologue "allium-link-v1" and link certificates (§3.2) as payloads: the
 * relay's signing-key certificate (identity → signing key, §8.6) followed by
 * the signing key's signature over the link key, so the identity key itself
 * can stay offline.
 *
 *   1  -> e, es   payload: empty
 *   2  <- e, ee   payload: the responder's link certificate
 *   3  -> s, se   payload: the initiator's link certificate (relay) or empty (client)
 *
 * On the wire each handshake message is framed like a link frame: a 2-byte
 * big-endian length, then the Noise message. The machines below are fed
 * received bytes and hand out bytes to send; they never touch a socket.
 */
import { crypto, type CryptoBackend } from '../crypto/crypto.js';
import { abytes, concat, equalBytes, utf8 } from '../bytes.js';
import { AlliumError, DocumentError, HandshakeError, malformed } from '../errors.js';
import {
  certTimeProblem,
  decodeSigningKeyCert,
  SIGNING_KEY_CERT_LENGTH,
  type SigningKeyCert,
  type SigningKeySigner,
} from '../netdoc/signing-key-cert.js';
import { DHLEN, TAGLEN, XkHandshake, type KeyPair, type TransportKeys } from './noise.js';

export const LINK_PROLOGUE = utf8('allium-link-v1');
export const LINK_CERT_CONTEXT = utf8('allium-link-cert-v2');
/** A link certificate: the relay's signing-key certificate (201) and the signing key's signature (64). */
export const LINK_CERT_LENGTH = SIGNING_KEY_CERT_LENGTH + 64; // 265
/** Exact Noise message sizes; anything else fails the handshake. */
export const MESSAGE1_LENGTH = DHLEN + TAGLEN; // 48
export const MESSAGE2_LENGTH = DHLEN + LINK_CERT_LENGTH + TAGLEN; // 313
export const MESSAGE3_CLIENT_LENGTH = DHLEN + TAGLEN + TAGLEN; // 64
export const MESSAGE3_RELAY_LENGTH = DHLEN + TAGLEN + LINK_CERT_LENGTH + TAGLEN; // 329
/** No handshake message may be longer than this (checked on the 2-byte header). */
export const MAX_HANDSHAKE_MESSAGE = 512;
/**
 * Clock-skew tolerance, ms, when a verifier checks the time window of a
 * relay's signing-key certificate (§3.2, §8.2): one hour either way, as a
 * descriptor may be published up to one hour in the future.
 */
export const RELAY_CERT_SKEW_MS = 3600_000;

export interface LinkCertificate {
  /** The relay's signing-key certificate (§8.6, relay purpose), 201 bytes. */
  signingKeyCert: Uint8Array;
  /** Ed25519 signature by the certified signing key over "allium-link-cert-v2" || link key. */
  signature: Uint8Array;
}

/** The 265 bytes of a link certificate (§3.2). Throws DecodeError for fields of the wrong length. */
export function encodeLinkCertificate(cert: LinkCertificate): Uint8Array {
  abytes(cert.signingKeyCert, 'link certificate signing-key certificate', SIGNING_KEY_CERT_LENGTH);
  abytes(cert.signature, 'link certificate signature', 64);
  return concat(cert.signingKeyCert, cert.signature);
}

/** Splits a link certificate into its two fields (no signature checked). Throws DecodeError (ERR_MALFORMED) for a length other than 265. */
export function decodeLinkCertificate(bytes: Uint8Array): LinkCertificate {
  if (bytes.length !== LINK_CERT_LENGTH) throw malformed(`link certificate of ${bytes.length} bytes, expected ${LINK_CERT_LENGTH}`);
  return { signingKeyCert: bytes.slice(0, SIGNING_KEY_CERT_LENGTH), signature: bytes.slice(SIGNING_KEY_CERT_LENGTH) };
}

/** The link certificate binding X25519 `linkKey` to the identity of `signer`'s certificate (§3.2). */
export function signLinkCertificate(signer: SigningKeySigner, linkKey: Uint8Array, backend: CryptoBackend = crypto): Uint8Array {
  abytes(signer.signingSeed, 'signing seed', 32);
  abytes(linkKey, 'link key', 32);
  const signature = backend.ed25519Sign(signer.signingSeed, concat(LINK_CERT_CONTEXT, linkKey));
  return encodeLinkCertificate({ signingKeyCert: signer.cert.bytes, signature });
}

/**
 * The signing-key certificate of a link certificate that is well formed,
 * genuine (§8.6) and whose signing key signs `linkKey`; its `identity` is the
 * relay's. With `now` (ms), the certificate must also be current within
 * RELAY_CERT_SKEW_MS. Throws DecodeError (ERR_MALFORMED) for a bad length,
 * DocumentError ERR_MALFORMED / ERR_BAD_SIGNATURE for a bad certificate or
 * signature, ERR_DOCUMENT for a certificate outside its time window.
 */
export function verifyLinkCertificate(cert: Uint8Array, linkKey: Uint8Array, backend: CryptoBackend = crypto, now?: number): SigningKeyCert {
  abytes(linkKey, 'link key', 32);
  const { signingKeyCert, signature } = decodeLinkCertificate(cert);
  const signing = decodeSigningKeyCert('relay', signingKeyCert);
  let ok = false;
  try {
    ok = backend.ed25519Verify(signing.signingKey, concat(LINK_CERT_CONTEXT, linkKey), signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new DocumentError('ERR_BAD_SIGNATURE', 'link certificate signature does not verify');
  if (now !== undefined) {
    const late = certTimeProblem(signing, now, RELAY_CERT_SKEW_MS);
    if (late !== null) throw new DocumentError('ERR_DOCUMENT', `link certificate: signing-key ${late}`);
  }
  return signing;
}

export interface LinkPeer {
  /** The peer's X25519 link (Noise static) key. */
  linkKey: Uint8Array;
  /** The peer's Ed25519 identity, or null for an anonymous client. */
  identity: Uint8Array | null;
}

export interface LinkHandshakeResult {
  keys: TransportKeys;
  peer: LinkPeer;
  /** Bytes received after the last handshake message: the start of the frame stream. */
  leftover: Uint8Array;
}

/**
 * Reads 2-byte-length-prefixed handshake messages from a byte stream. Bounded:
 * a header over MAX_HANDSHAKE_MESSAGE fails at once, and each machine consumes
 * a whole message as soon as it is there, so at most one partial message plus
 * the current chunk is held.
 */
class MessageReader {
  #buf: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): void {
    this.#buf = this.#buf.length === 0 ? new Uint8Array(chunk) : concat(this.#buf, chunk);
    if (this.#buf.length >= 2) {
      const length = (this.#buf[0]! << 8) | this.#buf[1]!;
      if (length > MAX_HANDSHAKE_MESSAGE) throw new HandshakeError(`link handshake message of ${length} bytes is too long`);
    }
  }

  /** The next whole message, or null if more bytes are needed. */
  take(): Uint8Array | null {
    if (this.#buf.length < 2) return null;
    const length = (this.#buf[0]! << 8) | this.#buf[1]!;
    if (length > MAX_HANDSHAKE_MESSAGE) throw new HandshakeError(`link handshake message of ${length} bytes is too long`);
    if (this.#buf.length < 2 + length) return null;
    const msg = this.#buf.slice(2, 2 + length);
    this.#buf = this.#buf.slice(2 + length);
    return msg;
  }

  rest(): Uint8Array {
    const rest = this.#buf;
    this.#buf = new Uint8Array(0);
    return rest;
  }
}

function prefixed(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + message.length);
  out[0] = message.length >>> 8;
  out[1] = message.length & 0xff;
  out.set(message, 2);
  return out;
}

/**
 * Common shape of both sides: feed received bytes with `push`, send what
 * `takeOutput` returns, and once `done` read `result`. Any failure throws
 * HandshakeError from `push` (the connection must then be closed).
 */
export interface LinkHandshakeMachine {
  push(chunk: Uint8Array): void;
  takeOutput(): Uint8Array[];
  readonly done: boolean;
  readonly result: LinkHandshakeResult;
}

abstract class Machine implements LinkHandshakeMachine {
  protected readonly reader = new MessageReader();
  protected output: Uint8Array[] = [];
  protected failed = false;
  protected res: LinkHandshakeResult | null = null;

  get done(): boolean {
    return this.res !== null;
  }

  get result(): LinkHandshakeResult {
    if (this.res === null) throw new AlliumError('ERR_CONFIG', 'link handshake not finished');
    return this.res;
  }

  takeOutput(): Uint8Array[] {
    const out = this.output;
    this.output = [];
    return out;
  }

  push(chunk: Uint8Array): void {
    if (this.failed) throw new HandshakeError('link handshake already failed');
    if (this.res !== null) throw new AlliumError('ERR_CONFIG', 'link handshake already finished');
    try {
      this.reader.push(chunk);
      this.step();
    } catch (err) {
      this.failed = true;
      if (err instanceof HandshakeError) throw err;
      throw new HandshakeError(err instanceof Error ? `link handshake failed: ${err.message}` : 'link handshake failed', { cause: err });
    }
  }

  protected abstract step(): void;
}

export interface InitiatorOptions {
  /** The responder's X25519 link key (from its descriptor or an EXTEND2 link specifier). */
  peerLinkKey: Uint8Array;
  /** The Ed25519 identity the responder must prove. */
  peerIdentity: Uint8Array;
  /** Our static key: a relay's link key, or a fresh one for an anonymous client. */
  staticKey: KeyPair;
  /** Our certificate over staticKey.public if we are a relay; absent for an anonymous client. */
  certificate?: Uint8Array;
  /** Tests only: a fixed ephemeral private key. */
  ephemeral?: Uint8Array;
  backend?: CryptoBackend;
  /** The time (ms) at which the peer's certificate must be current (§3.3); absent: not checked. */
  now?: number;
}

/** The initiator: writes message 1 at once, reads message 2, writes message 3, done. */
export class LinkInitiator extends Machine {
  readonly #hs: XkHandshake;
  readonly #opts: InitiatorOptions;
  readonly #backend: CryptoBackend;
  #state: 'await2' | 'done' = 'await2';

  constructor(opts: InitiatorOptions) {
    super();
    abytes(opts.peerLinkKey, 'peerLinkKey', 32);
    abytes(opts.peerIdentity, 'peerIdentity', 32);
    if (opts.certificate !== undefined) abytes(opts.certificate, 'certificate', LINK_CERT_LENGTH);
    this.#opts = opts;
    this.#backend = opts.backend ?? crypto;
    const xk: ConstructorParameters<typeof XkHandshake>[0] = {
      initiator: true,
      prologue: LINK_PROLOGUE,
      s: opts.staticKey,
      rs: opts.peerLinkKey,
      backend: this.#backend,
    };
    if (opts.ephemeral !== undefined) xk.ephemeral = opts.ephemeral;
    this.#hs = new XkHandshake(xk);
    this.output.push(prefixed(this.#hs.writeMessage(new Uint8Array(0))));
  }

  protected step(): void {
    if (this.#state !== 'await2') return;
    const msg2 = this.reader.take();
    if (msg2 === null) return;
    if (msg2.length !== MESSAGE2_LENGTH) throw new HandshakeError(`link handshake message 2 of ${msg2.length} bytes`);
    const cert = this.#hs.readMessage(msg2);
    let identity: Uint8Array;
    try {
      identity = verifyLinkCertificate(cert, this.#opts.peerLinkKey, this.#backend, this.#opts.now).identity;
    } catch (err) {
      throw new HandshakeError(`responder link certificate refused: ${(err as Error).message}`, { cause: err });
    }
    if (!equalBytes(identity, this.#opts.peerIdentity)) {
      throw new HandshakeError('responder link certificate names another identity');
    }
    const leftover = this.reader.rest();
    // The responder cannot send frames before it has read message 3.
    if (leftover.length > 0) throw new HandshakeError('link handshake: unexpected bytes after message 2');
    this.output.push(prefixed(this.#hs.writeMessage(this.#opts.certificate ?? new Uint8Array(0))));
    this.#state = 'done';
    this.res = {
      keys: this.#hs.finish(),
      peer: { linkKey: new Uint8Array(this.#opts.peerLinkKey), identity },
      leftover,
    };
  }
}

export interface ResponderOptions {
  /** Our X25519 link key (the Noise static key). */
  staticKey: KeyPair;
  /** Our certificate over staticKey.public. */
  certificate: Uint8Array;
  /** Tests only: a fixed ephemeral private key. */
  ephemeral?: Uint8Array;
  backend?: CryptoBackend;
  /** The time (ms) at which the peer's certificate must be current (§3.3); absent: not checked. */
  now?: number;
}

/** The responder: reads message 1, writes message 2, reads message 3, done. */
export class LinkResponder extends Machine {
  readonly #hs: XkHandshake;
  readonly #opts: ResponderOptions;
  readonly #backend: CryptoBackend;
  #state: 'await1' | 'await3' | 'done' = 'await1';

  constructor(opts: ResponderOptions) {
    super();
    abytes(opts.certificate, 'certificate', LINK_CERT_LENGTH);
    this.#opts = opts;
    this.#backend = opts.backend ?? crypto;
    const xk: ConstructorParameters<typeof XkHandshake>[0] = {
      initiator: false,
      prologue: LINK_PROLOGUE,
      s: opts.staticKey,
      backend: this.#backend,
    };
    if (opts.ephemeral !== undefined) xk.ephemeral = opts.ephemeral;
    this.#hs = new XkHandshake(xk);
  }

  protected step(): void {
    if (this.#state === 'await1') {
      const msg1 = this.reader.take();
      if (msg1 === null) return;
      if (msg1.length !== MESSAGE1_LENGTH) throw new HandshakeError(`link handshake message 1 of ${msg1.length} bytes`);
      const payload = this.#hs.readMessage(msg1);
      if (payload.length !== 0) throw new HandshakeError('link handshake message 1 payload must be empty');
      // The initiator cannot send message 3 before it has read message 2.
      const extra = this.reader.rest();
      if (extra.length > 0) throw new HandshakeError('link handshake: unexpected bytes after message 1');
      this.output.push(prefixed(this.#hs.writeMessage(this.#opts.certificate)));
      this.#state = 'await3';
      return;
    }
    if (this.#state === 'await3') {
      const msg3 = this.reader.take();
      if (msg3 === null) return;
      if (msg3.length !== MESSAGE3_CLIENT_LENGTH && msg3.length !== MESSAGE3_RELAY_LENGTH) {
        throw new HandshakeError(`link handshake message 3 of ${msg3.length} bytes`);
      }
      const payload = this.#hs.readMessage(msg3);
      const linkKey = this.#hs.remoteStatic!;
      let identity: Uint8Array | null = null;
      if (payload.length > 0) {
        try {
          identity = verifyLinkCertificate(payload, linkKey, this.#backend, this.#opts.now).identity;
        } catch (err) {
          throw new HandshakeError(`initiator link certificate refused: ${(err as Error).message}`, { cause: err });
        }
      }
      this.#state = 'done';
      this.res = { keys: this.#hs.finish(), peer: { linkKey, identity }, leftover: this.reader.rest() };
    }
  }
}
