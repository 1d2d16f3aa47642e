/**
 * Signing-key certificates (docs/protocol.md §8.6): a long-term Ed25519
 * identity key certifies a medium-term Ed25519 signing key until an expiry
 * time, and the signing key cross-certifies the identity. Authorities sign
 * directory documents with their signing key (§8.6); relays sign their
 * descriptors and link certificates with theirs (§3.2, §8.2). Either way the
 * identity key can stay offline.
 *
 * The certificate is a fixed 201-byte binary structure (big-endian):
 *
 *   version u8 = 1 | identity [32] | signing-key [32] | published u32 | expires u32
 *   | cross-cert [64] | certification [64]
 *
 * Authority and relay certificates share the layout and differ only in the
 * signature context strings (the `purpose`), so one can never pass for the
 * other. Times are whole seconds since the epoch. Pure: no clock is read
 * here; the caller checks the time window with `certTimeProblem`.
 */
import { concat, equalBytes, Reader, utf8, Writer } from '../bytes.js';
import { crypto } from '../crypto/crypto.js';
import { DocumentError } from '../errors.js';
import { formatTime } from './text.js';

export const SIGNING_KEY_CERT_VERSION = 1;
export const SIGNING_KEY_CERT_LENGTH = 201;
/** The signed prefix: version, identity, signing key, published, expires. */
const SIGNED_PREFIX_LENGTH = 1 + 32 + 32 + 4 + 4;
/** Longest lifetime a certificate may state (expires − published): 400 days. */
export const MAX_CERT_LIFETIME_MS = 400 * 24 * 3600_000;

/** Whose signing key a certificate binds: an authority's (§8.6) or a relay's (§8.2). */
export type CertPurpose = 'authority' | 'relay';

/** The two signature contexts of each purpose (§8.6): the identity's certification and the signing key's cross-certificate. */
export const CERT_CONTEXTS: Readonly<Record<CertPurpose, { cert: string; cross: string; what: string }>> = {
  authority: { cert: 'allium-authority-cert-v1', cross: 'allium-authority-cross-cert-v1', what: 'authority certificate' },
  relay: { cert: 'allium-relay-cert-v1', cross: 'allium-relay-cross-cert-v1', what: 'relay signing-key certificate' },
};

/** A decoded certificate whose two signatures verified. Times in ms since the epoch (whole seconds). */
export interface SigningKeyCert {
  /** Long-term Ed25519 identity key (32 bytes). */
  readonly identity: Uint8Array;
  /** Medium-term Ed25519 signing key (32 bytes). */
  readonly signingKey: Uint8Array;
  readonly published: number;
  readonly expires: number;
  /** The certificate's exact 201 bytes. */
  readonly bytes: Uint8Array;
}

/** What signs on behalf of an identity: the signing key's 32-byte seed and its certificate. */
export interface SigningKeySigner {
  readonly signingSeed: Uint8Array;
  readonly cert: SigningKeyCert;
}

function crossCertMessage(purpose: CertPurpose, identity: Uint8Array, expiresSeconds: number): Uint8Array {
  return concat(utf8(CERT_CONTEXTS[purpose].cross), identity, new Writer(4).u32(expiresSeconds).finish());
}

function seconds(ms: number, name: string, what: string): number {
  if (!Number.isSafeInteger(ms) || ms % 1000 !== 0 || ms < 0 || ms / 1000 > 0xffffffff) {
    throw new DocumentError('ERR_MALFORMED', `${what}: ${name} must be a whole second between 1970 and 2106`);
  }
  return ms / 1000;
}

function checkFields(what: string, identity: Uint8Array, signingKey: Uint8Array, published: number, expires: number): void {
  if (equalBytes(identity, signingKey)) throw new DocumentError('ERR_MALFORMED', `${what}: the signing key must differ from the identity key`);
  if (!(expires > published)) throw new DocumentError('ERR_MALFORMED', `${what}: expires must be after published`);
  if (expires - published > MAX_CERT_LIFETIME_MS) throw new DocumentError('ERR_MALFORMED', `${what}: lifetime longer than 400 days`);
}

/**
 * Makes a `purpose` certificate: `identitySeed` certifies the signing key of
 * `signingSeed` from `published` until `expires` (ms, whole seconds).
 * Throws DocumentError ERR_MALFORMED for times the format cannot carry, an
 * expiry not after publication, a lifetime over MAX_CERT_LIFETIME_MS, or a
 * signing key equal to the identity key.
 */
export function makeSigningKeyCert(purpose: CertPurpose, identitySeed: Uint8Array, signingSeed: Uint8Array, published: number, expires: number): SigningKeyCert {
  const { what, cert: context } = CERT_CONTEXTS[purpose];
  const identity = crypto.ed25519PublicKey(identitySeed);
  const signingKey = crypto.ed25519PublicKey(signingSeed);
  const pub = seconds(published, 'published', what);
  const exp = seconds(expires, 'expires', what);
  checkFields(what, identity, signingKey, published, expires);
  const prefix = new Writer(SIGNING_KEY_CERT_LENGTH).u8(SIGNING_KEY_CERT_VERSION).bytes(identity).bytes(signingKey).u32(pub).u32(exp).finish().slice();
  const cross = crypto.ed25519Sign(signingSeed, crossCertMessage(purpose, identity, exp));
  const certification = crypto.ed25519Sign(identitySeed, concat(utf8(context), prefix));
  return { identity, signingKey, published, expires, bytes: concat(prefix, cross, certification) };
}

/**
 * Decodes a `purpose` certificate and checks both signatures: the
 * certification by the identity key over context || the first 73 bytes, and
 * the cross-certificate by the signing key over cross-context || identity ||
 * expires. Does not look at the clock.
 * Throws DocumentError ERR_MALFORMED (length, version, fields) or
 * ERR_BAD_SIGNATURE (a signature does not verify: a forged certificate, or
 * one made for the other purpose).
 */
export function decodeSigningKeyCert(purpose: CertPurpose, bytes: Uint8Array): SigningKeyCert {
  const { what, cert: context } = CERT_CONTEXTS[purpose];
  if (bytes.length !== SIGNING_KEY_CERT_LENGTH) throw new DocumentError('ERR_MALFORMED', `${what}: expected ${SIGNING_KEY_CERT_LENGTH} bytes, got ${bytes.length}`);
  const r = new Reader(bytes, what);
  const version = r.u8();
  if (version !== SIGNING_KEY_CERT_VERSION) throw new DocumentError('ERR_MALFORMED', `${what}: unknown version ${version}`);
  const identity = r.bytes(32).slice();
  const signingKey = r.bytes(32).slice();
  const published = r.u32() * 1000;
  const exp = r.u32();
  const expires = exp * 1000;
  const cross = r.bytes(64);
  const certification = r.bytes(64);
  checkFields(what, identity, signingKey, published, expires);
  if (!crypto.ed25519Verify(identity, concat(utf8(context), bytes.subarray(0, SIGNED_PREFIX_LENGTH)), certification)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${what}: the identity key's certification does not verify (forged certificate)`);
  }
  if (!crypto.ed25519Verify(signingKey, crossCertMessage(purpose, identity, exp), cross)) {
    throw new DocumentError('ERR_BAD_SIGNATURE', `${what}: the signing key's cross-certificate does not verify`);
  }
  return { identity, signingKey, published, expires, bytes: bytes.slice() };
}

/**
 * Why `cert` is not usable at `now` (ms), allowing `skewMs` of clock skew
 * either way, or null if it is: "not valid before <published>" or
 * "expired at <expires>".
 */
export function certTimeProblem(cert: SigningKeyCert, now: number, skewMs: number): string | null {
  if (now + skewMs < cert.published) return `certificate not valid before ${formatTime(cert.published)}`;
  if (now - skewMs > cert.expires) return `certificate expired at ${formatTime(cert.expires)}`;
  return null;
}
