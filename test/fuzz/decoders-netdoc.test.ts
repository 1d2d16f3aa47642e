/**
 * Fuzz the document parsers (src/netdoc/): relay descriptors, the consensus
 * (with its method and params lines), network parameters and exit policies.
 * Random text, valid documents with mutations (characters, numbers, times,
 * words, duplicated / removed / swapped lines, truncation at every length)
 * must parse or throw an AlliumError (DocumentError); valid documents
 * round-trip, also with unknown lines inserted where §8.1 allows them.
 * Seeded and deterministic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concat, utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { encodeDescriptor, parseDescriptor, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import {
  CONSENSUS_FLAGS,
  encodeConsensus,
  parseConsensus,
  signConsensusBody,
  verifyConsensus,
  type ConsensusBody,
  type ConsensusRelay,
} from '../../src/netdoc/consensus.js';
import { decodeAuthorityCert, makeAuthorityCert, type AuthoritySigner } from '../../src/netdoc/authority-cert.js';
import { makeSigningKeyCert, type SigningKeySigner } from '../../src/netdoc/signing-key-cert.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';
import { formatParams, INT32_MAX, INT32_MIN, networkParams, PARAM_TABLE, parseParams, type KnownParam } from '../../src/netdoc/params.js';
import {
  exitPolicyAllows,
  exitPolicyAllowsPort,
  formatExitRule,
  formatSummary,
  isPrivateAddress,
  parseExitPolicy,
  parseExitRule,
  parseSummary,
  summarizeExitPolicy,
  type ExitRule,
  type ExitSummary,
} from '../../src/netdoc/exit-policy.js';
import { parseAddress, parseNickname, parsePortNumber, parseTime, parseUint, splitDocument, unb64, b64, formatTime } from '../../src/netdoc/text.js';
import { formatIPv6, parseIPv4, parseIPv6 } from '../../src/net/address.js';
import { Rng, describeText, expectTyped, mutate, mutateText, outcomes, randomText } from './fuzz-util.js';
import { encodeVote, MAX_VOTE_BYTES, parseVote, verifyVote, type Vote } from '../../src/netdoc/vote.js';
import { encodeDetachedSignature, parseDetachedSignature, verifyDetachedSignature } from '../../src/netdoc/detached-signature.js';

const T0 = Date.UTC(2030, 0, 2, 3, 4, 5);
const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const KNOWN_PARAMS = Object.keys(PARAM_TABLE) as KnownParam[];

/** A well-formed line with a keyword no parser knows (§8.1). (Not contact/family/hibernating: a descriptor reads those after its exit policy.) */
function unknownLine(rng: Rng): string {
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
function badUnknownLine(rng: Rng): string {
  return rng.pick(['_x 1', '@annotation', '-----BEGIN X-----', 'foo_bar', 'foo  x', 'foo x ', `${'k'.repeat(65)} x`, ' foo']);
}

/** Inserts `line` before line index `at` of `text`. */
function insertLine(text: string, at: number, line: string): string {
  const lines = text.split('\n');
  lines.splice(at, 0, line);
  return lines.join('\n');
}

/** Positions where a descriptor may carry an unknown line: after line 0, before `signature`, not among the rules. */
function descriptorSlots(text: string): number[] {
  const lines = text.split('\n');
  const e = lines.findIndex((l) => l.startsWith('exit-policy '));
  const n = Number(lines[e]!.split(' ')[1]);
  return [...Array.from({ length: e }, (_, i) => i + 1), e + n + 1];
}

/** Positions where a consensus may carry an unknown line: after line 0, up to `directory-footer`. */
function consensusSlots(text: string): number[] {
  const footer = text.split('\n').indexOf('directory-footer');
  return Array.from({ length: footer }, (_, i) => i + 1);
}

/** A signer for authority keys `k`: a signing key derived from its seed, certified from T0 − 1 day to T0 + 30 days. */
function signerOf(k: { seed: Uint8Array }): AuthoritySigner {
  const signingSeed = crypto.sha256(concat(utf8('fuzz signing key'), k.seed));
  return { signingSeed, cert: makeAuthorityCert(k.seed, signingSeed, T0 - 86_400_000, T0 + 30 * 86_400_000) };
}

/** Re-signs a consensus whose body was edited, with the given authority signers. */
function resignConsensus(text: string, seeds: AuthoritySigner[]): string {
  const end = text.indexOf('\ndirectory-footer\n') + '\ndirectory-footer\n'.length;
  const body = text.slice(0, end);
  return body + seeds.map((s) => signConsensusBody(body, s)).join('');
}

/** Re-signs a descriptor whose body was edited, with the relay's signing seed. */
function resignDescriptor(text: string, seed: Uint8Array): string {
  const at = text.lastIndexOf('signature ');
  const body = text.slice(0, at);
  return `${body}signature ${b64(crypto.ed25519Sign(seed, utf8(body)))}\n`;
}

function randomParams(rng: Rng): Map<string, number> {
  const keys = new Set<string>();
  for (let i = rng.int(6); i > 0; i--) keys.add(rng.bool(0.7) ? rng.pick(KNOWN_PARAMS) : `${rng.pick([...ALNUM])}${nickname(rng)}`);
  const value = () => rng.pick([0, 1, -1, 100, 1000, 1001, 255, 256, INT32_MIN, INT32_MAX, rng.int(2 ** 32) - 2 ** 31]);
  return new Map([...keys].map((k) => [k, value()]));
}

function nickname(rng: Rng): string {
  return Array.from({ length: rng.range(1, 19) }, () => rng.pick([...ALNUM])).join('');
}

function ipv4(rng: Rng): string {
  return `${rng.int(256)}.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`;
}

function randomRule(rng: Rng): ExitRule {
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

function randomSummary(rng: Rng): ExitSummary {
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

interface Keys {
  seed: Uint8Array;
  /** The relay's signing key, certified from T0 − 1 day to T0 + 30 days (§8.2.3). */
  relaySigner: SigningKeySigner;
  identity: Uint8Array;
  linkKey: Uint8Array;
  linkCert: Uint8Array;
  ntorOnionKey: Uint8Array;
}

function relayKeys(rng: Rng): Keys {
  const seed = rng.bytes(32);
  const identity = crypto.ed25519PublicKey(seed);
  const linkKey = crypto.x25519PublicKey(rng.bytes(32));
  const signingSeed = rng.bytes(32);
  const relaySigner = { signingSeed, cert: makeSigningKeyCert('relay', seed, signingSeed, T0 - 86_400_000, T0 + 30 * 86_400_000) };
  const linkCert = signLinkCertificate(relaySigner, linkKey);
  return { seed, relaySigner, identity, linkKey, linkCert, ntorOnionKey: crypto.x25519PublicKey(rng.bytes(32)) };
}

function randomDescriptor(rng: Rng, keys: Keys, maxRules = 8): RelayDescriptor {
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

test('fuzz exit policies: parseExitRule / parseExitPolicy / parseSummary / address parsers; round trips', () => {
  const rng = new Rng(0xd0c00001);
  const tally = outcomes();
  const ruleLines = Array.from({ length: 40 }, () => formatExitRule(randomRule(rng)));
  ruleLines.push('reject private:*', 'accept *:*', 'accept [::]/0:1-65535', 'reject 0.0.0.0/0:80');
  const summaries = Array.from({ length: 30 }, () => formatSummary(randomSummary(rng)));
  const v6 = ['::', '::1', '1::', 'a:b:c:d:e:f:1:2', '::ffff:1.2.3.4', '1:2:3:4:5:6:1.2.3.4', 'fe80::1:2'];
  for (let i = 0; i < 4000; i++) {
    const line = rng.bool(0.15) ? randomText(rng, 60).replace(/\n/g, '') : mutateText(rng, rng.pick(ruleLines));
    expectTyped(() => parseExitRule(line), () => `parseExitRule(${describeText(line)})`, tally);
    const sum = rng.bool(0.15) ? randomText(rng, 60) : mutateText(rng, rng.pick(summaries));
    expectTyped(() => parseSummary(sum), () => `parseSummary(${describeText(sum)})`, tally);
    // Address text as an exit sees it from a client: total functions, never throw.
    const addr = rng.bool(0.3) ? randomText(rng, 45).replace(/\n/g, '') : mutateText(rng, rng.pick([...v6, ipv4(rng), `[${rng.pick(v6)}]`]));
    const v6bytes = expectTyped(() => parseIPv6(addr), () => `parseIPv6(${describeText(addr)})`);
    if (v6bytes) assert.deepEqual(parseIPv6(formatIPv6(v6bytes)), v6bytes);
    assert.equal(typeof isPrivateAddress(addr), 'boolean');
  }
  assert.ok(tally.ok > 500 && tally.rejected > 500, JSON.stringify(tally));
  // Whole policies: mutated line lists (duplicated, dropped, too many lines).
  for (let i = 0; i < 300; i++) {
    const lines = Array.from({ length: rng.pick([0, 1, 5, 256, 257]) }, () => rng.pick(ruleLines));
    if (lines.length > 0 && rng.bool()) lines[rng.int(lines.length)] = mutateText(rng, lines[0]!);
    const policy = expectTyped(() => parseExitPolicy(lines), () => `parseExitPolicy(${describeText(lines.join('|'))})`);
    if (policy !== undefined) {
      const ip = rng.bool() ? ipv4(rng) : mutateText(rng, rng.pick(v6));
      const port = rng.pick([0, 1, 80, 65535, 65536, -1, 1.5, NaN, rng.int(70000)]);
      assert.equal(typeof exitPolicyAllows(policy, ip, port), 'boolean');
      assert.equal(typeof exitPolicyAllowsPort(policy, port), 'boolean');
      // A summary is always a well-formed one.
      const s = summarizeExitPolicy(policy, { loopbackCounts: rng.bool() });
      assert.deepEqual(parseSummary(formatSummary(s)), s);
    }
  }
  // Round trips.
  for (let i = 0; i < 2000; i++) {
    const rule = randomRule(rng);
    assert.deepEqual(parseExitRule(formatExitRule(rule)), rule, formatExitRule(rule));
    const s = randomSummary(rng);
    assert.deepEqual(parseSummary(formatSummary(s)), s, formatSummary(s));
  }
});

test('fuzz relay descriptors: parseDescriptor on random and mutated text; round trip', () => {
  const rng = new Rng(0xd0c00002);
  const keys = Array.from({ length: 3 }, () => relayKeys(rng));
  const texts = Array.from({ length: 12 }, (_, i) => {
    const k = keys[i % keys.length]!;
    return encodeDescriptor(randomDescriptor(rng, k, i < 3 ? 3 : 20), k.relaySigner);
  });
  // Unknown lines where §8.1 allows them: the same descriptor, still signed, with another digest.
  for (let i = 0; i < 200; i++) {
    const j = rng.int(12);
    const k = keys[j % keys.length]!;
    const base = texts[j]!;
    let text = base;
    for (let n = rng.range(1, 3); n > 0; n--) text = insertLine(text, rng.pick(descriptorSlots(text)), unknownLine(rng));
    text = resignDescriptor(text, k.relaySigner.signingSeed);
    assert.deepEqual(parseDescriptor(text).descriptor, parseDescriptor(base).descriptor, describeText(text));
    if (i < 4) texts.push(text);
    // A malformed would-be unknown line, or a well-formed one among the rules or after the signature, is refused.
    const lines = base.split('\n');
    const e = lines.findIndex((l) => l.startsWith('exit-policy '));
    for (const bad of [
      insertLine(base, rng.pick(descriptorSlots(base)), badUnknownLine(rng)),
      insertLine(base, e + 1 + rng.int(Number(lines[e]!.split(' ')[1])), unknownLine(rng)),
    ]) {
      assert.throws(() => parseDescriptor(resignDescriptor(bad, k.relaySigner.signingSeed)), { code: 'ERR_MALFORMED' }, describeText(bad));
    }
    assert.throws(() => parseDescriptor(`${base}${unknownLine(rng)}\n`), { code: 'ERR_MALFORMED' });
  }
  const tally = outcomes();
  const parse = (text: string, kind: string) =>
    expectTyped(() => parseDescriptor(text, rng.bool() ? { now: T0 } : {}), () => `parseDescriptor on ${kind} ${describeText(text)}`, tally);
  for (let i = 0; i < 500; i++) parse(randomText(rng, 2000), 'random');
  for (let i = 0; i < 4000; i++) {
    const text = mutateText(rng, rng.pick(texts));
    // The self-signature covers every byte before the signature line, and Ed25519
    // signatures are not malleable: only a genuine descriptor can be accepted.
    if (parse(text, 'mutated') !== undefined) assert.ok(texts.includes(text), `accepted a forged descriptor ${describeText(text)}`);
  }
  // Random text shaped like a descriptor: the header line, then random lines.
  for (let i = 0; i < 500; i++) parse(`${texts[0]!.split('\n').slice(0, rng.int(14)).join('\n')}\n${randomText(rng, 300)}`, 'half-random');
  // Every truncation of the small samples (only the last one can parse).
  for (const text of texts.slice(0, 2)) for (let n = 0; n < text.length; n++) parse(text.slice(0, n), 'truncated');
  assert.ok(tally.ok > 0 && tally.rejected > 1000, JSON.stringify(tally));

  for (let i = 0; i < 150; i++) {
    const k = rng.pick(keys);
    const d = randomDescriptor(rng, k);
    const text = encodeDescriptor(d, k.relaySigner);
    const { descriptor, digest } = parseDescriptor(text, { now: d.published });
    assert.deepEqual(descriptor, d);
    assert.deepEqual(digest, crypto.sha256(utf8(text)));
    assert.equal(encodeDescriptor(descriptor, k.relaySigner), text);
  }
});

function randomConsensusBody(rng: Rng, authKeys: Keys[], relayPool: Keys[], maxRelays: number): ConsensusBody {
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

const byIdentity = <T extends { identity: Uint8Array }>(xs: T[]) => [...xs].sort((a, b) => Buffer.compare(Buffer.from(a.identity), Buffer.from(b.identity)));

test('fuzz consensus: parseConsensus / verifyConsensus on random and mutated text; round trip', () => {
  const rng = new Rng(0xd0c00003);
  const auths = Array.from({ length: 3 }, () => relayKeys(rng));
  const trusted = auths.map((a) => a.identity);
  const pool = Array.from({ length: 8 }, () => relayKeys(rng));
  const texts = Array.from({ length: 8 }, (_, i) => {
    const signers = auths.slice(0, rng.range(1, 3));
    return encodeConsensus(randomConsensusBody(rng, auths.slice(0, rng.range(1, 3)), pool, i < 2 ? 1 : 8), signers.map(signerOf));
  });
  // Unknown lines where §8.1 allows them (header and router entries): same consensus, signatures still verify.
  const seeds = auths.map(signerOf);
  for (let i = 0; i < 150; i++) {
    const base = texts[rng.int(8)]!;
    let text = base;
    for (let n = rng.range(1, 4); n > 0; n--) text = insertLine(text, rng.pick(consensusSlots(text)), unknownLine(rng));
    text = resignConsensus(text, seeds);
    const want = parseConsensus(base);
    const got = verifyConsensus(text, trusted, want.validAfter);
    assert.deepEqual(
      [got.consensusMethod, got.rawParams, got.params, got.authorities, got.relays],
      [want.consensusMethod, want.rawParams, want.params, want.authorities, want.relays],
      describeText(text),
    );
    if (i < 4) texts.push(text);
    const bad = insertLine(base, rng.pick(consensusSlots(base)), badUnknownLine(rng));
    assert.throws(() => parseConsensus(resignConsensus(bad, seeds)), { code: 'ERR_MALFORMED' }, describeText(bad));
    // After the footer (among or after the signatures) nothing unknown may stand.
    const footer = base.split('\n').indexOf('directory-footer');
    const after = insertLine(base, rng.range(footer + 1, base.split('\n').length - 1), unknownLine(rng));
    assert.throws(() => parseConsensus(after), { code: 'ERR_MALFORMED' }, describeText(after));
  }
  const tally = outcomes();
  const bodies = texts.map((t) => parseConsensus(t).bodyText);
  const both = (text: string, kind: string) => {
    expectTyped(() => parseConsensus(text), () => `parseConsensus on ${kind} ${describeText(text)}`, tally);
    const ok = expectTyped(() => verifyConsensus(text, trusted, T0), () => `verifyConsensus on ${kind} ${describeText(text)}`, tally);
    // Signature lines may be dropped or repeated while a majority remains, but the signed body cannot change.
    if (ok !== undefined) assert.ok(bodies.includes(parseConsensus(text).bodyText), `accepted a forged consensus ${describeText(text)}`);
  };
  for (let i = 0; i < 400; i++) both(randomText(rng, 2000), 'random');
  for (let i = 0; i < 2500; i++) both(mutateText(rng, rng.pick(texts)), 'mutated');
  for (let i = 0; i < 400; i++) both(`${texts[2]!.split('\n').slice(0, rng.int(20)).join('\n')}\n${randomText(rng, 300)}`, 'half-random');
  for (const text of texts.slice(0, 2)) for (let n = 0; n < text.length; n++) both(text.slice(0, n), 'truncated');
  assert.ok(tally.ok > 0 && tally.rejected > 1000, JSON.stringify(tally));

  for (let i = 0; i < 100; i++) {
    const body = randomConsensusBody(rng, auths.slice(0, rng.range(1, 3)), pool, 8);
    const signers = auths.slice(0, rng.range(2, 3));
    const text = encodeConsensus(body, signers.map(signerOf));
    const parsed = parseConsensus(text);
    const expected = { ...body, authorities: byIdentity(body.authorities), relays: byIdentity(body.relays) };
    assert.deepEqual(
      {
        consensusMethod: parsed.consensusMethod,
        rawParams: parsed.rawParams,
        validAfter: parsed.validAfter,
        freshUntil: parsed.freshUntil,
        validUntil: parsed.validUntil,
        authorities: parsed.authorities,
        relays: parsed.relays,
      },
      { ...expected, rawParams: new Map([...body.rawParams!].sort(([a], [b]) => (a < b ? -1 : 1))) },
    );
    assert.deepEqual(parsed.params, networkParams(body.rawParams!));
    assert.deepEqual(parsed.signatures.map((s) => s.identity), signers.map((s) => s.identity));
    const verified = verifyConsensus(text, trusted, body.validAfter);
    assert.deepEqual(verified.relays, expected.relays);
  }
});

test('fuzz document primitives (src/netdoc/text.ts): times, numbers, ports, addresses, nicknames, base64, line splitting', () => {
  const rng = new Rng(0xd0c00005);
  const tally = outcomes();
  const words = ['2030-01-02 03:04:05', '9999-12-31 23:59:59', '1970-01-01 00:00:00', '65535', '0', '1099511627776', '127.0.0.1', 'relay1', 'AAAA', 'AA', 'AAE', '+/+/'];
  const timeChars = [...'0123456789-: ', '9999', '99', '00', '60', '24', '31', '02-29'];
  for (let i = 0; i < 3000; i++) {
    const w = rng.bool(0.3) ? randomText(rng, 30).replace(/\n/g, '') : mutateText(rng, rng.pick(words));
    const time = rng.bool(0.5) ? w : Array.from({ length: rng.range(1, 12) }, () => rng.pick(timeChars)).join('');
    const t = expectTyped(() => parseTime(time, 'fuzz'), () => `parseTime(${describeText(time)})`, tally);
    if (t !== undefined) assert.equal(formatTime(t), time);
    expectTyped(() => parseUint(w, 2 ** 40, 'fuzz'), () => `parseUint(${describeText(w)})`, tally);
    expectTyped(() => parsePortNumber(w, 'fuzz'), () => `parsePortNumber(${describeText(w)})`, tally);
    expectTyped(() => parseAddress(w, 'fuzz'), () => `parseAddress(${describeText(w)})`, tally);
    expectTyped(() => parseNickname(w, 'fuzz'), () => `parseNickname(${describeText(w)})`, tally);
    const bytes = expectTyped(() => unb64(w, 'fuzz', rng.bool() ? undefined : rng.int(40)), () => `unb64(${describeText(w)})`, tally);
    if (bytes !== undefined) assert.equal(b64(bytes), w);
    assert.ok(parseIPv4(w) === null || parseIPv4(w)!.length === 4);
    const doc = randomText(rng, 200);
    expectTyped(() => splitDocument(doc, 'fuzz', rng.pick([10, 100, 1000]), rng.pick([5, 50, 500])), () => `splitDocument(${describeText(doc)})`, tally);
  }
  assert.ok(tally.ok > 1000 && tally.rejected > 1000, JSON.stringify(tally));
  // Round trips over the whole range of times and of byte strings.
  for (let i = 0; i < 2000; i++) {
    const ms = rng.int(253402300800) * 1000;
    assert.equal(parseTime(formatTime(ms), 'fuzz'), ms);
    const b = rng.bytes(rng.int(100));
    assert.deepEqual(unb64(b64(b), 'fuzz', b.length), b);
  }
});

test('regression: times past 9999-12-31 23:59:59 are a DocumentError, not a RangeError', () => {
  // Date.UTC rolls 23:59:60 on the last day of 9999 (or month 99) over into
  // year 10000, which formatTime refused with a RangeError.
  for (const t of ['9999-12-31 23:59:60', '9999-99-99 99:99:99', '9999-12-32 00:00:00']) {
    assert.throws(() => parseTime(t, 'test'), { name: 'DocumentError', code: 'ERR_MALFORMED' }, t);
  }
  assert.equal(parseTime('9999-12-31 23:59:59', 'test'), 253402300799000);
  const rng = new Rng(0xd0c00004);
  const k = relayKeys(rng);
  const text = encodeDescriptor(randomDescriptor(rng, k, 1), k.relaySigner).replace(/^published .*$/m, 'published 9999-12-31 23:59:60');
  assert.throws(() => parseDescriptor(text), { name: 'DocumentError', code: 'ERR_MALFORMED' });
  const auth = relayKeys(rng);
  const c = encodeConsensus(randomConsensusBody(rng, [auth], [], 0), [signerOf(auth)]).replace(/^valid-until .*$/m, 'valid-until 9999-99-99 99:99:99');
  assert.throws(() => parseConsensus(c), { name: 'DocumentError', code: 'ERR_MALFORMED' });
});

test('fuzz params lines: parseParams on random and mutated pairs; clamped values stay in bounds; canonical round trip', () => {
  const rng = new Rng(0xd0c00006);
  const tally = outcomes();
  const lines = Array.from({ length: 30 }, () => ['params', ...formatParams(randomParams(rng), 'fuzz')].join(' '));
  lines.push('params', 'params circwindow=1000', `params a=${INT32_MIN} b=${INT32_MAX}`);
  for (let i = 0; i < 4000; i++) {
    const line = rng.bool(0.1) ? `params ${randomText(rng, 80).replace(/\n/g, '')}` : mutateText(rng, rng.pick(lines)).split('\n')[0]!;
    const args = line.split(' ').slice(1);
    const raw = expectTyped(() => parseParams(args, 'fuzz'), () => `parseParams(${describeText(line)})`, tally);
    if (raw === undefined) continue;
    // Accepted lines are canonical: writing them again gives the same pairs.
    assert.deepEqual(formatParams(raw, 'fuzz'), args, line);
    const params = networkParams(raw);
    for (const key of KNOWN_PARAMS) {
      const spec = PARAM_TABLE[key];
      assert.ok(params[key] >= spec.min && params[key] <= spec.max, `${key}=${params[key]} from ${line}`);
      if (!raw.has(key)) assert.equal(params[key], spec.default);
    }
  }
  assert.ok(tally.ok > 500 && tally.rejected > 500, JSON.stringify(tally));
});

test('fuzz votes, detached signatures and authority certificates: typed errors only; round trips; a changed byte never verifies', () => {
  const rng = new Rng(0xd0c00007);
  const auths = Array.from({ length: 2 }, () => relayKeys(rng));
  const pool = Array.from({ length: 6 }, () => relayKeys(rng));
  const votes = auths.map((a) => {
    const body = randomConsensusBody(rng, [a], pool, 6);
    const vote: Vote = {
      consensusMethods: [1, 2],
      published: body.validAfter - 1000,
      validAfter: body.validAfter,
      freshUntil: body.validAfter + 1000,
      validUntil: body.validAfter + 60_000,
      knownFlags: [...CONSENSUS_FLAGS],
      rawParams: body.rawParams!,
      authority: body.authorities[0]!,
      relays: body.relays.map((r) => (rng.bool() ? { ...r, measured: rng.int(2 ** 30) } : r)),
    };
    return { vote, text: encodeVote(vote, signerOf(a)) };
  });
  const tally = outcomes();
  for (const { vote, text } of votes) {
    const back = verifyVote(text, T0, 0);
    assert.deepEqual(back.relays, byIdentity(vote.relays));
    assert.deepEqual(back.authority, vote.authority);
    for (let n = 0; n < text.length; n += 7) expectTyped(() => parseVote(text.slice(0, n)), () => `parseVote truncated at ${n}`, tally);
    for (let i = 0; i < 800; i++) {
      const mutated = mutateText(rng, text);
      const ok = expectTyped(() => verifyVote(mutated, T0, 0), () => `verifyVote on ${describeText(mutated)}`, tally);
      if (ok !== undefined) assert.equal(ok.bodyText, back.bodyText, `accepted a changed vote ${describeText(mutated)}`);
    }
  }
  for (let i = 0; i < 300; i++) expectTyped(() => parseVote(randomText(rng, 1500)), () => 'parseVote on random text', tally);
  assert.throws(() => parseVote(`${votes[0]!.text}${'x'.repeat(MAX_VOTE_BYTES)}`), { code: 'ERR_OVERSIZED' });

  const digest = rng.bytes(32);
  const sig = encodeDetachedSignature(T0, digest, signerOf(auths[0]!));
  assert.deepEqual(verifyDetachedSignature(sig, T0, 0).digest, digest);
  for (let n = 0; n < sig.length; n++) expectTyped(() => parseDetachedSignature(sig.slice(0, n)), () => `parseDetachedSignature truncated at ${n}`, tally);
  for (let i = 0; i < 1500; i++) {
    const mutated = mutateText(rng, sig);
    const ok = expectTyped(() => verifyDetachedSignature(mutated, T0, 0), () => `verifyDetachedSignature on ${describeText(mutated)}`, tally);
    if (ok !== undefined) assert.deepEqual(ok.digest, digest, `accepted a changed signature ${describeText(mutated)}`);
  }
  assert.throws(() => parseDetachedSignature(sig + 'x'.repeat(2048)), { code: 'ERR_OVERSIZED' });

  const cert = signerOf(auths[0]!).cert.bytes;
  for (let i = 0; i < 1500; i++) {
    const bytes = rng.bool(0.2) ? rng.bytes(rng.int(260)) : mutate(rng, cert);
    const ok = expectTyped(() => decodeAuthorityCert(bytes), () => `decodeAuthorityCert(${Buffer.from(bytes).toString('hex')})`, tally);
    if (ok !== undefined) assert.deepEqual(ok.bytes, cert, 'a changed certificate decoded');
  }
  assert.ok(tally.rejected > 3000, JSON.stringify(tally));
});
