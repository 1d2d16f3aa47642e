/**
 * The IPv6 OR address on the wire and in documents (docs/protocol.md §6.3,
 * §8.2, §8.4): the descriptor's `or-address` line, the consensus `a` line,
 * the EXTEND2 IPv6 link specifier (type 1), which addresses a relay dials for
 * an EXTEND2, and which specifiers a client sends. Round trips; truncated,
 * malformed and oversized input refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { DecodeError, DocumentError } from '../../src/errors.js';
import { encodeDescriptor, parseDescriptor } from '../../src/netdoc/descriptor.js';
import { computeConsensus } from '../../directory/consensus-algorithm.js';
import { encodeConsensusBody, parseConsensus, signConsensusBody } from '../../src/netdoc/consensus.js';
import { encodeVote, parseVote, type Vote, type VoteRelay } from '../../src/netdoc/vote.js';
import { parseSummary } from '../../src/netdoc/exit-policy.js';
import { b64, parseOrAddress6 } from '../../src/netdoc/text.js';
import { decodeExtend2, encodeExtend2, LinkSpecifierType, specifiersToTarget, targetToSpecifiers } from '../../src/cell/extend2.js';
import { extendAddresses } from '../../relay/relay-core.js';
import { extendSpecifiers, type HopInfo } from '../../client/origin-circuit.js';
import { authoritySigner, makeDescriptor, relayKeys, T0 } from './helpers.js';

const docError = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;
const decodeError = (c: string) => (e: unknown) => e instanceof DecodeError && e.code === c;
const keys = relayKeys(1);
const BAD_TEXT = [
  '::1]:9001', '[::1]9001', '[::1]:', '[::1]:0', '[::1]:65536', '[::1]:09001', '[::1]', '::1:9001',
  '[127.0.0.1]:9001', '[::]:9001', '[::ffff:127.0.0.1]:9001', '[0:0:0:0:0:0:0:1]:9001', '[::1%lo]:9001',
  '[2001:DB8::1]:9001', '[2001:db8::1::2]:9001', '[fe80::1]:9001 x',
];

test('[IPv6]:port: only the canonical form of a usable address', () => {
  assert.deepEqual(parseOrAddress6('[::1]:9001', 't'), { address: '::1', port: 9001 });
  assert.deepEqual(parseOrAddress6('[2001:db8::7]:443', 't'), { address: '2001:db8::7', port: 443 });
  for (const bad of BAD_TEXT) assert.throws(() => parseOrAddress6(bad, 't'), docError('ERR_MALFORMED'), bad);
});

test('descriptor or-address: round trip, order, bad forms refused', () => {
  const d = makeDescriptor(keys, { orAddress6: { address: '2001:db8::7', port: 9002 }, contact: 'ops' });
  const text = encodeDescriptor(d, keys.signer);
  assert.match(text, /\ncontact ops\nor-address \[2001:db8::7\]:9002\nsignature /);
  assert.deepEqual(parseDescriptor(text).descriptor.orAddress6, { address: '2001:db8::7', port: 9002 });
  assert.equal('orAddress6' in parseDescriptor(encodeDescriptor(makeDescriptor(keys), keys.signer)).descriptor, false);
  const body = text.slice(0, text.indexOf('signature '));
  const sign = (b: string) => `${b}signature ${b64(crypto.ed25519Sign(keys.signer.signingSeed, utf8(b)))}\n`;
  for (const bad of [...BAD_TEXT, '']) {
    assert.throws(() => parseDescriptor(sign(body.replace('or-address [2001:db8::7]:9002', `or-address ${bad}`))), docError('ERR_MALFORMED'), bad);
  }
  // Twice, or before contact: out of order.
  assert.throws(() => parseDescriptor(sign(`${body}or-address [::1]:1\n`)), docError('ERR_MALFORMED'));
  assert.throws(() => parseDescriptor(sign(body.replace('contact ops\nor-address [2001:db8::7]:9002\n', 'or-address [2001:db8::7]:9002\ncontact ops\n'))), docError('ERR_MALFORMED'));
  // Oversized: a line past the descriptor's 512-character limit.
  assert.throws(() => parseDescriptor(sign(body.replace('or-address [2001:db8::7]:9002', `or-address [${'1'.repeat(520)}]:1`))), docError('ERR_OVERSIZED'));
  // Truncated: cut anywhere inside the line.
  const at = text.indexOf('or-address');
  for (const cut of [at + 3, at + 12, at + 20]) assert.throws(() => parseDescriptor(text.slice(0, cut)), (e: unknown) => e instanceof DocumentError);
  // The encoder refuses what the parser refuses.
  for (const orAddress6 of [{ address: '::', port: 1 }, { address: '127.0.0.1', port: 1 }, { address: '::1', port: 0 }, { address: '::0:1', port: 1 }]) {
    assert.throws(() => encodeDescriptor(makeDescriptor(keys, { orAddress6 }), keys.signer), docError('ERR_MALFORMED'), JSON.stringify(orAddress6));
  }
});

const signers = [authoritySigner(91), authoritySigner(92), authoritySigner(93)];
function entry(n: number, orAddress6?: { address: string; port: number }): VoteRelay {
  const k = relayKeys(n);
  return {
    nickname: `relay${n}`, identity: k.identity, address: `127.${n}.0.1`, orPort: 9000 + n, linkKey: k.linkKey, ntorOnionKey: k.ntorOnionKey,
    descriptorDigest: new Uint8Array(32).fill(n), flags: ['Running', 'Valid'], bandwidth: 1000, exitSummary: parseSummary('reject 1-65535'),
    ...(orAddress6 !== undefined ? { orAddress6 } : {}),
  };
}
function vote(i: number, methods: number[]): Vote {
  return {
    consensusMethods: methods, published: T0 - 1000, validAfter: T0, freshUntil: T0 + 10_000, validUntil: T0 + 60_000,
    knownFlags: ['Running', 'Valid'], rawParams: new Map(),
    authority: { nickname: `auth${i}`, identity: signers[i]!.cert.identity, address: '127.100.0.1', dirPort: 7000 + i },
    relays: [entry(1, { address: '::1', port: 9101 }), entry(2)],
  };
}

test('consensus a line: method 4 carries it after r; malformed, truncated and oversized refused', () => {
  const votes = [0, 1, 2].map((i) => parseVote(encodeVote(vote(i, [1, 2, 3, 4]), signers[i]!)));
  assert.deepEqual(votes[0]!.relays.find((r) => r.nickname === 'relay1')!.orAddress6, { address: '::1', port: 9101 });
  const body = encodeConsensusBody(computeConsensus(votes));
  const r1 = body.split('\n').find((l) => l.startsWith('r relay1 '))!;
  assert.ok(body.includes(`${r1}\na [::1]:9101\nk `));
  const parsed = parseConsensus(body + signConsensusBody(body, signers[0]!));
  assert.deepEqual(parsed.relays.find((r) => r.nickname === 'relay1')!.orAddress6, { address: '::1', port: 9101 });
  assert.equal(parsed.relays.find((r) => r.nickname === 'relay2')!.orAddress6, undefined);
  // Method 3: no a lines.
  assert.ok(!/^a /m.test(encodeConsensusBody(computeConsensus([0, 1, 2].map((i) => vote(i, [1, 2, 3]))))));
  const edited = (line: string) => {
    const b = body.replace('\na [::1]:9101\n', `\n${line}\n`);
    return b + signConsensusBody(b, signers[0]!);
  };
  for (const bad of [...BAD_TEXT.map((t) => `a ${t}`), 'a', 'a [::1]:1 [::2]:2']) assert.throws(() => parseConsensus(edited(bad)), docError('ERR_MALFORMED'), bad);
  assert.throws(() => parseConsensus(edited(`a [${'1'.repeat(4100)}]:1`)), docError('ERR_OVERSIZED'));
  // Two a lines: the second is out of place.
  assert.throws(() => parseConsensus(edited('a [::1]:9101\na [::2]:9101')), docError('ERR_MALFORMED'));
  // Truncated inside the line.
  const cut = body.indexOf('\na [::1]') + 6;
  assert.throws(() => parseConsensus(body.slice(0, cut)), (e: unknown) => e instanceof DocumentError);
});

const ids = { identity: new Uint8Array(32).fill(1), linkKey: new Uint8Array(32).fill(2) };

test('EXTEND2 IPv6 link specifier: round trip, either or both addresses; truncated, malformed and oversized refused', () => {
  for (const target of [
    { ...ids, ipv6: { address: '2001:db8::1', port: 443 } },
    { ...ids, address: '127.3.0.1', port: 5001, ipv6: { address: '::1', port: 5002 } },
    { ...ids, address: '127.3.0.1', port: 5001 },
  ]) {
    const body = encodeExtend2({ specifiers: targetToSpecifiers(target), handshakeType: 3, handshakeData: new Uint8Array(50) });
    assert.deepEqual(specifiersToTarget(decodeExtend2(body).specifiers), target);
    for (let cut = 0; cut < body.length; cut++) assert.throws(() => decodeExtend2(body.subarray(0, cut)), decodeError('ERR_TRUNCATED'));
  }
  const specs = targetToSpecifiers({ ...ids, ipv6: { address: '::1', port: 5002 } });
  const v6 = specs.find((s) => s.type === LinkSpecifierType.IPV6)!;
  const withV6 = (body: Uint8Array) => [{ type: LinkSpecifierType.IPV6, body }, ...specs.filter((s) => s !== v6)];
  for (const [body, why] of [
    [v6.body.subarray(0, 17), 'short'],
    [new Uint8Array([...v6.body, 0]), 'long'],
    [new Uint8Array([...v6.body.subarray(0, 16), 0, 0]), 'port 0'],
    [new Uint8Array(18).fill(0).map((_, i) => (i === 17 ? 1 : 0)), 'unspecified'],
    [new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1, 0, 1]), 'IPv4-mapped'],
  ] as const) {
    assert.throws(() => specifiersToTarget(withV6(body)), decodeError('ERR_MALFORMED'), why);
  }
  assert.throws(() => specifiersToTarget([...specs, v6]), decodeError('ERR_MALFORMED'), 'two IPv6 specifiers');
  assert.throws(() => specifiersToTarget(specs.filter((s) => s !== v6)), decodeError('ERR_MALFORMED'), 'no address at all');
  // A specifier body over 255 bytes cannot be encoded.
  assert.throws(() => encodeExtend2({ specifiers: withV6(new Uint8Array(256)), handshakeType: 3, handshakeData: new Uint8Array(0) }), RangeError);
  assert.throws(() => targetToSpecifiers({ ...ids }), RangeError);
  assert.throws(() => targetToSpecifiers({ ...ids, ipv6: { address: '127.0.0.1', port: 1 } }), RangeError);
});

test('which address a relay dials for an EXTEND2, and what a client asks for', () => {
  const both = { ...ids, address: '127.3.0.1', port: 5001, ipv6: { address: '::1', port: 5002 } };
  assert.deepEqual(extendAddresses(both, true), [{ address: '127.3.0.1', port: 5001 }, { address: '::1', port: 5002 }], 'IPv4 first, then IPv6');
  assert.deepEqual(extendAddresses(both, false), [{ address: '127.3.0.1', port: 5001 }], 'no IPv6 without an IPv6 OR address of its own');
  assert.deepEqual(extendAddresses({ ...ids, ipv6: both.ipv6 }, false), []);
  const hop = (n: number, v6: boolean): HopInfo => ({
    nickname: `r${n}`, ...ids, ntorOnionKey: new Uint8Array(32), address: `127.${n}.0.1`, orPort: 9000 + n,
    ...(v6 ? { orAddress6: { address: '::1', port: 9100 + n } } : {}),
  });
  const types = (s: { type: number }[]) => s.map((x) => x.type).filter((t) => t <= LinkSpecifierType.IPV6);
  assert.deepEqual(types(extendSpecifiers(hop(1, true), hop(2, true), false)), [0, 1], 'default: both, IPv4 first');
  assert.deepEqual(types(extendSpecifiers(hop(1, true), hop(2, false), false)), [0]);
  assert.deepEqual(types(extendSpecifiers(hop(1, true), hop(2, true), true)), [1], 'preferred, both have IPv6: IPv6 alone');
  assert.deepEqual(types(extendSpecifiers(hop(1, false), hop(2, true), true)), [0, 1], 'preferred, but the extending relay has no IPv6');
});
