/**
 * The authority key certificate (docs/protocol.md §8.6): an authority's
 * long-term Ed25519 identity key certifies a medium-term Ed25519 signing key
 * until an expiry time, and the signing key cross-certifies the identity.
 * Votes, consensus signatures and detached signatures are made with the
 * signing key, so the identity key can stay offline.
 *
 * The certificate is a fixed 201-byte binary structure (big-endian):
 *
 *   version u8 = 1 | identity [32] | signing-key [32] | published u32 | expires u32
 *   | cross-cert [64] | certification [64]
 *
 * Times are whole seconds since the epoch. Pure: no clock is read here; the
 * caller checks the time window with `certTimeProblem`.
 */
import { concat, equalBytes, Reader, utf8, Writer } from '../bytes.js';
import { crypto } from '../crypto/crypto.js';
import { DocumentError } from '../errors.js';
import { formatTime } from './text.js';

export const AUTHORITY_CERT_VERSION = 1;
export const AUTHORITY_CERT_LENGTH = 201;
/** The signed prefix: version, identity, signing key, published, expires. */
const SIGNED_PREFIX_LENGTH = 1 + 32 + 32 + 4 + 4;
/** Context of the identity key's signature over the certificate (§8.6). */
export const CERT_CONTEXT = 'allium-authority-cert-v1';
/** Context of the signing key's signature over the identity (§8.6). */
export const CROSS_CERT_CONTEXT = 'allium-authority-cross-cert-v1';
/** Longest lifetime a certificate may state (expires − published): 400 days. */
export const MAX_CERT_LIFETIME_MS = 400 * 24 * 3600_000;

const WHAT = 'authority certificate';

/** A decoded certificate whose two signatures verified. Times in ms since the epoch (whole seconds). */
export interface AuthorityCert {
  /** Long-term Ed25519 identity key (32 bytes). */
  readonly identity: Uint8Array;
  /** Medium-term Ed25519 signing key (32 bytes). */
  readonly signingKey: Uint8Array;
  readonly published: number;
  readonly expires: number;
  /** The certificate's exact 201 bytes. */
  readonly bytes: Uint8Array;
}

/** What signs directory documents for an authority: the signing key's seed and its certificate. */
export interface AuthoritySigner {
  readonly signingSeed: Uint8Array;
  readonly cert: AuthorityCert;
}

function crossCertMessage(identity: Uint8Array, expiresSeconds: number): Uint8Array {
  return concat(utf8(CROSS_CERT_CONTEXT), identity, new Writer(4).u32(expiresSeconds).finish());
}

function seconds(ms: number, name: string): number {
  if (!Number.isSafeInteger(ms) || ms % 1000 !== 0 || ms < 0 || ms / 1000 > 0xffffffff) {
    throw new DocumentError('ERR_MALFORMED', `${WHAT}: ${name} must be a whole second between 1970 and 2106`);
  }
  return ms / 1000;
}

/**
 * Makes a certificate: `identitySeed` certifies the signing key of
 * `signingSeed` from `published` until `expires` (ms, whole seconds).
 * Throws DocumentError ERR_MALFORMED for times the format cannot carry, an
 * expiry not after publication, a lifetime over MAX_CERT_LIFETIME_MS, or a
 * signing key equal to the identity key.
 */
export function makeAuthorityCert(identitySeed: Uint8Array, signingSeed: Uint8Array, published: number, expires: number): AuthorityCert {
  const identity = crypto.ed25519PublicKey(identitySeed);
  const signingKey = crypto.ed25519PublicKey(signingSeed);
  const pub = seconds(published, 'published');
  const exp = seconds(expires, 'expires');
  checkFields(identity, signingKey, published, expires);
  const w = new Writer(AUTHORITY_CERT_LENGTH).u8(AUTHORITY_CERT_VERSION).bytes(identity).bytes(signingKey).u32(pub).u32(exp);
  const prefix = w.finish().slice();
  const cross = crypto.ed25519Sign(signingSeed, crossCertMessage(identity, exp));
  const certification = crypto.ed25519Sign(identitySeed, concat(utf8(CERT_CONTEXT), prefix));
  const bytes = concat(prefix, cross, certification);
  return { identity, signingKey, published, expires, bytes };
}

function checkFields(identity: Uint8Array, signingKey: Uint8Array, published: number, expires: number): void {
  if (equalBytes(identity, signingKey)) throw new DocumentError('ERR_MALFORMED', `${WHAT}: the signing key must differ from the identity key`);
  if (!(expires > published)) throw new DocumentError('ERR_MALFORMED', `${WHAT}: expires must be after published`);
  if (expires - published > MAX_CERT_LIFETIME_MS) throw new DocumentError('ERR_MALFORMED', `${WHAT}: lifetime longer than 400 days`);
}

/**
 * Decodes a certificate and checks both signatures: the certification by
 * the identity key over CERT_CONTEXT || the first 73 bytes, and the
 * cross-certificate by the signing key over CROSS_CERT_CONTEXT || identity
 * || expires. Does not look at the clock.
 * Throws DocumentError ERR_MALFORMED (length, version, fields) or
 * ERR_BAD_SIGNATURE (a signature does not verify: a forged certificate).
 */
export function decodeAuthorityCert(bytes: Uint8Array): AuthorityCert {
  if (bytes.length !== AUTHORITY_CERT_LENGTH) throw new DocumentError('ERR_MALFORMED', `${WHAT}: expected ${AUTHORITY_CERT_LENGTH} bytes, got ${bytes.length}`);
  const r = new Reader(bytes, WHAT);
  const version = r.u8();
  if (version !== AUTHORITY_CERT_VERSION) throw new DocumentError('ERR_MALFORMED', `${WHAT}: unknown version ${version}`);
  const identity = r.bytes(32).slice();
  const signingKey = r.bytes(32).slice();
  const published = r.u32() * 1000;
  const exp = r.u32();
  const expires = exp * 1000;
  const cross = r.bytes(64);
  const certification = r.bytes(64);
  checkFields(identity, signingKey, published, expires);
  if (!crypto.ed25519Verify(identity, concat(utf8(CERT_CONTEXT), bytes.subarray(0, SIGNED_PREFIX_LENGTH)), certification)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: the identity key's certification does not verify (forged certificate)`);
  }
  if (!crypto.ed25519Verify(signingKey, crossCertMessage(identity, exp), cross)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${WHAT}: the signing key's cross-certificate does not verify`);
  }
  return { identity, signingKey, published, expires, bytes: bytes.slice() };
}

/**
 * Why `cert` is not usable at `now` (ms), allowing `skewMs` of clock skew
 * either way, or null if it is: "not valid before <published>" or
 * "expired at <expires>".
 */
export function certTimeProblem(cert: AuthorityCert, now: number, skewMs: number): string | null {
  if (now + skewMs < cert.published) return `certificate not valid before ${formatTime(cert.published)}`;
  if (now - skewMs > cert.expires) return `certificate expired at ${formatTime(cert.expires)}`;
  return null;
}
