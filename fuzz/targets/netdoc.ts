/**
 * Fuzz targets for the directory documents (src/netdoc/) and the address
 * grammar they share (src/net/): relay descriptors, consensuses, exit
 * policies and their summaries, `params` lines, IP addresses and prefixes.
 * (Votes do not exist yet.)
 *
 * Documents are signed with fixed keys (fuzz/corpus.ts fixedSecret), so an
 * accepted descriptor must be byte-for-byte what its key signed, and an
 * accepted consensus must re-encode to the body its authorities signed.
 */
import fc from 'fast-check';
import { hex } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { encodeDescriptor, parseDescriptor, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';
import { makeSigningKeyCert, type SigningKeySigner } from '../../src/netdoc/signing-key-cert.js';
import { CONSENSUS_FLAGS, encodeConsensus, encodeConsensusBody, parseConsensus, verifyConsensus, type ConsensusBody } from '../../src/netdoc/consensus.js';
import { formatExitPolicy, formatExitRule, formatSummary, parseExitPolicy, parseExitRule, parseSummary, type ExitRule, type ExitSummary } from '../../src/netdoc/exit-policy.js';
import { formatParams, INT32_MAX, INT32_MIN, PARAM_TABLE, parseParams } from '../../src/netdoc/params.js';
import { certTimeProblem, decodeAuthorityCert, makeAuthorityCert, type AuthoritySigner } from '../../src/netdoc/authority-cert.js';
import { encodeDetachedSignature, verifyDetachedSignature } from '../../src/netdoc/detached-signature.js';
import { encodeVote, encodeVoteBody, parseVote, verifyVote, type Vote } from '../../src/netdoc/vote.js';
import { canonicalIp, formatIp, parseIp } from '../../src/net/address.js';
import { formatPrefix, parsePrefix } from '../../src/net/prefix.js';
import { fixedSecret, loadCorpus } from '../corpus.js';
import { check, law, sameValue, type FuzzInput, type FuzzTarget } from '../engine.js';
import { bytes, ipv4, ipv6, port, printable, u32 } from './arbitraries.js';

/** The documents' clock: 2030-01-02 03:04:05 UTC. */
export const DOC_NOW = Date.UTC(2030, 0, 2, 3, 4, 5);

interface DocKeys {
  seed: Uint8Array;
  /** The relay's signing key, certified from DOC_NOW − 1 day to DOC_NOW + 30 days (§8.2.3). */
  relaySigner: SigningKeySigner;
  identity: Uint8Array;
  linkKey: Uint8Array;
  linkCert: Uint8Array;
  ntorOnionKey: Uint8Array;
}

function docKeys(label: string): DocKeys {
  const seed = fixedSecret(`${label}-identity`);
  const identity = crypto.ed25519PublicKey(seed);
  const linkKey = crypto.x25519PublicKey(fixedSecret(`${label}-link`));
  const relaySigningSeed = fixedSecret(`${label}-relay-signing`);
  const relaySigner = { signingSeed: relaySigningSeed, cert: makeSigningKeyCert('relay', seed, relaySigningSeed, DOC_NOW - 86_400_000, DOC_NOW + 30 * 86_400_000) };
  const linkCert = signLinkCertificate(relaySigner, linkKey);
  return { seed, relaySigner, identity, linkKey, linkCert, ntorOnionKey: crypto.x25519PublicKey(fixedSecret(`${label}-ntor`)) };
}

const RELAYS = ['relay-a', 'relay-b', 'relay-c'].map(docKeys);
const DAY_MS = 86_400_000;
/** An authority's keys and the signer (signing key and certificate, valid around DOC_NOW) it signs documents with. */
const AUTHORITIES = ['auth-1', 'auth-2', 'auth-3'].map((label) => {
  const keys = docKeys(label);
  const signingSeed = fixedSecret(`${label}-signing`);
  const signer: AuthoritySigner = { signingSeed, cert: makeAuthorityCert(keys.seed, signingSeed, DOC_NOW - DAY_MS, DOC_NOW + 30 * DAY_MS) };
  return { ...keys, signingSeed, signer };
});
const SIGNER_BY_IDENTITY = new Map(AUTHORITIES.map((a) => [hex(a.identity), a]));
/** Clock-skew tolerance the targets verify with, ms. */
const SKEW_MS = 60_000;
const TRUSTED = AUTHORITIES.map((a) => a.identity);
const SIGNER_BY_RELAY = new Map(RELAYS.map((k) => [hex(k.identity), k.relaySigner]));

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'.split('');
const nickname = fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 1, maxLength: 19 });

// ---- exit policies ----

const portRange = fc.oneof(
  fc.constant([1, 65535] as const),
  port.map((p) => [p, p] as const),
  fc.tuple(port, port).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
);

function masked(b: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(b);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    out[i]! &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

export const exitRule: fc.Arbitrary<ExitRule> = fc
  .record({
    action: fc.constantFrom('accept' as const, 'reject' as const),
    address: fc.oneof(
      fc.constant({ kind: 'any' as const }),
      fc.constant({ kind: 'private' as const }),
      fc.tuple(bytes(4, 4), fc.integer({ min: 0, max: 32 })).map(([b, bits]) => ({ kind: 'prefix' as const, prefix: { family: 4 as const, bytes: masked(b, bits), bits } })),
      fc.tuple(fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 255 })), { minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 })).map(([b, bits]) => ({
        kind: 'prefix' as const,
        prefix: { family: 6 as const, bytes: masked(Uint8Array.from(b), bits), bits },
      })),
    ),
    ports: portRange,
  })
  .map(({ action, address, ports }) => ({ action, address, portMin: ports[0], portMax: ports[1] }));

export const exitSummary: fc.Arbitrary<ExitSummary> = fc
  .tuple(fc.constantFrom('accept' as const, 'reject' as const), fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 8 }))
  .map(([action, steps]) => {
    const ranges: [number, number][] = [];
    let next = 1;
    for (const [gap, width] of steps) {
      const a = next + gap;
      const b = Math.min(65535, a + width);
      if (a > 65535) break;
      ranges.push([a, b]);
      next = b + 2;
    }
    return { action, ranges: ranges.length > 0 ? ranges : [[1, 65535]] };
  });

export const exitPolicyTarget: FuzzTarget<string> = {
  name: 'exit-policy',
  description: 'parseExitPolicy on rule lines (one per line); formatExitPolicy of the result parses to the same policy',
  kind: 'text',
  modules: ['src/netdoc/exit-policy.ts', 'src/net/prefix.ts'],
  maxRandomLength: 400,
  arbitrary: () => fc.array(exitRule, { minLength: 1, maxLength: 12 }).map((rules) => rules.map(formatExitRule).join('\n')),
  corpus: () => loadCorpus('exit-policy', 'text'),
  run(input) {
    const policy = parseExitPolicy(input.split('\n'));
    law('exit policy round trip', () => {
      sameValue('exit policy', parseExitPolicy(formatExitPolicy(policy)), policy);
      for (const rule of policy) sameValue('exit rule', parseExitRule(formatExitRule(rule)), rule);
    });
  },
};

export const exitSummaryTarget: FuzzTarget<string> = {
  name: 'exit-summary',
  description: 'parseSummary (the consensus `p` line); canonical round trip',
  kind: 'text',
  modules: ['src/netdoc/exit-policy.ts'],
  maxRandomLength: 200,
  arbitrary: () => exitSummary.map(formatSummary),
  corpus: () => loadCorpus('exit-summary', 'text'),
  run(input) {
    const summary = parseSummary(input);
    law('summary round trip', () => check(formatSummary(summary) === input, () => `summary re-encodes as ${JSON.stringify(formatSummary(summary))}`));
  },
};

// ---- params ----

const KNOWN_PARAMS = Object.keys(PARAM_TABLE);
const paramValue = fc.oneof(fc.constantFrom(0, 1, -1, 100, 1000, INT32_MIN, INT32_MAX), fc.integer({ min: INT32_MIN, max: INT32_MAX }));
const params = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...KNOWN_PARAMS), fc.string({ unit: fc.constantFrom(...ALNUM, '_', '-'), minLength: 1, maxLength: 20 }).map((k) => `K${k}`)), paramValue), { maxLength: 8 });

export const paramsTarget: FuzzTarget<string> = {
  name: 'params',
  description: 'parseParams on the arguments of a `params` line; canonical round trip',
  kind: 'text',
  modules: ['src/netdoc/params.ts'],
  maxRandomLength: 300,
  arbitrary: () => params.map((pairs) => formatParams(new Map(pairs), 'fuzz').join(' ')),
  corpus: () => loadCorpus('params', 'text'),
  run(input) {
    const raw = parseParams(input === '' ? [] : input.split(' '), 'fuzz');
    law('params round trip', () => check(formatParams(raw, 'fuzz').join(' ') === input, () => 'params re-encode differently'));
  },
};

// ---- addresses ----

export const addressTarget: FuzzTarget<string> = {
  name: 'address',
  description: 'parseIp / canonicalIp / parsePrefix (addresses in documents, policies, EXTEND2 and SOCKS); formatting round trip',
  kind: 'text',
  modules: ['src/net/address.ts', 'src/net/prefix.ts'],
  maxRandomLength: 60,
  arbitrary: () =>
    fc.oneof(
      ipv4,
      ipv6,
      ipv6.map((a) => `[${a}]`),
      fc.tuple(fc.oneof(ipv4, ipv6, ipv6.map((a) => `[${a}]`)), fc.integer({ min: 0, max: 140 })).map(([a, b]) => `${a}/${b}`),
      fc.constantFrom('::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', 'fe80::1%eth0', '0.0.0.0', '255.255.255.255', '01.2.3.4'),
    ),
  corpus: () => loadCorpus('address', 'text'),
  run(input) {
    const ip = parseIp(input);
    if (ip !== null) {
      sameValue('ip', parseIp(formatIp(ip)), ip);
      check(canonicalIp(input) === formatIp(ip), () => 'canonicalIp disagrees with formatIp');
    }
    const prefix = parsePrefix(input);
    if (prefix !== null) sameValue('prefix', parsePrefix(formatPrefix(prefix)), prefix);
  },
};

// ---- descriptors ----

const descriptor = fc
  .record({
    keys: fc.constantFrom(...RELAYS),
    nickname,
    address: ipv4,
    orPort: port,
    bandwidth: fc.oneof(fc.constantFrom(0, 1, 2 ** 40), fc.integer({ min: 0, max: 2 ** 30 })),
    platform: printable(100),
    publishedOffset: fc.integer({ min: -7200, max: 7200 }),
    rules: fc.array(exitRule, { minLength: 1, maxLength: 10 }),
  })
  .map((d) => {
    const value: RelayDescriptor = {
      nickname: d.nickname,
      identity: d.keys.identity,
      linkKey: d.keys.linkKey,
      linkCert: d.keys.linkCert,
      ntorOnionKey: d.keys.ntorOnionKey,
      address: d.address,
      orPort: d.orPort,
      bandwidth: d.bandwidth,
      platform: d.platform.trim() === '' ? 'Allium' : d.platform.trim().replace(/ +/g, ' '),
      published: DOC_NOW + d.publishedOffset * 1000,
      exitPolicy: parseExitPolicy(d.rules.map(formatExitRule)),
    };
    try {
      return encodeDescriptor(value, d.keys.relaySigner);
    } catch {
      return encodeDescriptor({ ...value, platform: 'Allium' }, d.keys.relaySigner);
    }
  });

export const descriptorTarget: FuzzTarget<string> = {
  name: 'descriptor',
  generatedPerBatch: 100,
  description: 'parseDescriptor (grammar, self-signature, link certificate, freshness); an accepted descriptor re-encodes to exactly its text',
  kind: 'text',
  modules: ['src/netdoc/descriptor.ts', 'src/netdoc/text.ts'],
  maxRandomLength: 3000,
  arbitrary: () => descriptor,
  corpus: () => loadCorpus('descriptor', 'text'),
  run(input) {
    const { descriptor: d } = parseDescriptor(input, { now: DOC_NOW });
    const signer = SIGNER_BY_RELAY.get(hex(d.identity));
    check(signer !== undefined, () => 'accepted a descriptor signed by an unknown key');
    law('descriptor round trip', () => check(encodeDescriptor(d, signer!) === input, () => 'an accepted descriptor does not re-encode to its text'));
  },
};

// ---- consensus ----

const consensusRelay = fc.record({
  keys: fc.constantFrom(...RELAYS),
  nickname,
  address: ipv4,
  orPort: port,
  digest: bytes(32, 32),
  flags: fc.subarray([...CONSENSUS_FLAGS, 'BadExit', 'HSDir']),
  bandwidth: u32,
  exitSummary,
});

/** A signed consensus (fixed keys) of up to three relays, as text. */
export const consensusDoc = fc
  .record({
    relays: fc.uniqueArray(consensusRelay, { maxLength: 3, selector: (r) => hex(r.keys.identity) }),
    authorities: fc.uniqueArray(fc.record({ keys: fc.constantFrom(...AUTHORITIES), nickname, address: ipv4, dirPort: port }), { minLength: 1, maxLength: 3, selector: (a) => hex(a.keys.identity) }),
    signers: fc.subarray(AUTHORITIES, { minLength: 1 }),
    method: fc.constantFrom(1, 2, 33, INT32_MAX),
    params,
    fresh: fc.integer({ min: 0, max: 3600 }),
    valid: fc.integer({ min: 0, max: 3 * 3600 }),
  })
  .map((c) => {
    const validAfter = DOC_NOW - 60_000;
    const body: ConsensusBody = {
      consensusMethod: c.method,
      rawParams: new Map([...new Map(c.params)].sort(([a], [b]) => (a < b ? -1 : 1))),
      validAfter,
      freshUntil: validAfter + c.fresh * 1000,
      validUntil: validAfter + (c.fresh + c.valid) * 1000 + 120_000,
      authorities: c.authorities.map((a) => ({ nickname: a.nickname, identity: a.keys.identity, address: a.address, dirPort: a.dirPort })),
      relays: c.relays.map((r) => ({
        nickname: r.nickname,
        identity: r.keys.identity,
        address: r.address,
        orPort: r.orPort,
        linkKey: r.keys.linkKey,
        ntorOnionKey: r.keys.ntorOnionKey,
        descriptorDigest: r.digest,
        flags: [...new Set(r.flags)].sort(),
        bandwidth: r.bandwidth,
        exitSummary: r.exitSummary,
      })),
    };
    return encodeConsensus(body, c.signers.map((s) => s.signer));
  });

export const consensusTarget: FuzzTarget<string> = {
  name: 'consensus',
  generatedPerBatch: 100,
  description: 'parseConsensus, then verifyConsensus against fixed authorities; the parsed body re-encodes to what parses the same, and a verified body is the canonical one its signers signed',
  kind: 'text',
  modules: ['src/netdoc/consensus.ts', 'src/netdoc/text.ts', 'src/netdoc/params.ts'],
  maxRandomLength: 4000,
  arbitrary: () => consensusDoc,
  corpus: () => loadCorpus('consensus', 'text'),
  run(input) {
    const parsed = parseConsensus(input);
    law('consensus round trip', () => {
      const reparsed = parseConsensus(`${encodeConsensusBody(parsed)}${input.slice(parsed.bodyText.length)}`);
      sameValue('consensus', { ...reparsed, bodyText: '' }, { ...parsed, bodyText: '' });
    });
    verifyConsensus(input, TRUSTED, DOC_NOW);
    check(encodeConsensusBody(parsed) === parsed.bodyText, () => 'a verified consensus body is not canonical');
  },
};

// ---- votes ----

const voteRelay = fc.record({ relay: consensusRelay, measured: fc.option(u32, { nil: undefined }) });

const voteDoc = fc
  .record({
    voter: fc.constantFrom(...AUTHORITIES),
    nickname,
    address: ipv4,
    dirPort: port,
    relays: fc.uniqueArray(voteRelay, { maxLength: 3, selector: (r) => hex(r.relay.keys.identity) }),
    knownFlags: fc.subarray([...CONSENSUS_FLAGS]),
    methods: fc.uniqueArray(fc.integer({ min: 2, max: 40 }), { maxLength: 3 }),
    params,
    fresh: fc.integer({ min: 1, max: 3600 }),
    valid: fc.integer({ min: 0, max: 3 * 3600 }),
    age: fc.integer({ min: 0, max: 600 }),
  })
  .map((v) => {
    const validAfter = DOC_NOW - 60_000;
    const known = new Set<string>(v.knownFlags);
    const vote: Vote = {
      consensusMethods: [1, ...[...v.methods].sort((a, b) => a - b)],
      published: validAfter - v.age * 1000,
      validAfter,
      freshUntil: validAfter + v.fresh * 1000,
      validUntil: validAfter + (v.fresh + v.valid) * 1000 + 120_000,
      knownFlags: v.knownFlags,
      rawParams: new Map([...new Map(v.params)].sort(([a], [b]) => (a < b ? -1 : 1))),
      authority: { nickname: v.nickname, identity: v.voter.identity, address: v.address, dirPort: v.dirPort },
      relays: v.relays.map(({ relay: r, measured }) => ({
        nickname: r.nickname,
        identity: r.keys.identity,
        address: r.address,
        orPort: r.orPort,
        linkKey: r.keys.linkKey,
        ntorOnionKey: r.keys.ntorOnionKey,
        descriptorDigest: r.digest,
        flags: [...new Set(r.flags)].filter((f) => known.has(f)).sort(),
        bandwidth: r.bandwidth,
        exitSummary: r.exitSummary,
        ...(measured !== undefined ? { measured } : {}),
      })),
    };
    return encodeVote(vote, v.voter.signer);
  });

export const voteTarget: FuzzTarget<string> = {
  name: 'vote',
  generatedPerBatch: 100,
  description: 'parseVote, then verifyVote (certificate and signature at DOC_NOW); the parsed vote re-encodes to what parses the same, and a verified body is the canonical one its voter signed',
  kind: 'text',
  modules: ['src/netdoc/vote.ts', 'src/netdoc/relay-entry.ts', 'src/netdoc/dir-signature.ts', 'src/netdoc/text.ts'],
  maxRandomLength: 4000,
  arbitrary: () => voteDoc,
  corpus: () => loadCorpus('vote', 'text'),
  run(input) {
    const parsed = parseVote(input);
    law('vote round trip', () => {
      const reparsed = parseVote(`${encodeVoteBody(parsed)}${input.slice(parsed.bodyText.length)}`);
      sameValue('vote', { ...reparsed, bodyText: '', digest: null }, { ...parsed, bodyText: '', digest: null });
    });
    verifyVote(input, DOC_NOW, SKEW_MS);
    check(SIGNER_BY_IDENTITY.has(hex(parsed.authority.identity)), () => 'verified a vote by an unknown authority');
    check(encodeVoteBody(parsed) === parsed.bodyText, () => 'a verified vote body is not canonical');
  },
};

// ---- detached signatures ----

const detachedDoc = fc
  .record({ signer: fc.constantFrom(...AUTHORITIES), age: fc.integer({ min: 0, max: 3600 }), digest: bytes(32, 32) })
  .map((d) => encodeDetachedSignature(DOC_NOW - d.age * 1000, d.digest, d.signer.signer));

export const detachedSignatureTarget: FuzzTarget<string> = {
  name: 'detached-signature',
  description: 'verifyDetachedSignature (grammar, certificate, signature over the digest at DOC_NOW); an accepted document re-encodes to exactly its text',
  kind: 'text',
  modules: ['src/netdoc/detached-signature.ts', 'src/netdoc/dir-signature.ts'],
  maxRandomLength: 1200,
  arbitrary: () => detachedDoc,
  corpus: () => loadCorpus('detached-signature', 'text'),
  run(input) {
    const d = verifyDetachedSignature(input, DOC_NOW, SKEW_MS);
    const by = SIGNER_BY_IDENTITY.get(hex(d.signature.identity));
    check(by !== undefined, () => 'verified a signature by an unknown authority');
    law('detached signature round trip', () =>
      check(encodeDetachedSignature(d.validAfter, d.digest, by!.signer) === input, () => 'an accepted detached signature does not re-encode to its text'),
    );
  },
};

// ---- authority key certificates ----

const certBytes = fc
  .record({ a: fc.constantFrom(...AUTHORITIES), published: fc.integer({ min: -400, max: 400 }), lifetime: fc.integer({ min: 1, max: 399 }) })
  .map(({ a, published, lifetime }) => {
    const from = DOC_NOW + published * DAY_MS;
    return makeAuthorityCert(a.seed, a.signingSeed, from, from + lifetime * DAY_MS).bytes;
  });

export const authorityCertTarget: FuzzTarget<Uint8Array> = {
  name: 'authority-cert',
  generatedPerBatch: 100,
  description: 'decodeAuthorityCert (length, version, fields, both signatures) and its time window; an accepted certificate is re-made byte for byte by its identity key',
  kind: 'bytes',
  modules: ['src/netdoc/authority-cert.ts'],
  maxRandomLength: 260,
  arbitrary: () => certBytes,
  corpus: () => loadCorpus('authority-cert', 'bytes'),
  run(input) {
    const cert = decodeAuthorityCert(input);
    const problem = certTimeProblem(cert, DOC_NOW, SKEW_MS);
    check(problem === null || typeof problem === 'string', () => 'certTimeProblem is not total');
    const a = SIGNER_BY_IDENTITY.get(hex(cert.identity));
    if (a === undefined || !Buffer.from(crypto.ed25519PublicKey(a.signingSeed)).equals(cert.signingKey)) return;
    law('authority certificate round trip', () =>
      check(Buffer.from(makeAuthorityCert(a.seed, a.signingSeed, cert.published, cert.expires).bytes).equals(input), () => 'an accepted certificate is not re-made byte for byte'),
    );
  },
};

export function makeNetdocCorpus(): Record<string, FuzzInput[]> {
  return {
    'exit-policy': [
      'reject private:*\naccept *:80\naccept *:443\nreject *:*',
      'accept 127.0.0.0/8:*\naccept [::1]:*\nreject *:*',
      ...fc.sample(exitPolicyTarget.arbitrary(), { seed: 61, numRuns: 8 }),
    ],
    'exit-summary': ['accept 80,443', 'reject 1-65535', 'accept 20-23,43,53,79-81,88', ...fc.sample(exitSummaryTarget.arbitrary(), { seed: 62, numRuns: 6 })],
    params: ['', 'circwindow=1000', ...fc.sample(paramsTarget.arbitrary(), { seed: 63, numRuns: 6 })],
    address: ['127.0.0.1', '::1', '[2001:db8::1]', '10.0.0.0/8', '[fe80::]/10', '::ffff:1.2.3.4', '2001:db8::/32'],
    descriptor: fc.sample(descriptor, { seed: 64, numRuns: 16 }),
    consensus: fc.sample(consensusDoc, { seed: 65, numRuns: 12 }),
    vote: fc.sample(voteDoc, { seed: 66, numRuns: 12 }),
    'detached-signature': fc.sample(detachedDoc, { seed: 67, numRuns: 6 }),
    'authority-cert': fc.sample(certBytes, { seed: 68, numRuns: 6 }),
  };
}
