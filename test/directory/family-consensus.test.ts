/**
 * Families in the directory (docs/protocol.md §8.4, §8.7, §9.6, §11.2): the
 * `f` line of vote and consensus entries (round trip; truncated, malformed
 * and oversized input refused), the authorities keeping only mutual families
 * (consensus method 3), and path selection never putting two members of one
 * family on a circuit while a one-sided declaration does not count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeConsensus } from '../../directory/consensus-algorithm.js';
import { encodeConsensus, encodeConsensusBody, parseConsensus, signConsensusBody, type ConsensusRelay } from '../../src/netdoc/consensus.js';
import { encodeVote, parseVote, type Vote, type VoteRelay } from '../../src/netdoc/vote.js';
import { parseSummary } from '../../src/netdoc/exit-policy.js';
import { b64, compareBytes } from '../../src/netdoc/text.js';
import { DocumentError } from '../../src/errors.js';
import { choosePath, related, sameFamily, type PathRelay } from '../../client/path-selection.js';
import { authoritySigner, relayKeys, T0 } from '../netdoc/helpers.js';
import { sfc32 } from '../support/seeded-random.js';

const code = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;
const signers = [authoritySigner(81), authoritySigner(82), authoritySigner(83)];
const authority = (i: number) => ({ nickname: `auth${i + 1}`, identity: signers[i]!.cert.identity, address: `127.100.0.${i + 1}`, dirPort: 7000 + i });
const id = (n: number) => relayKeys(n).identity;
const sorted = (ids: Uint8Array[]) => [...ids].sort(compareBytes);

function entry(n: number, flags: string[], family?: number[]): VoteRelay {
  const k = relayKeys(n);
  const r: VoteRelay = {
    nickname: `relay${n}`,
    identity: k.identity,
    address: `127.${n}.0.1`,
    orPort: 9000 + n,
    linkKey: k.linkKey,
    ntorOnionKey: k.ntorOnionKey,
    descriptorDigest: new Uint8Array(32).fill(n),
    flags,
    bandwidth: 100_000,
    exitSummary: parseSummary(flags.includes('Exit') ? 'accept 80,443' : 'reject 1-65535'),
  };
  if (family !== undefined) r.family = sorted(family.map(id));
  return r;
}

function vote(i: number, relays: VoteRelay[], methods: number[]): Vote {
  return {
    consensusMethods: methods,
    published: T0 - 1000,
    validAfter: T0,
    freshUntil: T0 + 10_000,
    validUntil: T0 + 60_000,
    knownFlags: ['Exit', 'Fast', 'Guard', 'Running', 'Valid'],
    rawParams: new Map(),
    authority: authority(i),
    relays,
  };
}

const G = ['Fast', 'Guard', 'Running', 'Valid'];
const E = ['Exit', 'Fast', 'Guard', 'Running', 'Valid'];
/**
 * relay1 ⇄ relay2: a family. relay3 → relay4 only (one-sided). relay5 lists
 * relay1, which does not list it back. relay6 lists relay9, which no vote lists.
 * relay7 and relay8 are exits without a family.
 */
const relays = (): VoteRelay[] => [
  entry(1, G, [2]),
  entry(2, G, [1]),
  entry(3, G, [4]),
  entry(4, G),
  entry(5, G, [1]),
  entry(6, G, [9]),
  entry(7, E),
  entry(8, E),
];

const family = (c: { relays: ConsensusRelay[] }, n: number) => c.relays.find((r) => r.nickname === `relay${n}`)!.family;

test('method 3: the consensus keeps only mutual families, among listed relays', () => {
  const votes = [0, 1, 2].map((i) => parseVote(encodeVote(vote(i, relays(), [1, 2, 3]), signers[i]!)));
  // The votes carry each declared family as it is.
  assert.deepEqual(votes[0]!.relays.find((r) => r.nickname === 'relay5')!.family, [id(1)]);
  const body = computeConsensus(votes);
  assert.equal(body.consensusMethod, 3);
  assert.deepEqual(family(body, 1), [id(2)]);
  assert.deepEqual(family(body, 2), [id(1)]);
  for (const n of [3, 4, 5, 6, 7, 8]) assert.equal(family(body, n), undefined, `relay${n}`);
  const text = encodeConsensusBody(body);
  assert.ok(text.includes(`\np accept 80,443\n`));
  assert.equal(text.match(/^f /gm)?.length, 2);
  assert.ok(text.includes(`\nf ${b64(id(2))}\n`), 'relay1 lists relay2');
  // Signed and parsed back, the families are the same.
  const parsed = parseConsensus(encodeConsensus(body, signers));
  assert.deepEqual(family(parsed, 1), [id(2)]);
  assert.deepEqual(family(parsed, 2), [id(1)]);
  assert.equal(family(parsed, 3), undefined);

  // A relay whose family is listed by a minority of votes (an older descriptor elsewhere) keeps the majority's.
  const older = (i: number) => vote(i, relays().map((r) => (r.nickname === 'relay2' ? entry(2, G) : r)), [1, 2, 3]);
  const mixed = computeConsensus([vote(0, relays(), [1, 2, 3]), older(1), older(2)]);
  assert.equal(family(mixed, 1), undefined, 'relay2 no longer lists relay1 in most votes: no family');
});

test('method 2 (not two thirds for 3): no f lines at all', () => {
  const body = computeConsensus([vote(0, relays(), [1, 2, 3]), vote(1, relays(), [1, 2]), vote(2, relays(), [1, 2])]);
  assert.equal(body.consensusMethod, 2);
  assert.ok(!/^f /m.test(encodeConsensusBody(body)));
});

function oneConsensus(f: string): string {
  const body = computeConsensus([0, 1, 2].map((i) => vote(i, relays(), [1, 2, 3])));
  const text = encodeConsensusBody(body).replace(`\nf ${b64(id(2))}\n`, `\n${f}\n`);
  return text + signConsensusBody(text, signers[0]!);
}

test('the f line: unknown lines around it are skipped; truncated, malformed and oversized ones are refused', () => {
  assert.deepEqual(family(parseConsensus(oneConsensus(`f ${b64(id(2))}`)), 1), [id(2)]);
  assert.deepEqual(family(parseConsensus(oneConsensus(`future-line 1\nf ${b64(id(2))}\nanother 2`)), 1), [id(2)]);
  const many = (count: number) => sorted(Array.from({ length: count }, (_, i) => id(30 + i)));
  assert.equal(family(parseConsensus(oneConsensus(`f ${many(32).map(b64).join(' ')}`)), 1)!.length, 32);
  const bad: [string, string][] = [
    ['f', 'no members'],
    [`f ${b64(id(2)).slice(0, 20)}`, 'a truncated identity'],
    [`f ${b64(id(2))}A`, 'an identity too long'],
    [`f ${b64(id(2)).slice(0, -1)}!`, 'not base64'],
    [`f ${b64(id(2))}  ${b64(id(3))}`, 'stray whitespace'],
    [`f ${b64(id(2))} ${b64(id(2))}`, 'a member twice'],
    [`f ${sorted([id(2), id(3)]).reverse().map(b64).join(' ')}`, 'members out of order'],
    [`f ${b64(id(1))}`, 'the relay itself'],
    [`f ${many(33).map(b64).join(' ')}`, 'more than 32 members'],
  ];
  for (const [line, why] of bad) assert.throws(() => parseConsensus(oneConsensus(line)), code('ERR_MALFORMED'), why);
  // Longer than the line limit (4096).
  assert.throws(() => parseConsensus(oneConsensus(`f ${many(100).map(b64).join(' ')}`)), code('ERR_OVERSIZED'));
  // Out of its place (before p) it is a known keyword out of order.
  const body = computeConsensus([0, 1, 2].map((i) => vote(i, relays(), [1, 2, 3])));
  const text = encodeConsensusBody(body).replace(`\np reject 1-65535\nf ${b64(id(2))}\n`, `\nf ${b64(id(2))}\np reject 1-65535\n`);
  assert.throws(() => parseConsensus(text + signConsensusBody(text, signers[0]!)), code('ERR_MALFORMED'));
  // The encoder refuses what the parser would refuse.
  const r = { ...body.relays[0]! };
  for (const f of [[r.identity], [id(40), id(40)], [new Uint8Array(31)], many(33)]) {
    assert.throws(() => encodeConsensusBody({ ...body, relays: [{ ...r, family: f }] }), code('ERR_MALFORMED'));
  }
});

test('path selection: never two members of one family on a path; a one-sided listing does not count', () => {
  const body = computeConsensus([0, 1, 2].map((i) => vote(i, relays(), [1, 2, 3])));
  const rs: PathRelay[] = body.relays;
  const by = (n: number) => rs.find((r) => r.nickname === `relay${n}`)!;
  assert.ok(sameFamily(by(1), by(2)) && related(by(1), by(2)));
  assert.ok(!sameFamily(by(3), by(4)));
  assert.ok(!sameFamily(by(5), by(1)));
  // A consensus entry that lists a relay that does not list it back is not a family either.
  assert.ok(!sameFamily({ ...by(3), family: [id(4)] }, by(4)));
  const random = sfc32(12);
  let together34 = 0;
  let together15 = 0;
  for (let i = 0; i < 3000; i++) {
    const names = choosePath(rs, 443, { random }).map((r) => r.nickname);
    assert.ok(!(names.includes('relay1') && names.includes('relay2')), names.join(','));
    if (names.includes('relay3') && names.includes('relay4')) together34++;
    if (names.includes('relay1') && names.includes('relay5')) together15++;
  }
  assert.ok(together34 > 0, 'relay3 and relay4 share paths');
  assert.ok(together15 > 0, 'relay1 and relay5 share paths');
});
