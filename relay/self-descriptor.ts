/**
 * The descriptor this relay publishes about itself (docs/protocol.md §8):
 * its keys, where its OR port listens, its exit policy. Built fresh for every
 * upload so `published` is current; the link certificate is signed once.
 */
import { signLinkCertificate } from '../src/link/link-handshake.js';
import type { ExitPolicy } from '../src/netdoc/exit-policy.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import type { RelayKeys } from './keys.js';

/** Bytes per second advertised when the configuration names none. */
export const DEFAULT_BANDWIDTH = 10_000_000;

export interface SelfDescription {
  nickname: string;
  keys: RelayKeys;
  /** IPv4 address and the OR port actually bound. */
  address: string;
  orPort: number;
  exitPolicy: ExitPolicy;
  /** Bytes per second; default DEFAULT_BANDWIDTH. */
  bandwidth?: number;
}

/** A function returning this relay's descriptor as of now (published rounded down to the second). */
export function selfDescriptor(self: SelfDescription): () => RelayDescriptor {
  const linkCert = signLinkCertificate(self.keys.identity.seed, self.keys.linkKey.public);
  return () => ({
    nickname: self.nickname,
    identity: self.keys.identity.identity,
    linkKey: self.keys.linkKey.public,
    linkCert,
    ntorOnionKey: self.keys.ntor.onionKey,
    address: self.address,
    orPort: self.orPort,
    bandwidth: self.bandwidth ?? DEFAULT_BANDWIDTH,
    platform: `Allium 0.1.0 on Node ${process.versions.node}`,
    published: Math.floor(Date.now() / 1000) * 1000,
    exitPolicy: self.exitPolicy,
  });
}
