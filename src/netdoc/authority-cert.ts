/**
 * The authority key certificate (docs/protocol.md §8.6): the signing-key
 * certificate of signing-key-cert.ts with the authority contexts. An
 * authority's long-term Ed25519 identity key certifies a medium-term Ed25519
 * signing key; votes, consensus signatures and detached signatures are made
 * with the signing key, so the identity key can stay offline.
 */
import {
  CERT_CONTEXTS,
  SIGNING_KEY_CERT_LENGTH,
  SIGNING_KEY_CERT_VERSION,
  decodeSigningKeyCert,
  makeSigningKeyCert,
  type SigningKeyCert,
  type SigningKeySigner,
} from './signing-key-cert.js';

export { certTimeProblem, MAX_CERT_LIFETIME_MS } from './signing-key-cert.js';

export const AUTHORITY_CERT_VERSION = SIGNING_KEY_CERT_VERSION;
export const AUTHORITY_CERT_LENGTH = SIGNING_KEY_CERT_LENGTH;
/** Context of the identity key's signature over the certificate (§8.6). */
export const CERT_CONTEXT = CERT_CONTEXTS.authority.cert;
/** Context of the signing key's signature over the identity (§8.6). */
export const CROSS_CERT_CONTEXT = CERT_CONTEXTS.authority.cross;

/** A decoded authority certificate whose two signatures verified. Times in ms since the epoch (whole seconds). */
export type AuthorityCert = SigningKeyCert;

/** What signs directory documents for an authority: the signing key's seed and its certificate. */
export type AuthoritySigner = SigningKeySigner;

/** makeSigningKeyCert('authority', …): see there for the errors thrown. */
export function makeAuthorityCert(identitySeed: Uint8Array, signingSeed: Uint8Array, published: number, expires: number): AuthorityCert {
  return makeSigningKeyCert('authority', identitySeed, signingSeed, published, expires);
}

/** decodeSigningKeyCert('authority', …): see there for the errors thrown. */
export function decodeAuthorityCert(bytes: Uint8Array): AuthorityCert {
  return decodeSigningKeyCert('authority', bytes);
}
