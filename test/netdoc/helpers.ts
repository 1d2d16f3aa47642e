/** Test fixtures: relay keys and descriptors made from deterministic seeds. */
import { concat, utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { LINK_CERT_CONTEXT, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { makeAuthorityCert, type AuthoritySigner } from '../../src/netdoc/authority-cert.js';

export interface RelayKeys {
  seed: Uint8Array;
  identity: Uint8Array;
  linkKey: Uint8Array;
  linkCert: Uint8Array;
  ntorOnionKey: Uint8Array;
}

export function seedOf(n: number): Uint8Array {
  return new Uint8Array(32).fill(n);
}

export function makeLinkCert(seed: Uint8Array, linkKey: Uint8Array): Uint8Array {
  const identity = crypto.ed25519PublicKey(seed);
  return concat(identity, crypto.ed25519Sign(seed, concat(utf8(LINK_CERT_CONTEXT), linkKey)));
}

export function relayKeys(n: number): RelayKeys {
  const seed = seedOf(n);
  const linkKey = crypto.x25519PublicKey(seedOf(n + 100));
  return {
    seed,
    identity: crypto.ed25519PublicKey(seed),
    linkKey,
    linkCert: makeLinkCert(seed, linkKey),
    ntorOnionKey: crypto.x25519PublicKey(seedOf(n + 200)),
  };
}

export const T0 = Date.UTC(2030, 0, 2, 3, 4, 5);

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
