/**
 * The ntor v3 circuit handshake (Tor proposal 332, tor-spec "ntor-v3";
 * docs/protocol.md), instantiated exactly as Tor does for CREATE2
 * handshake type 3: X25519, SHA3-256, SHAKE-256 and AES-256-CTR, with
 * PROTOID "ntor3-curve25519-sha3_256-1".
 *
 *   client -> relay (onionskin):  ID (32) | B (32) | X (32) | ENC(CM) | MAC (32)
 *   relay -> client (reply):      Y (32) | AUTH (32) | ENC(SM)
 *
 * Both sides end with the same KEYSTREAM; `keyMaterial` is its first
 * `keyLength` bytes (tor1 takes 72: Df | Db | Kf | Kb).
 */
import type { CryptoBackend } from './backend.js';
import { crypto as defaultBackend } from './crypto.js';
import { abytes, concat, equalBytes, u64, utf8 } from '../bytes.js';
import { AlliumError, HandshakeError, truncated } from '../errors.js';

export interface NtorV3RelayPublic {
  /** The relay's 32-byte Ed25519 identity key (ID). */
  identity: Uint8Array;
  /** The relay's 32-byte X25519 onion key (B). */
  onionKey: Uint8Array;
}

export interface NtorV3RelaySecret extends NtorV3RelayPublic {
  /** The 32-byte X25519 secret (b) of `onionKey`. */
  onionSecret: Uint8Array;
}

/** What the client keeps between start and finish. Opaque; usable once. */
export interface NtorV3ClientState {
  readonly handshake: 'ntor-v3';
}

export interface NtorV3Options {
  /** The ephemeral X25519 secret (x on the client, y on the relay); random if absent. For test vectors. */
  ephemeralSecret?: Uint8Array;
  backend?: CryptoBackend;
}

const KEY_LEN = 32; // PUB_KEY_LEN = ID_LEN = DIGEST_LEN = MAC_LEN = MAC_KEY_LEN = ENC_KEY_LEN
/** ID | B | X | MAC: the onionskin without the encrypted client message. */
export const NTOR_V3_ONIONSKIN_OVERHEAD = 4 * KEY_LEN;
/** Y | AUTH: the reply without the encrypted server message. */
export const NTOR_V3_REPLY_OVERHEAD = 2 * KEY_LEN;

const PROTOID = utf8('ntor3-curve25519-sha3_256-1');
const T_MSGKDF = utf8('ntor3-curve25519-sha3_256-1:kdf_phase1');
const T_MSGMAC = utf8('ntor3-curve25519-sha3_256-1:msg_mac');
const T_KEY_SEED = utf8('ntor3-curve25519-sha3_256-1:key_seed');
const T_VERIFY = utf8('ntor3-curve25519-sha3_256-1:verify');
const T_FINAL = utf8('ntor3-curve25519-sha3_256-1:kdf_final');
const T_AUTH = utf8('ntor3-curve25519-sha3_256-1:auth_final');
const SERVER = utf8('Server');

/** ENCAP(s) = 64-bit big-endian length of s, then s. */
function encap(s: Uint8Array): Uint8Array {
  return concat(u64(s.length), s);
}

function hashT(backend: CryptoBackend, tweak: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return backend.sha3_256(concat(encap(tweak), ...parts));
}

function macT(backend: CryptoBackend, tweak: Uint8Array, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return backend.sha3_256(concat(encap(tweak), encap(key), ...parts));
}

function kdfT(backend: CryptoBackend, tweak: Uint8Array, length: number, ...parts: Uint8Array[]): Uint8Array {
  return backend.shake256(concat(encap(tweak), ...parts), length);
}

/** AES-256-CTR from a zero counter; its own inverse. */
function cipher(backend: CryptoBackend, key: Uint8Array, data: Uint8Array): Uint8Array {
  return backend.aesCtr(key).update(data);
}

/** The phase-1 keys (ENC_K1, MAC_K1) from EXP(B,x) = EXP(X,b) and the MAC over the encrypted client message. */
function phase1(
  backend: CryptoBackend,
  dh: Uint8Array,
  id: Uint8Array,
  b: Uint8Array,
  x: Uint8Array,
  verification: Uint8Array,
): { encKey: Uint8Array; macKey: Uint8Array } {
  const keys = kdfT(backend, T_MSGKDF, 2 * KEY_LEN, dh, id, x, b, PROTOID, encap(verification));
  return { encKey: keys.subarray(0, KEY_LEN), macKey: keys.subarray(KEY_LEN) };
}

function msgMac(backend: CryptoBackend, macKey: Uint8Array, id: Uint8Array, b: Uint8Array, x: Uint8Array, encrypted: Uint8Array): Uint8Array {
  return macT(backend, T_MSGMAC, macKey, id, b, x, encrypted);
}

/**
 * Phase 2, shared by both sides: from EXP(X,y) = EXP(Y,x) and EXP(X,b) = EXP(B,x),
 * `verify` (for AUTH) and `ENC_KEY | KEYSTREAM` of length 32 + keyLength.
 */
function phase2(
  backend: CryptoBackend,
  ephemeralDh: Uint8Array,
  staticDh: Uint8Array,
  id: Uint8Array,
  b: Uint8Array,
  x: Uint8Array,
  y: Uint8Array,
  verification: Uint8Array,
  keyLength: number,
): { verify: Uint8Array; rawKeystream: Uint8Array } {
  const secretInput = concat(ephemeralDh, staticDh, id, b, x, y, PROTOID, encap(verification));
  const keySeed = hashT(backend, T_KEY_SEED, secretInput);
  const verify = hashT(backend, T_VERIFY, secretInput);
  secretInput.fill(0);
  const rawKeystream = kdfT(backend, T_FINAL, KEY_LEN + keyLength, keySeed);
  keySeed.fill(0);
  return { verify, rawKeystream };
}

/** AUTH: binds the transcript, the client's MAC and the encrypted server message. */
function authOf(
  backend: CryptoBackend,
  verify: Uint8Array,
  id: Uint8Array,
  b: Uint8Array,
  y: Uint8Array,
  x: Uint8Array,
  clientMac: Uint8Array,
  encryptedServerMessage: Uint8Array,
): Uint8Array {
  return hashT(backend, T_AUTH, verify, id, b, y, x, clientMac, encap(encryptedServerMessage), PROTOID, SERVER);
}

function checkKeyLength(keyLength: number): void {
  if (!Number.isSafeInteger(keyLength) || keyLength < 0) throw new RangeError(`ntor-v3 keyLength: expected a non-negative integer, got ${keyLength}`);
}

class ClientState implements NtorV3ClientState {
  readonly handshake = 'ntor-v3' as const;
  readonly backend: CryptoBackend;
  readonly id: Uint8Array;
  readonly b: Uint8Array;
  readonly x: Uint8Array;
  readonly verification: Uint8Array;
  readonly clientMac: Uint8Array;
  /** x and EXP(B,x); wiped and set to null once finish has run. */
  secrets: { xSecret: Uint8Array; bx: Uint8Array } | null;

  constructor(
    backend: CryptoBackend,
    id: Uint8Array,
    b: Uint8Array,
    x: Uint8Array,
    verification: Uint8Array,
    clientMac: Uint8Array,
    secrets: { xSecret: Uint8Array; bx: Uint8Array },
  ) {
    this.backend = backend;
    this.id = id;
    this.b = b;
    this.x = x;
    this.verification = verification;
    this.clientMac = clientMac;
    this.secrets = secrets;
  }
}

/**
 * Client, phase 1: encrypt and authenticate `clientMessage` to the relay's
 * onion key and build the onionskin (the CREATE2 handshake data).
 */
export function ntorV3ClientStart(
  relay: NtorV3RelayPublic,
  clientMessage: Uint8Array,
  verification: Uint8Array,
  opts: NtorV3Options = {},
): { state: NtorV3ClientState; onionskin: Uint8Array } {
  const backend = opts.backend ?? defaultBackend;
  abytes(relay.identity, 'ntor-v3 relay identity', KEY_LEN);
  abytes(relay.onionKey, 'ntor-v3 relay onion key', KEY_LEN);
  abytes(clientMessage, 'ntor-v3 client message');
  abytes(verification, 'ntor-v3 verification');
  if (opts.ephemeralSecret !== undefined) abytes(opts.ephemeralSecret, 'ntor-v3 ephemeral secret', KEY_LEN);

  const id = new Uint8Array(relay.identity);
  const b = new Uint8Array(relay.onionKey);
  const xSecret = opts.ephemeralSecret !== undefined ? new Uint8Array(opts.ephemeralSecret) : backend.randomBytes(KEY_LEN);
  const x = backend.x25519PublicKey(xSecret);
  const bx = backend.x25519(xSecret, b);

  const { encKey, macKey } = phase1(backend, bx, id, b, x, verification);
  const encrypted = cipher(backend, encKey, clientMessage);
  const mac = msgMac(backend, macKey, id, b, x, encrypted);
  encKey.fill(0);
  macKey.fill(0);

  const state = new ClientState(backend, id, b, x, new Uint8Array(verification), mac, { xSecret, bx });
  return { state, onionskin: concat(id, b, x, encrypted, mac) };
}

/**
 * Relay side: check the onionskin is for this relay, verify and decrypt the
 * client message, answer it with `makeReply(clientMessage)` and derive the keys.
 * Throws DecodeError (ERR_TRUNCATED) for a short onionskin and HandshakeError for
 * a wrong identity or onion key, a bad MAC or a degenerate client key.
 * `makeReply` sees only an authenticated message; whatever it throws (say, a
 * DecodeError for a malformed extension list) fails the handshake unchanged.
 */
export function ntorV3ServerHandshake(
  relay: NtorV3RelaySecret,
  onionskin: Uint8Array,
  verification: Uint8Array,
  makeReply: (clientMessage: Uint8Array) => Uint8Array,
  keyLength: number,
  opts: NtorV3Options = {},
): { reply: Uint8Array; keyMaterial: Uint8Array; clientMessage: Uint8Array } {
  const backend = opts.backend ?? defaultBackend;
  abytes(relay.identity, 'ntor-v3 relay identity', KEY_LEN);
  abytes(relay.onionKey, 'ntor-v3 relay onion key', KEY_LEN);
  abytes(relay.onionSecret, 'ntor-v3 relay onion secret', KEY_LEN);
  abytes(onionskin, 'ntor-v3 onionskin');
  abytes(verification, 'ntor-v3 verification');
  checkKeyLength(keyLength);
  if (opts.ephemeralSecret !== undefined) abytes(opts.ephemeralSecret, 'ntor-v3 ephemeral secret', KEY_LEN);

  if (onionskin.length < NTOR_V3_ONIONSKIN_OVERHEAD) throw truncated('ntor-v3 onionskin');
  const id = onionskin.slice(0, KEY_LEN);
  const b = onionskin.slice(KEY_LEN, 2 * KEY_LEN);
  const x = onionskin.slice(2 * KEY_LEN, 3 * KEY_LEN);
  const encrypted = onionskin.slice(3 * KEY_LEN, onionskin.length - KEY_LEN);
  const mac = onionskin.slice(onionskin.length - KEY_LEN);

  if (!equalBytes(id, relay.identity)) throw new HandshakeError('ntor-v3: onionskin is for a different relay identity');
  if (!equalBytes(b, relay.onionKey)) throw new HandshakeError('ntor-v3: onionskin is for an unknown onion key');

  const xb = backend.x25519(relay.onionSecret, x);
  const { encKey, macKey } = phase1(backend, xb, id, b, x, verification);
  const expectedMac = msgMac(backend, macKey, id, b, x, encrypted);
  macKey.fill(0);
  if (!equalBytes(expectedMac, mac)) {
    encKey.fill(0);
    xb.fill(0);
    throw new HandshakeError('ntor-v3: client message MAC does not verify');
  }
  const clientMessage = cipher(backend, encKey, encrypted);
  encKey.fill(0);

  let serverMessage: Uint8Array;
  try {
    serverMessage = makeReply(clientMessage);
    abytes(serverMessage, 'ntor-v3 server message');
  } catch (err) {
    xb.fill(0);
    throw err;
  }

  const ySecret = opts.ephemeralSecret !== undefined ? new Uint8Array(opts.ephemeralSecret) : backend.randomBytes(KEY_LEN);
  try {
    const y = backend.x25519PublicKey(ySecret);
    const xy = backend.x25519(ySecret, x);
    const { verify, rawKeystream } = phase2(backend, xy, xb, id, b, x, y, verification, keyLength);
    xy.fill(0);
    const encryptedReply = cipher(backend, rawKeystream.subarray(0, KEY_LEN), serverMessage);
    const keyMaterial = rawKeystream.slice(KEY_LEN);
    rawKeystream.fill(0);
    const auth = authOf(backend, verify, id, b, y, x, mac, encryptedReply);
    return { reply: concat(y, auth, encryptedReply), keyMaterial, clientMessage };
  } finally {
    ySecret.fill(0);
    xb.fill(0);
  }
}

/**
 * Client, phase 2: check the relay's AUTH, decrypt the server message and
 * derive the keys. The state is spent by this call whether it succeeds or not.
 * Throws DecodeError (ERR_TRUNCATED) for a short reply and HandshakeError for
 * a bad AUTH or a degenerate relay key.
 */
export function ntorV3ClientFinish(
  state: NtorV3ClientState,
  reply: Uint8Array,
  keyLength: number,
): { keyMaterial: Uint8Array; serverMessage: Uint8Array } {
  if (!(state instanceof ClientState)) throw new TypeError('ntor-v3: not a client state from ntorV3ClientStart');
  const secrets = state.secrets;
  if (secrets === null) throw new AlliumError('ERR_CONFIG', 'ntor-v3: client state already used');
  state.secrets = null;
  try {
    abytes(reply, 'ntor-v3 reply');
    checkKeyLength(keyLength);
    if (reply.length < NTOR_V3_REPLY_OVERHEAD) throw truncated('ntor-v3 reply');
    const { backend, id, b, x, verification, clientMac } = state;
    const y = reply.slice(0, KEY_LEN);
    const auth = reply.slice(KEY_LEN, 2 * KEY_LEN);
    const encrypted = reply.slice(2 * KEY_LEN);

    const yx = backend.x25519(secrets.xSecret, y);
    const { verify, rawKeystream } = phase2(backend, yx, secrets.bx, id, b, x, y, verification, keyLength);
    yx.fill(0);
    const expectedAuth = authOf(backend, verify, id, b, y, x, clientMac, encrypted);
    if (!equalBytes(expectedAuth, auth)) {
      rawKeystream.fill(0);
      throw new HandshakeError('ntor-v3: relay AUTH does not verify');
    }
    const serverMessage = cipher(backend, rawKeystream.subarray(0, KEY_LEN), encrypted);
    const keyMaterial = rawKeystream.slice(KEY_LEN);
    rawKeystream.fill(0);
    return { keyMaterial, serverMessage };
  } finally {
    secrets.xSecret.fill(0);
    secrets.bx.fill(0);
  }
}
