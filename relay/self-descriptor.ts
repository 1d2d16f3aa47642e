/**
 * The descriptor this relay publishes about itself (docs/protocol.md §8):
 * its keys, where its OR port listens, its exit policy. Built fresh for every
 * upload so `published` is current; the link certificate is signed once per
 * signing key (a renewed signing key gives a new one).
 */
import { signLinkCertificate } from '../src/link/link-handshake.js';
import type { ExitPolicy } from '../src/netdoc/exit-policy.js';
import type { RelayDescriptor } from '../src/netdoc/descriptor.js';
import type { RelayKeys } from './keys.js';
import type { OrAddress6 } from '../src/netdoc/text.js';

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
  contact?: string;
  family?: readonly Uint8Array[];
  /** The IPv6 OR address and the port actually bound, if the relay has one. */
  orAddress6?: OrAddress6;
  /** Hibernating (§8.2.1): said in the descriptor. */
  hibernating?: boolean;
  /** Bumped by whoever changes a field above on a running relay, so the next descriptor is newer than the last (§9.2 refuses one that is not). */
  revision?: number;
}

/**
 * A function returning this relay's descriptor as of now: published is now
 * rounded down to the second, or one second after the last descriptor's when
 * `revision` changed within the same second (so a changed descriptor is
 * always newer than the one the authorities hold).
 */
export function selfDescriptor(self: SelfDescription): () => RelayDescriptor {
  let linkCert = { signer: self.keys.identity.signer, cert: signLinkCertificate(self.keys.identity.signer, self.keys.linkKey.public) };
  const currentLinkCert = () => {
    const signer = self.keys.identity.signer;
    if (linkCert.signer !== signer) linkCert = { signer, cert: signLinkCertificate(signer, self.keys.linkKey.public) };
    return linkCert.cert;
  };
  let lastPublished = 0;
  let lastRevision = self.revision ?? 0;
  const published = () => {
    let at = Math.floor(Date.now() / 1000) * 1000;
    const revision = self.revision ?? 0;
    if (revision !== lastRevision && at <= lastPublished) at = lastPublished + 1000;
    lastRevision = revision;
    lastPublished = Math.max(lastPublished, at);
    return at;
  };
  return () => ({
    nickname: self.nickname,
    identity: self.keys.identity.identity,
    linkKey: self.keys.linkKey.public,
    linkCert: currentLinkCert(),
    ntorOnionKey: self.keys.ntor.onionKey,
    address: self.address,
    orPort: self.orPort,
    bandwidth: self.bandwidth ?? DEFAULT_BANDWIDTH,
    platform: `Allium 0.1.0 on Node ${process.versions.node}`,
    published: published(),
    exitPolicy: self.exitPolicy,
    ...(self.contact !== undefined ? { contact: self.contact } : {}),
    ...(self.family !== undefined && self.family.length > 0 ? { family: self.family } : {}),
    ...(self.hibernating === true ? { hibernating: true } : {}),
    ...(self.orAddress6 !== undefined ? { orAddress6: self.orAddress6 } : {}),
  });
}
