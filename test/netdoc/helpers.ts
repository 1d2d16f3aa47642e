/** Test fixtures: relay keys and descriptors made from deterministic seeds. */
import { utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import type { RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';
import { makeSigningKeyCert, type SigningKeySigner } from '../../src/netdoc/signing-key-cert.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { makeAuthorityCert, type AuthoritySigner } from '../../src/netdoc/authority-cert.js';

export interface RelayKeys {
  /** The identity seed. */
  seed: Uint8Array;
  /** The relay's signing key and its certificate (docs/protocol.md §8.2.3). */
  signer: SigningKeySigner;
  identity: Uint8Array;
  linkKey: Uint8Array;
  linkCert: Uint8Array;
  ntorOnionKey: Uint8Array;
}

export function seedOf(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

export const T0 = Date.UTC(2030, 0, 2, 3, 4, 5);

/**
 * Relay `n`'s signer: identity seed `seedOf(n)`, signing seed `seedOf(n + 150)`,
 * certified from `at` − 1 day to `at` + 30 days (`at` rounded down to the second).
 */
export function relaySigner(n: number, at: number = T0, over: { published?: number; expires?: number } = {}): SigningKeySigner {
  const base = Math.floor(at / 1000) * 1000;
  const signingSeed = seedOf(n + 150);
  return { signingSeed, cert: makeSigningKeyCert('relay', seedOf(n), signingSeed, over.published ?? base - 86_400_000, over.expires ?? base + 30 * 86_400_000) };
}

/** Relay `n`'s keys, its signing key certified around `at` (default T0; pass Date.now() for descriptors an authority checks now). */
export function relayKeys(n: number, at: number = T0): RelayKeys {
  const seed = seedOf(n);
  const linkKey = crypto.x25519PublicKey(seedOf(n + 100));
  const signer = relaySigner(n, at);
  return {
    seed,
    signer,
    identity: crypto.ed25519PublicKey(seed),
    linkKey,
    linkCert: signLinkCertificate(signer, linkKey),
    ntorOnionKey: crypto.x25519PublicKey(seedOf(n + 200)),
  };
}

export function makeDescriptor(keys: RelayKeys, over: Partial<RelayDescriptor> = {}): RelayDescriptor {
  return {
    nickname: 'relay1',
    identity: keys.identity,
    linkKey: keys.linkKey,
    linkCert: keys.linkCert,
    ntorOnionKey: keys.ntorOnionKey,
    address: '127.0.0.1',
    orPort: 9001,
    bandwidth: 1_000_000,
    platform: 'Allium 0.1.0 on Node 20',
    published: T0,
    exitPolicy: parseExitPolicy(['reject private:*', 'accept *:80', 'reject *:*']),
    ...over,
  };
}

/**
 * Authority `n`'s signer (docs/protocol.md §8.6): identity seed `seedOf(n)`,
 * a signing seed derived from n, certified from T0 − 1 day to T0 + 30 days.
 */
export function authoritySigner(n: number, over: { published?: number; expires?: number } = {}): AuthoritySigner {
  const signingSeed = crypto.sha256(utf8(`allium test signing key ${n}`));
  const published = over.published ?? T0 - 86_400_000;
  const expires = over.expires ?? T0 + 30 * 86_400_000;
  return { signingSeed, cert: makeAuthorityCert(seedOf(n), signingSeed, published, expires) };
}

/** A signer for `identitySeed` whose certificate is valid from an hour ago to an hour from now (real clock). */
export function liveAuthoritySigner(identitySeed: Uint8Array): AuthoritySigner {
  const now = Math.floor(Date.now() / 1000) * 1000;
  const signingSeed = crypto.randomBytes(32);
  return { signingSeed, cert: makeAuthorityCert(identitySeed, signingSeed, now - 3_600_000, now + 3_600_000) };
}
