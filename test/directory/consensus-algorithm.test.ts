/**
 * The consensus algorithm (docs/protocol.md §9.6) and the bandwidth weights
 * (§9.7): fixed votes give exact consensus bytes; the result does not depend
 * on the order of the votes; a minority cannot add a relay; flags, bandwidth,
 * params, times and method follow the majority rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseMethod, computeConsensus, lowerMedian } from '../../directory/consensus-algorithm.js';
import { bandwidthClasses, computeBandwidthWeights, coreWeights } from '../../directory/bandwidth-weights.js';
import { encodeConsensus, encodeConsensusBody, verifyConsensus, type ConsensusRelay } from '../../src/netdoc/consensus.js';
import { encodeVote, parseVote, type Vote, type VoteRelay } from '../../src/netdoc/vote.js';
import { parseSummary } from '../../src/netdoc/exit-policy.js';
import { b64, formatTime } from '../../src/netdoc/text.js';
import { AlliumError } from '../../src/errors.js';
import { authoritySigner, relayKeys, T0 } from '../netdoc/helpers.js';

const signers = [authoritySigner(61), authoritySigner(62), authoritySigner(63)];
const authority = (i: number) => ({ nickname: `auth${i + 1}`, identity: signers[i]!.cert.identity, address: `127.100.0.${i + 1}`, dirPort: 7000 + i });

function entry(n: number, flags: string[], over: Partial<VoteRelay> = {}): VoteRelay {
  const k = relayKeys(n);
  return {
    nickname: `relay${n}`,
    identity: k.identity,
    address: `127.${n}.0.1`,
    orPort: 9000 + n,
    linkKey: k.linkKey,
    ntorOnionKey: k.ntorOnionKey,
    descriptorDigest: new Uint8Array(32).fill(n),
    flags,
    bandwidth: 100_000 * n,
    exitSummary: parseSummary('reject 1-65535'),
    ...over,
  };
}

function vote(i: number, relays: VoteRelay[], over: Partial<Vote> = {}): Vote {
  return {
    consensusMethods: [1, 2],
    published: T0 - 1000,
    validAfter: T0,
    freshUntil: T0 + 10_000,
    validUntil: T0 + 60_000,
    knownFlags: ['Exit', 'Fast', 'Guard', 'Running', 'Valid'],
    rawParams: new Map(),
    authority: authority(i),
    relays,
    ...over,
  };
}

const RV = ['Running', 'Valid'];
const exitSummary = parseSummary('accept 80,443');
/** Three fixed votes exercising every rule; each comment says what the consensus must do. */
const fixedVotes: Vote[] = [
  vote(0, [
    // relay1: listed by all; Fast by 2 of 3, Guard by 1 of 3; measured by 2 of 3 (900k, 500k) → 500k.
    entry(1, ['Fast', 'Guard', ...RV], { measured: 900_000 }),
    // relay2: listed by 2 of 3; measured by 1 of 2 → the advertised median, Unmeasured.
    entry(2, ['Fast', ...RV], { measured: 50_000 }),
    // relay3: listed by this vote alone → left out.
    entry(3, ['Exit', 'Fast', 'Guard', ...RV]),
    // relay4: listed by all, Running in one vote only → left out.
    entry(4, ['Fast', ...RV]),
    // relay5: an exit; two votes list descriptor digest 5…, one lists digest 55… → 5… and its fields.
    entry(5, ['Exit', ...RV], { exitSummary }),
  ], { rawParams: new Map([['k1', 5], ['k2', 1], ['k3', 10]]), consensusMethods: [1] }),
  vote(1, [
    entry(1, ['Fast', ...RV], { measured: 500_000 }),
    entry(2, ['Fast', ...RV]),
    entry(4, ['Valid']),
    entry(5, ['Exit', ...RV], { exitSummary, descriptorDigest: new Uint8Array(32).fill(55), address: '127.55.0.1' }),
  ], { rawParams: new Map([['k1', 9], ['k3', 20]]), validUntil: T0 + 120_000 }),
  vote(2, [
    entry(1, [...RV]),
    entry(4, ['Valid']),
    entry(5, ['BadExit', 'Exit', ...RV], { exitSummary }),
  ], { rawParams: new Map([['k1', 7]]), knownFlags: ['BadExit', 'Exit', 'Fast', 'Guard', 'Running', 'Valid'] }),
];

test('fixed votes give exactly these consensus bytes', () => {
  const k = (n: number) => relayKeys(n);
  const rEntry = (n: number, address: string, flags: string, w: string, p: string) => [
    `r relay${n} ${b64(k(n).identity)} ${address} ${9000 + n}`,
    `k ${b64(k(n).linkKey)} ${b64(k(n).ntorOnionKey)}`,
    `d ${b64(new Uint8Array(32).fill(n))}`,
    `s ${flags}`,
    `w ${w}`,
    `p ${p}`,
  ];
  const byId = [1, 2, 5].sort((a, b) => Buffer.compare(Buffer.from(k(a).identity), Buffer.from(k(b).identity)));
  const entries: Record<number, string[]> = {
    1: rEntry(1, '127.1.0.1', 'Fast Running Valid', 'bandwidth=500000', 'reject 1-65535'),
    2: rEntry(2, '127.2.0.1', 'Fast Running Valid', 'bandwidth=200000 Unmeasured=1', 'reject 1-65535'),
    // BadExit: only the third vote knows the flag and sets it, so it is set; it clears Exit.
    5: rEntry(5, '127.5.0.1', 'BadExit Running Valid', 'bandwidth=500000 Unmeasured=1', 'accept 80,443'),
  };
  const auths = [0, 1, 2].map(authority).sort((a, b) => Buffer.compare(Buffer.from(a.identity), Buffer.from(b.identity)));
  const expected = [
    '@type allium-consensus 1',
    // Method 2 is listed by two of three votes: not more than two thirds.
    'consensus-method 1',
    `valid-after ${formatTime(T0)}`,
    `fresh-until ${formatTime(T0 + 10_000)}`,
    // valid-until: the lower median of 60 s, 120 s, 60 s.
    `valid-until ${formatTime(T0 + 60_000)}`,
    // k1 in all three (5, 9, 7 → 7); k2 in one (left out); k3 in two (10, 20 → 10).
    'params k1=7 k3=10',
    ...auths.map((a) => `authority ${a.nickname} ${b64(a.identity)} ${a.address} ${a.dirPort}`),
    ...byId.flatMap((n) => entries[n]!),
    'directory-footer',
    '',
  ].join('\n');
  const body = encodeConsensusBody(computeConsensus(fixedVotes));
  assert.equal(body, expected);
  // The votes survive encoding, signing and parsing unchanged, and give the same bytes.
  const parsed = fixedVotes.map((v, i) => parseVote(encodeVote(v, signers[i]!)));
  assert.equal(encodeConsensusBody(computeConsensus(parsed)), expected);
  // Signed by the three, it verifies for a client trusting the three.
  const c = verifyConsensus(encodeConsensus(computeConsensus(parsed), signers), signers.map((s) => s.cert.identity), T0);
  assert.deepEqual(c.relays.map((r) => r.nickname).sort(), ['relay1', 'relay2', 'relay5']);
});

test('the order of the votes does not matter', () => {
  const expected = encodeConsensusBody(computeConsensus(fixedVotes));
  for (const order of [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]) {
    assert.equal(encodeConsensusBody(computeConsensus(order.map((i) => fixedVotes[i]!))), expected, order.join(','));
  }
});

test('a minority cannot add a relay: 1 of 3, 1 of 2 and 2 of 4 votes are not enough; 2 of 3 is', () => {
  const only = (listing: number[], of: number) => {
    const votes = Array.from({ length: of }, (_, i) => vote(i % 3, listing.includes(i) ? [entry(9, RV)] : [], { authority: { ...authority(i % 3), identity: authoritySigner(70 + i).cert.identity } }));
    return computeConsensus(votes).relays.length;
  };
  assert.equal(only([0], 3), 0);
  assert.equal(only([0], 2), 0);
  assert.equal(only([0, 1], 4), 0);
  assert.equal(only([0, 1], 3), 1);
  assert.equal(only([0], 1), 1);
});

test('method: the highest supported one listed by more than two thirds of the votes', () => {
  const v = (methods: number[]) => vote(0, [], { consensusMethods: methods });
  assert.equal(chooseMethod([v([1, 2]), v([1, 2]), v([1, 2])]), 2);
  assert.equal(chooseMethod([v([1, 2]), v([1, 2]), v([1])]), 1);
  assert.equal(chooseMethod([v([1, 2]), v([1, 2]), v([1, 2]), v([1])]), 2);
  assert.equal(chooseMethod([v([1, 2, 3]), v([1, 2, 3])]), 3);
  assert.equal(chooseMethod([v([1, 2, 3, 4, 5]), v([1, 2, 3, 4, 5])]), 4, 'not a method this code does not support');
  // Method 2 brings the bandwidth-weights line.
  const relays = [entry(1, ['Guard', ...RV]), entry(2, RV), entry(5, ['Exit', ...RV], { exitSummary })];
  const body = computeConsensus([vote(0, relays), vote(1, relays), vote(2, relays)]);
  assert.equal(body.consensusMethod, 2);
  assert.ok(body.bandwidthWeights !== undefined);
  assert.match(encodeConsensusBody(body), /\nbandwidth-weights Wbd=\d+ Wbe=\d+ Wbg=\d+ Wbm=10000 Wdb=10000 Web=10000 Wed=\d+ Wee=\d+ Weg=\d+ Wem=\d+ Wgb=10000 Wgd=\d+ Wgg=\d+ Wgm=\d+ Wmb=10000 Wmd=\d+ Wme=\d+ Wmg=\d+ Wmm=10000\ndirectory-footer\n$/);
});

test('votes of different rounds or two votes by one authority are a caller error', () => {
  assert.throws(() => computeConsensus([vote(0, []), vote(1, [], { validAfter: T0 + 1000 })]), (e: unknown) => e instanceof AlliumError && e.code === 'ERR_CONFIG');
  assert.throws(() => computeConsensus([vote(0, []), vote(0, [])]), /two votes by one authority/);
  assert.throws(() => computeConsensus([]), /no votes/);
  assert.equal(lowerMedian([3, 1, 2, 4]), 2);
  assert.equal(lowerMedian([5]), 5);
});

function relay(flags: string[], bandwidth: number): ConsensusRelay {
  return { ...entry(1, flags), bandwidth };
}

test('bandwidth weights follow the three cases of Tor\'s dir-spec, in integers', () => {
  const classes = (G: number, M: number, E: number, D: number) => [
    relay(['Guard', 'Running', 'Valid'], G),
    relay(['Running', 'Valid'], M),
    relay(['Exit', 'Running', 'Valid'], E),
    relay(['Exit', 'Guard', 'Running', 'Valid'], D),
  ];
  // Every class starts at 1 (method 26 rule), so G=M=E=3001, D=1001, T=10004: both scarce, R+D ≥ S.
  assert.deepEqual(bandwidthClasses(classes(3000, 3000, 3000, 1000)), { G: 3001n, M: 3001n, E: 3001n, D: 1001n });
  assert.deepEqual(coreWeights(bandwidthClasses(classes(3000, 3000, 3000, 1000)), 10000n), {
    Wee: 10000n, Wed: 3333n, Wme: 0n, Wmg: 0n, Wgg: 10000n, Wmd: 3333n, Wgd: 3333n,
  });
  // Case 1: neither scarce.
  assert.deepEqual(coreWeights(bandwidthClasses(classes(5000, 0, 5000, 0)), 10000n), {
    Wgd: 3333n, Wed: 3333n, Wmd: 3333n, Wee: 6667n, Wme: 3333n, Wmg: 3332n, Wgg: 6668n,
  });
  // Case 2a: both scarce and R + D < S: all of D goes to the scarcer class (exits).
  assert.deepEqual(coreWeights(bandwidthClasses(classes(3000, 10000, 100, 0)), 10000n), {
    Wgg: 10000n, Wee: 10000n, Wmg: 0n, Wme: 0n, Wmd: 0n, Wed: 10000n, Wgd: 0n,
  });
  // Case 3a: only guards scarce and S + D < T/3.
  assert.deepEqual(coreWeights(bandwidthClasses(classes(100, 5000, 5000, 0)), 10000n), {
    Wgg: 10000n, Wgd: 10000n, Wmd: 0n, Wed: 0n, Wmg: 0n, Wme: 0n, Wee: 10000n,
  });
  // The full line: the derived weights and the fixed ones; BadExit relays do not count as exits.
  const w = computeBandwidthWeights(classes(3000, 3000, 3000, 1000))!;
  assert.deepEqual(
    { Wgm: w.Wgm, Wem: w.Wem, Weg: w.Weg, Wbd: w.Wbd, Wbg: w.Wbg, Wbe: w.Wbe, Wbm: w.Wbm, Wmm: w.Wmm, Wdb: w.Wdb, scale: w.scale },
    { Wgm: 10000, Wem: 10000, Weg: 3333, Wbd: 3333, Wbg: 0, Wbe: 0, Wbm: 10000, Wmm: 10000, Wdb: 10000, scale: 10000 },
  );
  assert.deepEqual(bandwidthClasses([relay(['BadExit', 'Exit', 'Running', 'Valid'], 500)]), { G: 1n, M: 501n, E: 1n, D: 1n });
  // Another scale (the bwweightscale parameter).
  assert.equal(computeBandwidthWeights(classes(3000, 3000, 3000, 1000), 1000)!.Wed, 333);
  // An empty network still gets weights.
  assert.ok(computeBandwidthWeights([]) !== undefined);
  // A network of middles only has no balanced solution (a weight would exceed the scale): no line, as in Tor.
  assert.equal(computeBandwidthWeights([relay(RV, 5000)]), undefined);
});
