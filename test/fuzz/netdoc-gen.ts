/**
 * Generators the document fuzz tests share (test/fuzz/decoders-netdoc*.test.ts):
 * random relay keys, exit rules and summaries, params, descriptors and
 * consensus bodies, the slots where §8.1 allows unknown lines, and re-signing
 * of edited documents. Deterministic for a given Rng.
 */
import { concat, utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import type { RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { CONSENSUS_FLAGS, signConsensusBody, type ConsensusBody, type ConsensusRelay } from '../../src/netdoc/consensus.js';
import { makeAuthorityCert, type AuthoritySigner } from '../../src/netdoc/authority-cert.js';
import { makeSigningKeyCert, type SigningKeySigner } from '../../src/netdoc/signing-key-cert.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';
import { INT32_MAX, INT32_MIN, PARAM_TABLE, type KnownParam } from '../../src/netdoc/params.js';
import { formatExitRule, parseExitPolicy, type ExitRule, type ExitSummary } from '../../src/netdoc/exit-policy.js';
import { b64 } from '../../src/netdoc/text.js';
import { Rng, randomText } from './fuzz-util.js';

/** The fuzzed documents' clock: signing certificates run from T0 − 1 day to T0 + 30 days. */
export const T0 = Date.UTC(2030, 0, 2, 3, 4, 5);
export const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const KNOWN_PARAMS = Object.keys(PARAM_TABLE) as KnownParam[];

/** A well-formed line with a keyword no parser knows (§8.1). (Not contact/family/hibernating: a descriptor reads those after its exit policy.) */
export function unknownLine(rng: Rng): string {
  const keyword = rng.pick([
    'proto',
    'ntor-onion-key-crosscert',
    'X-Future-9',
    'k'.repeat(64),
    `${rng.pick([...ALNUM])}${Array.from({ length: rng.int(20) }, () => rng.pick([...ALNUM, '-'])).join('')}`,
  ]);
  const args = Array.from({ length: rng.int(4) }, () => randomText(rng, 12).replace(/[\s\x00-\x1f\x7f-\xff]/g, '') || 'x');
  return [keyword, ...args].join(' ');
}

/** A line that looks unknown but is not well formed, so it may never be skipped. */
export function badUnknownLine(rng: Rng): string {
  return rng.pick(['_x 1', '@annotation', '-----BEGIN X-----', 'foo_bar', 'foo  x', 'foo x ', `${'k'.repeat(65)} x`, ' foo']);
}

/** Inserts `line` before line index `at` of `text`. */
export function insertLine(text: string, at: number, line: string): string {
  const lines = text.split('\n');
  lines.splice(at, 0, line);
  return lines.join('\n');
}

/** Positions where a descriptor may carry an unknown line: after line 0, before `signature`, not among the rules. */
export function descriptorSlots(text: string): number[] {
  const lines = text.split('\n');
  const e = lines.findIndex((l) => l.startsWith('exit-policy '));
  const n = Number(lines[e]!.split(' ')[1]);
  return [...Array.from({ length: e }, (_, i) => i + 1), e + n + 1];
}

/** Positions where a consensus may carry an unknown line: after line 0, up to `directory-footer`. */
export function consensusSlots(text: string): number[] {
  const footer = text.split('\n').indexOf('directory-footer');
  return Array.from({ length: footer }, (_, i) => i + 1);
}

/** A signer for authority keys `k`: a signing key derived from its seed, certified from T0 − 1 day to T0 + 30 days. */
export function signerOf(k: { seed: Uint8Array }): AuthoritySigner {
  const signingSeed = crypto.sha256(concat(utf8('fuzz signing key'), k.seed));
  return { signingSeed, cert: makeAuthorityCert(k.seed, signingSeed, T0 - 86_400_000, T0 + 30 * 86_400_000) };
}

/** Re-signs a consensus whose body was edited, with the given authority signers. */
export function resignConsensus(text: string, seeds: AuthoritySigner[]): string {
  const end = text.indexOf('\ndirectory-footer\n') + '\ndirectory-footer\n'.length;
  const body = text.slice(0, end);
  return body + seeds.map((s) => signConsensusBody(body, s)).join('');
}

/** Re-signs a descriptor whose body was edited, with the relay's signing seed. */
export function resignDescriptor(text: string, seed: Uint8Array): string {
  const at = text.lastIndexOf('signature ');
  const body = text.slice(0, at);
  return `${body}signature ${b64(crypto.ed25519Sign(seed, utf8(body)))}\n`;
}

/** A params map (§8.4): up to 5 keys, known or not, with edge values and random 32-bit ones. */
export function randomParams(rng: Rng): Map<string, number> {
  const keys = new Set<string>();
  for (let i = rng.int(6); i > 0; i--) keys.add(rng.bool(0.7) ? rng.pick(KNOWN_PARAMS) : `${rng.pick([...ALNUM])}${nickname(rng)}`);
  const value = () => rng.pick([0, 1, -1, 100, 1000, 1001, 255, 256, INT32_MIN, INT32_MAX, rng.int(2 ** 32) - 2 ** 31]);
  return new Map([...keys].map((k) => [k, value()]));
}

/** A random valid nickname, 1–19 alphanumerics. */
export function nickname(rng: Rng): string {
  return Array.from({ length: rng.range(1, 19) }, () => rng.pick([...ALNUM])).join('');
}

/** A random dotted-quad IPv4 address. */
export function ipv4(rng: Rng): string {
  return `${rng.int(256)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
}

/** A random exit rule: any, private, or an IPv4/IPv6 prefix, on all ports, one or a range. */
export function randomRule(rng: Rng): ExitRule {
  const action = rng.bool() ? 'accept' : 'reject';
  let portMin = 1;
  let portMax = 65535;
  const p = rng.int(3);
  if (p === 1) portMin = portMax = rng.range(1, 65535);
  else if (p === 2) {
    portMin = rng.range(1, 65535);
    portMax = rng.range(portMin, 65535);
  }
  const k = rng.int(4);
  if (k === 0) return { action, address: { kind: 'any' }, portMin, portMax };
  if (k === 1) return { action, address: { kind: 'private' }, portMin, portMax };
  const len = k === 2 ? 4 : 16;
  const bits = rng.bool(0.3) ? len * 8 : rng.int(len * 8 + 1);
  const bytes = rng.bytes(len);
  for (let i = 0; i < len; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    bytes[i]! &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if (k === 3 && rng.bool(0.3)) bytes[i] = 0; // zero runs exercise '::'
  }
  return { action, address: { kind: 'prefix', prefix: { family: k === 2 ? 4 : 6, bytes, bits } }, portMin, portMax };
}

/** A random exit summary: accept or reject, 1–7 ascending, non-adjacent port ranges. */
export function randomSummary(rng: Rng): ExitSummary {
  const ranges: [number, number][] = [];
  let next = 1;
  const n = rng.range(1, 8);
  for (let i = 0; i < n && next <= 65535; i++) {
    const a = rng.range(next, Math.min(65535, next + rng.pick([0, 5, 100, 20000])));
    const b = rng.bool(0.5) ? a : rng.range(a, Math.min(65535, a + rng.pick([1, 10, 30000])));
    ranges.push([a, b]);
    next = b + 2;
  }
  return { action: rng.bool() ? 'accept' : 'reject', ranges };
}

/** A relay's keys for fuzzed descriptors and consensuses. */
export interface Keys {
  seed: Uint8Array;
  /** The relay's signing key, certified from T0 − 1 day to T0 + 30 days (§8.2.3). */
  relaySigner: SigningKeySigner;
  identity: Uint8Array;
  linkKey: Uint8Array;
  linkCert: Uint8Array;
  ntorOnionKey: Uint8Array;
}

/** Fresh relay keys from `rng`, with a signing key and link certificate valid around T0. */
export function relayKeys(rng: Rng): Keys {
  const seed = rng.bytes(32);
  const identity = crypto.ed25519PublicKey(seed);
  const linkKey = crypto.x25519PublicKey(rng.bytes(32));
  const signingSeed = rng.bytes(32);
  const relaySigner = { signingSeed, cert: makeSigningKeyCert('relay', seed, signingSeed, T0 - 86_400_000, T0 + 30 * 86_400_000) };
  const linkCert = signLinkCertificate(relaySigner, linkKey);
  return { seed, relaySigner, identity, linkKey, linkCert, ntorOnionKey: crypto.x25519PublicKey(rng.bytes(32)) };
}

/** A random descriptor for `keys`, with 1 to `maxRules` exit rules, published within 2 h of T0. */
export function randomDescriptor(rng: Rng, keys: Keys, maxRules = 8): RelayDescriptor {
  const rules = Array.from({ length: rng.range(1, maxRules) }, () => randomRule(rng));
  return {
    nickname: nickname(rng),
    identity: keys.identity,
    linkKey: keys.linkKey,
    linkCert: keys.linkCert,
    ntorOnionKey: keys.ntorOnionKey,
    address: ipv4(rng),
    orPort: rng.range(1, 65535),
    bandwidth: rng.pick([0, 1, rng.int(2 ** 30), 2 ** 40]),
    platform: `Allium ${rng.int(10)}.${rng.int(10)} on Node ${rng.range(20, 24)}${rng.bool(0.3) ? ' ~!@#$%^&*()' : ''}`,
    published: T0 + rng.range(-7200, 7200) * 1000,
    exitPolicy: parseExitPolicy(rules.map(formatExitRule)),
  };
}

/** A random consensus body: the given authorities, up to `maxRelays` of `relayPool`, random flags, params and times near T0. */
export function randomConsensusBody(rng: Rng, authKeys: Keys[], relayPool: Keys[], maxRelays: number): ConsensusBody {
  const validAfter = T0 + rng.range(-3600, 0) * 1000;
  const freshUntil = validAfter + rng.range(0, 3600) * 1000;
  const validUntil = freshUntil + rng.range(0, 3 * 3600) * 1000;
  const relays: ConsensusRelay[] = relayPool.slice(0, rng.int(maxRelays + 1)).map((k) => ({
    nickname: nickname(rng),
    identity: k.identity,
    address: ipv4(rng),
    orPort: rng.range(1, 65535),
    linkKey: k.linkKey,
    ntorOnionKey: k.ntorOnionKey,
    descriptorDigest: rng.bytes(32),
    flags: CONSENSUS_FLAGS.filter(() => rng.bool()),
    bandwidth: rng.int(2 ** 32),
    exitSummary: randomSummary(rng),
  }));
  return {
    consensusMethod: rng.pick([1, 1, 1, 2, 33, INT32_MAX]),
    rawParams: randomParams(rng),
    validAfter,
    freshUntil,
    validUntil,
    authorities: authKeys.map((k) => ({ nickname: nickname(rng), identity: k.identity, address: ipv4(rng), dirPort: rng.range(1, 65535) })),
    relays,
  };
}

/** `xs` sorted by identity, the order a consensus lists relays and authorities in. */
export const byIdentity = <T extends { identity: Uint8Array }>(xs: T[]) => [...xs].sort((a, b) => Buffer.compare(Buffer.from(a.identity), Buffer.from(b.identity)));

