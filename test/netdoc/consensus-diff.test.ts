/**
 * Consensus diffs (docs/protocol.md §8.9): the diff of two consensuses,
 * applied to the first, gives the second byte for byte, whatever changed;
 * malformed, truncated, reordered and misapplied diffs are refused with a
 * typed error and never give a wrong consensus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyConsensusDiff, consensusDigest, makeConsensusDiff, parseConsensusDiff } from '../../src/netdoc/consensus-diff.js';
import { encodeConsensus, type ConsensusBody, type ConsensusRelay } from '../../src/netdoc/consensus.js';
import { parseSummary } from '../../src/netdoc/exit-policy.js';
import { crypto } from '../../src/crypto/crypto.js';
import { b64 } from '../../src/netdoc/text.js';
import { DocumentError } from '../../src/errors.js';
import { Rng, expectTyped, mutateText, outcomes } from '../fuzz/fuzz-util.js';
import { authoritySigner, T0 } from './helpers.js';

const signers = [authoritySigner(31), authoritySigner(32)];

function relay(rng: Rng, n: number): ConsensusRelay {
  return {
    nickname: `r${n}`,
    identity: crypto.sha256(new TextEncoder().encode(`relay ${n}`)),
    address: `10.${n % 250}.0.1`,
    orPort: 9000 + (n % 1000),
    linkKey: rng.bytes(32),
    ntorOnionKey: rng.bytes(32),
    descriptorDigest: rng.bytes(32),
    flags: rng.bool() ? ['Fast', 'Running', 'Valid'] : ['Exit', 'Guard', 'Running', 'Valid'],
    bandwidth: rng.int(1e7),
    exitSummary: parseSummary(rng.bool() ? 'reject 1-65535' : 'accept 80,443'),
  };
}

function consensus(relays: ConsensusRelay[], va: number, params = new Map<string, number>()): string {
  const body: ConsensusBody = {
    validAfter: va,
    freshUntil: va + 60_000,
    validUntil: va + 180_000,
    rawParams: params,
    authorities: signers.map((s, i) => ({ nickname: `a${i}`, identity: s.cert.identity, address: '127.0.0.1', dirPort: 7000 + i })),
    relays,
  };
  return encodeConsensus(body, signers);
}

test('round trips: entries changed, removed and added anywhere, header and tail changed, everything, nothing', () => {
  const rng = new Rng(0xd1ff0001);
  const base = Array.from({ length: 40 }, (_, n) => relay(rng, n));
  const a = consensus(base, T0);
  const variants: ConsensusRelay[][] = [
    base,
    base.map((r, i) => (i % 7 === 0 ? { ...r, bandwidth: r.bandwidth + 1 } : r)),
    base.filter((_, i) => i % 5 !== 0),
    [...base, ...Array.from({ length: 10 }, (_, n) => relay(rng, 100 + n))],
    [...base.filter((_, i) => i % 3 !== 0).map((r, i) => (i % 4 === 0 ? { ...r, flags: ['Running', 'Valid'] } : r)), ...Array.from({ length: 7 }, (_, n) => relay(rng, 200 + n))],
    [],
    Array.from({ length: 5 }, (_, n) => relay(rng, 300 + n)),
  ];
  for (const [i, relays] of variants.entries()) {
    const b = consensus(relays, T0 + 60_000, i % 2 === 0 ? new Map([['circwindow', 500]]) : new Map());
    const diff = makeConsensusDiff(a, b);
    assert.equal(applyConsensusDiff(a, diff), b, `variant ${i}`);
    const parsed = parseConsensusDiff(diff);
    assert.deepEqual(parsed.from, consensusDigest(a));
    assert.deepEqual(parsed.to, consensusDigest(b));
  }
  // From an empty consensus to a full one and back.
  const empty = consensus([], T0);
  assert.equal(applyConsensusDiff(empty, makeConsensusDiff(empty, a)), a);
  assert.equal(applyConsensusDiff(a, makeConsensusDiff(a, empty)), empty);
  // One changed relay in forty: the diff is a small fraction of the consensus.
  const one = consensus(base.map((r, i) => (i === 17 ? { ...r, bandwidth: 1 } : r)), T0 + 60_000);
  const small = makeConsensusDiff(a, one);
  assert.ok(small.length < one.length / 4, `${small.length} of ${one.length}`);
  assert.match(small, /^@type allium-consensus-diff 1\nfrom \S+\nto \S+\n\d+,\d+c\n/);
});

test('refused: another base, a result that does not hash to "to", out of range, out of order, malformed, truncated', () => {
  const rng = new Rng(0xd1ff0002);
  const base = Array.from({ length: 12 }, (_, n) => relay(rng, n));
  const a = consensus(base, T0);
  const b = consensus(base.slice(2), T0 + 60_000);
  const diff = makeConsensusDiff(a, b);
  const code = (c: string) => (e: unknown) => e instanceof DocumentError && e.code === c;
  assert.throws(() => applyConsensusDiff(b, diff), /made for another base consensus/);
  const wrongTo = diff.replace(/^to \S+$/m, `to ${b64(new Uint8Array(32))}`);
  assert.throws(() => applyConsensusDiff(a, wrongTo), /does not hash to/);
  for (const bad of [
    '@type allium-consensus-diff 2\n',
    diff.replace(/^from .*\n/m, ''),
    diff.replace(/\n(\d+),(\d+)c\n/, '\n$2,$1c\n'),
    `${diff}1d\n`,
    diff.replace(/\n\.\n/, '\n'),
    diff.replace(/\n(\d+)/, '\n0$1'),
    diff.replace(/\n\d+(,\d+)?c\n/, '\n1,1c\n'),
    `${diff}5a\n.\n`,
    `${diff}x\n`,
    `${diff.slice(0, -1)}\r\n`,
  ]) {
    assert.throws(() => applyConsensusDiff(a, bad), code('ERR_MALFORMED'), JSON.stringify(bad.slice(0, 200)));
  }
  // Commands past the end of the base.
  const past = `@type allium-consensus-diff 1\nfrom ${b64(consensusDigest(a))}\nto ${b64(consensusDigest(b))}\n9999d\n`;
  assert.throws(() => applyConsensusDiff(a, past), /past the base/);
  for (let cut = 1; cut < diff.length; cut += 17) expectTyped(() => applyConsensusDiff(a, diff.slice(0, cut)), () => `cut at ${cut}`);
  assert.throws(() => parseConsensusDiff('x'.repeat(9 * 1024 * 1024)), code('ERR_OVERSIZED'));
});

test('fuzz: mutated diffs give a typed error or exactly the intended consensus', () => {
  const rng = new Rng(0xd1ff0003);
  const base = Array.from({ length: 20 }, (_, n) => relay(rng, n));
  const a = consensus(base, T0);
  const b = consensus([...base.filter((_, i) => i % 4 !== 1), relay(rng, 50), relay(rng, 51)], T0 + 60_000);
  const diff = makeConsensusDiff(a, b);
  const tally = outcomes();
  for (let i = 0; i < 2000; i++) {
    const mutated = mutateText(rng, diff);
    const out = expectTyped(() => applyConsensusDiff(a, mutated), () => `apply ${JSON.stringify(mutated.slice(0, 300))}`, tally);
    if (out !== undefined) assert.equal(out, b);
  }
  assert.ok(tally.rejected > 1000, JSON.stringify(tally));
});
