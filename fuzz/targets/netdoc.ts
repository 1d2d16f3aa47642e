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
import { concat, utf8 } from '../../src/bytes.js';
import { encodeDescriptor, LINK_CERT_CONTEXT, parseDescriptor, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { CONSENSUS_FLAGS, encodeConsensus, encodeConsensusBody, parseConsensus, verifyConsensus, type ConsensusBody } from '../../src/netdoc/consensus.js';
import { formatExitPolicy, formatExitRule, formatSummary, parseExitPolicy, parseExitRule, parseSummary, type ExitRule, type ExitSummary } from '../../src/netdoc/exit-policy.js';
import { formatParams, INT32_MAX, INT32_MIN, PARAM_TABLE, parseParams } from '../../src/netdoc/params.js';
import { canonicalIp, formatIp, parseIp } from '../../src/net/address.js';
import { formatPrefix, parsePrefix } from '../../src/net/prefix.js';
import { fixedSecret, loadCorpus } from '../corpus.js';
import { check, law, sameValue, type FuzzTarget } from '../engine.js';
import { bytes, ipv4, ipv6, port, printable, u32 } from './arbitraries.js';

/** The documents' clock: 2030-01-02 03:04:05 UTC. */
export const DOC_NOW = Date.UTC(2030, 0, 2, 3, 4, 5);

interface DocKeys {
  seed: Uint8Array;
  identity: Uint8Array;
  linkKey: Uint8Array;
  linkCert: Uint8Array;
  ntorOnionKey: Uint8Array;
}

function docKeys(label: string): DocKeys {
  const seed = fixedSecret(`${label}-identity`);
  const identity = crypto.ed25519PublicKey(seed);
  const linkKey = crypto.x25519PublicKey(fixedSecret(`${label}-link`));
  const linkCert = concat(identity, crypto.ed25519Sign(seed, concat(utf8(LINK_CERT_CONTEXT), linkKey)));
  return { seed, identity, linkKey, linkCert, ntorOnionKey: crypto.x25519PublicKey(fixedSecret(`${label}-ntor`)) };
}

const RELAYS = ['relay-a', 'relay-b', 'relay-c'].map(docKeys);
const AUTHORITIES = ['auth-1', 'auth-2', 'auth-3'].map(docKeys);
const TRUSTED = AUTHORITIES.map((a) => a.identity);
const SEED_BY_IDENTITY = new Map(RELAYS.map((k) => [hex(k.identity), k.seed]));

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
      return encodeDescriptor(value, d.keys.seed);
    } catch {
      return encodeDescriptor({ ...value, platform: 'Allium' }, d.keys.seed);
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
    const seed = SEED_BY_IDENTITY.get(hex(d.identity));
    check(seed !== undefined, () => 'accepted a descriptor signed by an unknown key');
    law('descriptor round trip', () => check(encodeDescriptor(d, seed!) === input, () => 'an accepted descriptor does not re-encode to its text'));
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

const consensusDoc = fc
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
    return encodeConsensus(body, c.signers.map((s) => s.seed));
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

export function makeNetdocCorpus(): Record<string, string[]> {
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
  };
}
